//go:build unix

package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// The generated tree imitates a Go module cache (GOMODCACHE), the tree CI
// jobs cache most often:
//
//	mod/<host>/<owner>/<name>@<version>/...   extracted modules: read-only
//	                                          (dirs 0555, files 0444)
//	mod/cache/download/<host>/<owner>/<name>/@v/<version>.{zip,mod,info,ziphash,lock}
//
// Its shape follows a real module cache measured on a build machine
// (50k files, 1.5 GB: median file 2.8 KB, p90 25 KB, p99 370 KB, largest
// 45 MB; .go files 45% of the bytes, zips 23%), scaled to the requested
// size with more small files than that cache had, since small files are
// what make extraction slow:
//
//   - text, 49% of the bytes: .go sources with Go-like tokens, plus
//     go.mod, README.md, LICENSE, testdata .json/.txt and .s files. Sizes
//     are log-normal around a 3.5 KB median, so about 60 files per MB.
//     zstd -3 shrinks the .go text to about a quarter (real Go code: a
//     fifth);
//   - medium testdata files, 10%: 16 KB to 1 MB, from half to fully random;
//   - a few large binary-ish files, 18%: 4 to 40 MB, 35-60% random blocks,
//     the rest zero runs, small-integer tables and symbol text;
//   - module zips, 23%: random bytes, incompressible as real zips are.
//
// Everything derives from the seed, so a size and seed always give the same
// bytes, names, modes and mtimes.

// Shares of the tree's bytes, in percent.
const (
	largeShare  = 18
	mediumShare = 10
	zipShare    = 23
)

// fileKind says how a file's content is generated.
type fileKind uint8

const (
	kindGo fileKind = iota
	kindText
	kindGoMod
	kindLicense
	kindAsm
	kindBinary // partly compressible; see fileSpec.random
	kindZip
	kindSmallMeta // .info, .ziphash, list
	kindEmpty     // .lock
)

// fileSpec is one planned file.
type fileSpec struct {
	rel    string // slash-separated, relative to the tree root
	size   int64
	kind   fileKind
	random float64 // kindBinary: share of random 4 KiB blocks
	mode   fs.FileMode
	mtime  time.Time
	seed   uint64
	pkg    string // kindGo: the package name
	module string // kindGoMod, kindSmallMeta: the module path
}

// dirSpec is one planned directory; its mode and mtime are applied after
// it is filled.
type dirSpec struct {
	rel   string
	mode  fs.FileMode
	mtime time.Time
}

// treePlan is the full description of a generated tree.
type treePlan struct {
	files []fileSpec
	dirs  []dirSpec
	bytes int64
}

// moduleSpec is one module of the plan, before its files are placed.
type moduleSpec struct {
	path    string   // e.g. github.com/owner/name
	version string   // e.g. v1.4.2
	pkgDirs []string // relative to the module root; "" is the root
	bytes   int64
}

var hosts = []string{"github.com", "github.com", "github.com", "golang.org/x", "google.golang.org", "go.opentelemetry.io", "gopkg.in", "k8s.io", "cloud.google.com/go"}

// planTree plans a tree of about size bytes.
func planTree(size int64, seed uint64) *treePlan {
	r := rand.New(rand.NewPCG(seed, 0x6d6f6463616368))
	vocab := newVocabulary(seed)
	base := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	mtime := func() time.Time {
		// Never a whole microsecond, so nanosecond fidelity is tested.
		return base.Add(time.Duration(r.Int64N(30*24*3600*1e9)/1000*1000 + 1 + r.Int64N(999)))
	}

	large := size * largeShare / 100
	medium := size * mediumShare / 100
	text := size * (100 - largeShare - mediumShare - zipShare) / 100
	// About 60 text files per MB of text and 120 files per module.
	nModules := max(3, int(text/8000/120))

	p := &treePlan{}
	seen := map[string]bool{}
	mods := make([]*moduleSpec, 0, nModules)
	for len(mods) < nModules {
		host := hosts[r.IntN(len(hosts))]
		var mp string
		switch {
		case strings.Contains(host, "/") || host == "k8s.io" || host == "gopkg.in":
			mp = host + "/" + vocab.word(r)
		default:
			mp = host + "/" + vocab.word(r) + "/" + vocab.word(r)
		}
		ver := fmt.Sprintf("v%d.%d.%d", r.IntN(3), r.IntN(40), r.IntN(20))
		if seen[mp+"@"+ver] {
			continue
		}
		seen[mp+"@"+ver] = true
		m := &moduleSpec{path: mp, version: ver, pkgDirs: []string{""}}
		nPkg := 1 + r.IntN(12)
		for range nPkg {
			parent := m.pkgDirs[r.IntN(len(m.pkgDirs))]
			if strings.Count(parent, "/") >= 3 {
				parent = ""
			}
			m.pkgDirs = append(m.pkgDirs, path.Join(parent, vocab.word(r)))
		}
		m.pkgDirs = append(m.pkgDirs, "internal/"+vocab.word(r), "testdata")
		m.pkgDirs = slices.Compact(slices.Sorted(slices.Values(m.pkgDirs)))
		mods = append(mods, m)
	}
	// A few modules are much bigger than the rest, as in real caches.
	weights := make([]float64, nModules)
	total := 0.0
	for i := range weights {
		total += 1 / math.Pow(float64(i+1), 0.8)
		weights[i] = total
	}
	pickModule := func() *moduleSpec {
		x := r.Float64() * total
		i, _ := slices.BinarySearch(weights, x)
		return mods[min(i, nModules-1)]
	}

	modRoot := func(m *moduleSpec) string { return "mod/" + m.path + "@" + m.version }
	add := func(m *moduleSpec, f fileSpec) {
		f.mode = 0o444
		f.mtime = mtime()
		f.seed = r.Uint64()
		if m != nil {
			m.bytes += f.size
		}
		p.files = append(p.files, f)
		p.bytes += f.size
	}

	// Fixed files of every module.
	for _, m := range mods {
		root := modRoot(m)
		add(m, fileSpec{rel: root + "/go.mod", size: 200 + r.Int64N(1500), kind: kindGoMod, module: m.path})
		add(m, fileSpec{rel: root + "/LICENSE", size: 1000 + r.Int64N(10000), kind: kindLicense})
		add(m, fileSpec{rel: root + "/README.md", size: 500 + r.Int64N(8000), kind: kindText})
	}
	// Text files until the text budget is spent.
	for spent := p.bytes; spent < text; {
		m := pickModule()
		dir := m.pkgDirs[r.IntN(len(m.pkgDirs))]
		sz := int64(math.Exp(math.Log(3500) + 1.3*r.NormFloat64()))
		sz = min(max(sz, 60), 300<<10, text-spent+60)
		var f fileSpec
		pkg := path.Base("/" + dir)
		if pkg == "/" || pkg == "testdata" {
			pkg = vocab.word(r)
		}
		switch x := r.IntN(100); {
		case x < 72 || (x < 85 && dir != "testdata"):
			name := vocab.word(r) + "_" + vocab.word(r)
			if r.IntN(3) == 0 {
				name += "_test"
			}
			f = fileSpec{rel: path.Join(modRoot(m), dir, name+".go"), kind: kindGo, pkg: pkg}
		case x < 90:
			f = fileSpec{rel: path.Join(modRoot(m), dir, vocab.word(r)+"_amd64.s"), kind: kindAsm}
		default:
			ext := []string{".json", ".txt", ".golden", ".md", ".yaml"}[r.IntN(5)]
			f = fileSpec{rel: path.Join(modRoot(m), dir, vocab.word(r)+ext), kind: kindText}
		}
		f.size = sz
		add(m, f)
		spent += sz
	}
	// Medium and large binary-ish files.
	for spent := int64(0); spent < medium; {
		m := pickModule()
		sz := min(int64(math.Exp(math.Log(16<<10)+r.Float64()*math.Log(64))), medium-spent+(16<<10))
		ext := []string{".bin", ".png", ".gz", ".pb", ".dat", ".wasm"}[r.IntN(6)]
		rnd := 0.5 + r.Float64()*0.5
		if ext == ".png" || ext == ".gz" {
			rnd = 1
		}
		add(m, fileSpec{rel: path.Join(modRoot(m), "testdata", vocab.word(r)+ext), size: sz, kind: kindBinary, random: rnd})
		spent += sz
	}
	for spent := int64(0); spent < large-(1<<20); {
		m := pickModule()
		sz := min(int64(math.Exp(math.Log(4<<20)+r.Float64()*math.Log(10))), large-spent)
		name := []string{"testdata/" + vocab.word(r) + ".bin", vocab.word(r) + ".wasm", "testdata/" + vocab.word(r) + ".tar", vocab.word(r) + ".syso"}[r.IntN(4)]
		add(m, fileSpec{rel: path.Join(modRoot(m), name), size: sz, kind: kindBinary, random: 0.35 + r.Float64()*0.25})
		spent += sz
	}
	// The download cache: a zip of about 30% of each module's bytes
	// (23% of the tree), and the small files next to it.
	for _, m := range mods {
		dl := "mod/cache/download/" + m.path + "/@v/"
		zipSize := max(m.bytes*zipShare/(100-zipShare), 1000)
		for _, f := range []fileSpec{
			{rel: dl + m.version + ".zip", size: zipSize, kind: kindZip},
			{rel: dl + m.version + ".mod", size: 200 + r.Int64N(1500), kind: kindGoMod, module: m.path},
			{rel: dl + m.version + ".info", size: 50 + r.Int64N(20), kind: kindSmallMeta, module: m.path},
			{rel: dl + m.version + ".ziphash", size: 47, kind: kindSmallMeta},
			{rel: dl + m.version + ".lock", kind: kindEmpty},
			{rel: dl + "list", size: 7 + r.Int64N(60), kind: kindSmallMeta},
		} {
			add(nil, f)
			p.files[len(p.files)-1].mode = 0o644
		}
	}
	slices.SortFunc(p.files, func(a, b fileSpec) int { return strings.Compare(a.rel, b.rel) })
	p.files = slices.CompactFunc(p.files, func(a, b fileSpec) bool {
		if a.rel == b.rel {
			p.bytes -= b.size
			return true
		}
		return false
	})

	// Directories: everything inside a module root is read-only, as the
	// go command leaves it; the rest is ordinary.
	dirs := map[string]bool{}
	for _, f := range p.files {
		for d := path.Dir(f.rel); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for _, d := range slices.Sorted(func(yield func(string) bool) {
		for d := range dirs {
			if !yield(d) {
				return
			}
		}
	}) {
		mode := fs.FileMode(0o755)
		if strings.Contains(d, "@") && !strings.HasPrefix(d, "mod/cache/") {
			mode = 0o555
		}
		p.dirs = append(p.dirs, dirSpec{rel: d, mode: mode, mtime: mtime()})
	}
	return p
}

// generate writes the plan under dir, which must not exist. Files are
// written by a few goroutines, each file from its own seed, so the result
// does not depend on scheduling.
func (p *treePlan) generate(ctx context.Context, dir string, seed uint64) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	for _, d := range p.dirs {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(d.rel)), 0o755); err != nil {
			return err
		}
	}
	vocab := newVocabulary(seed)
	jobs := make(chan *fileSpec)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var buf []byte
			for f := range jobs {
				buf = f.content(vocab, buf[:0])
				name := filepath.Join(dir, filepath.FromSlash(f.rel))
				err := os.WriteFile(name, buf, 0o644)
				if err == nil {
					err = os.Chtimes(name, f.mtime, f.mtime)
				}
				if err == nil {
					err = os.Chmod(name, f.mode)
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range p.files {
		if ctx.Err() != nil {
			break
		}
		jobs <- &p.files[i]
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	// Deepest first, so setting a directory's mode and mtime cannot be
	// undone by work in its children.
	for _, d := range slices.Backward(p.dirs) {
		name := filepath.Join(dir, filepath.FromSlash(d.rel))
		if err := os.Chtimes(name, d.mtime, d.mtime); err != nil {
			return err
		}
		if err := os.Chmod(name, d.mode); err != nil {
			return err
		}
	}
	return nil
}

// content appends the file's bytes to buf.
func (f *fileSpec) content(v *vocabulary, buf []byte) []byte {
	r := rand.New(rand.NewPCG(f.seed, uint64(f.size)))
	n := int(f.size)
	switch f.kind {
	case kindGo:
		buf = v.goSource(r, buf, n, f.pkg)
	case kindText:
		buf = v.prose(r, buf, n)
	case kindGoMod:
		buf = v.goMod(r, buf, n, f.module)
	case kindLicense:
		buf = v.license(buf, n)
	case kindAsm:
		buf = v.asm(r, buf, n)
	case kindBinary:
		buf = v.binary(r, buf, n, f.random)
	case kindZip:
		buf = randomBytes(r, buf, n)
	case kindSmallMeta:
		switch {
		case strings.HasSuffix(f.rel, ".info"):
			buf = fmt.Appendf(buf, `{"Version":"%s","Time":"2024-%02d-%02dT10:%02d:00Z"}`, path.Base(strings.TrimSuffix(f.rel, ".info")), 1+r.IntN(12), 1+r.IntN(28), r.IntN(60))
		case strings.HasSuffix(f.rel, ".ziphash"):
			h := randomBytes(r, nil, 32)
			buf = append(buf, "h1:"...)
			buf = hex.AppendEncode(buf, h)
		default:
			buf = fmt.Appendf(buf, "v%d.%d.%d\n", r.IntN(3), r.IntN(40), r.IntN(20))
		}
	case kindEmpty:
	}
	if len(buf) > n {
		buf = buf[:n]
	}
	for len(buf) < n { // short generated content: pad with spaces
		buf = append(buf, ' ')
	}
	return buf
}

func randomBytes(r *rand.Rand, buf []byte, n int) []byte {
	start := len(buf)
	buf = slices.Grow(buf, n+8)[:start+n+8]
	for i := start; i < start+n; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], r.Uint64())
	}
	return buf[:start+n]
}

// vocabulary is the word list every text generator draws from. The same
// seed gives the same words.
type vocabulary struct {
	words   []string // identifiers and prose
	common  []string // frequent words, for the Zipf-like feel of real text
	licText []byte   // one licence text shared by every module
}

func newVocabulary(seed uint64) *vocabulary {
	r := rand.New(rand.NewPCG(seed, 0x766f636162))
	const letters = "etaoinshrdlcumwfgypbvkjxqz"
	v := &vocabulary{}
	seen := map[string]bool{}
	for len(v.words) < 3000 {
		n := 2 + r.IntN(9)
		b := make([]byte, n)
		for i := range b {
			// Skewed towards frequent letters, like English.
			b[i] = letters[min(int(r.ExpFloat64()*6), len(letters)-1)]
		}
		if w := string(b); !seen[w] {
			seen[w] = true
			v.words = append(v.words, w)
		}
	}
	v.common = v.words[:120]
	var lic []byte
	for len(lic) < 12000 {
		lic = v.sentence(r, lic)
		if r.IntN(5) == 0 {
			lic = append(lic, "\n\n"...)
		}
	}
	v.licText = lic
	return v
}

func (v *vocabulary) word(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		return v.common[r.IntN(len(v.common))]
	}
	return v.words[r.IntN(len(v.words))]
}

func (v *vocabulary) sentence(r *rand.Rand, buf []byte) []byte {
	n := 5 + r.IntN(12)
	for i := range n {
		w := v.word(r)
		if i == 0 {
			buf = append(buf, w[0]-'a'+'A')
			buf = append(buf, w[1:]...)
		} else {
			buf = append(buf, ' ')
			buf = append(buf, w...)
		}
	}
	return append(buf, ". "...)
}

func (v *vocabulary) prose(r *rand.Rand, buf []byte, n int) []byte {
	end := len(buf) + n
	for len(buf) < end {
		buf = v.sentence(r, buf)
		if r.IntN(4) == 0 {
			buf = append(buf, '\n')
		}
	}
	return buf
}

func (v *vocabulary) license(buf []byte, n int) []byte {
	for end := len(buf) + n; len(buf) < end; {
		buf = append(buf, v.licText...)
	}
	return buf
}

func (v *vocabulary) goMod(r *rand.Rand, buf []byte, n int, module string) []byte {
	end := len(buf) + n
	buf = fmt.Appendf(buf, "module %s\n\ngo 1.%d\n\nrequire (\n", module, 18+r.IntN(8))
	for len(buf) < end {
		buf = fmt.Appendf(buf, "\t%s/%s/%s v%d.%d.%d\n", hosts[r.IntN(len(hosts))], v.word(r), v.word(r), r.IntN(3), r.IntN(40), r.IntN(20))
	}
	return buf
}

var goTypes = []string{"int", "string", "[]byte", "error", "bool", "int64", "uint32", "float64", "context.Context", "time.Duration", "io.Reader", "any"}

// goSource appends Go-like source: a package clause, imports, then
// comments, types and functions made of identifiers that mostly come from a
// small per-file pool, as in real code.
func (v *vocabulary) goSource(r *rand.Rand, buf []byte, n int, pkg string) []byte {
	end := len(buf) + n
	pool := make([]string, 24+r.IntN(40))
	for i := range pool {
		w := v.word(r)
		if r.IntN(2) == 0 {
			w += strings.ToUpper(v.word(r)[:1]) + v.word(r)[1:]
		}
		if r.IntN(3) == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		pool[i] = w
	}
	id := func() string {
		if r.IntN(10) == 0 {
			return v.word(r)
		}
		return pool[r.IntN(len(pool))]
	}
	typ := func() string {
		if r.IntN(3) == 0 {
			return "*" + pool[r.IntN(len(pool))]
		}
		return goTypes[r.IntN(len(goTypes))]
	}
	buf = fmt.Appendf(buf, "// Copyright 20%d The %s Authors. All rights reserved.\n// Use of this source code is governed by a BSD-style\n// license that can be found in the LICENSE file.\n\npackage %s\n\nimport (\n\t\"context\"\n\t\"fmt\"\n\t\"io\"\n\t\"time\"\n)\n\n", 10+r.IntN(15), v.word(r), pkg)
	for len(buf) < end {
		switch r.IntN(6) {
		case 0:
			buf = append(buf, "// "...)
			buf = v.sentence(r, buf)
			buf = append(buf, "\n// "...)
			buf = v.sentence(r, buf)
			buf = append(buf, '\n')
		case 1:
			buf = fmt.Appendf(buf, "type %s struct {\n", id())
			for range 2 + r.IntN(8) {
				buf = fmt.Appendf(buf, "\t%s %s `json:\"%s,omitempty\"`\n", id(), typ(), v.word(r))
			}
			buf = append(buf, "}\n\n"...)
		case 2:
			buf = append(buf, "const (\n"...)
			for range 2 + r.IntN(6) {
				buf = fmt.Appendf(buf, "\t%s = %d\n", id(), r.IntN(1<<16))
			}
			buf = append(buf, ")\n\n"...)
		default:
			if r.IntN(2) == 0 {
				buf = fmt.Appendf(buf, "func (%c *%s) %s(ctx context.Context, %s %s) (%s, error) {\n", 'a'+byte(r.IntN(26)), id(), id(), id(), typ(), typ())
			} else {
				buf = fmt.Appendf(buf, "func %s(%s %s, %s %s) error {\n", id(), id(), typ(), id(), typ())
			}
			for range 2 + r.IntN(10) {
				switch r.IntN(6) {
				case 0:
					buf = fmt.Appendf(buf, "\t%s := %s.%s(%s, %s)\n", id(), id(), id(), id(), id())
				case 1:
					buf = fmt.Appendf(buf, "\tif err != nil {\n\t\treturn nil, fmt.Errorf(\"%s %s: %%w\", err)\n\t}\n", v.word(r), v.word(r))
				case 2:
					buf = fmt.Appendf(buf, "\tfor i := 0; i < len(%s); i++ {\n\t\t%s[i] = %s(%s[i])\n\t}\n", id(), id(), id(), id())
				case 3:
					buf = fmt.Appendf(buf, "\t%s.%s = %d\n", id(), id(), r.IntN(1000))
				case 4:
					buf = fmt.Appendf(buf, "\tswitch %s {\n\tcase %s:\n\t\t%s()\n\tdefault:\n\t\t%s = %s\n\t}\n", id(), id(), id(), id(), id())
				default:
					buf = fmt.Appendf(buf, "\t// %s %s %s.\n", v.word(r), v.word(r), v.word(r))
				}
			}
			buf = fmt.Appendf(buf, "\treturn %s\n}\n\n", id())
		}
	}
	return buf
}

var asmOps = []string{"MOVQ", "ADDQ", "XORQ", "MOVOU", "PXOR", "SHLQ", "CMPQ", "JNE", "LEAQ", "VPADDD"}
var asmRegs = []string{"AX", "BX", "CX", "DX", "SI", "DI", "R8", "R9", "X0", "X1", "Y2"}

func (v *vocabulary) asm(r *rand.Rand, buf []byte, n int) []byte {
	end := len(buf) + n
	buf = append(buf, "#include \"textflag.h\"\n\n"...)
	for len(buf) < end {
		buf = fmt.Appendf(buf, "// func %s(p []byte) uint64\nTEXT ·%s(SB), NOSPLIT, $0-32\n", v.word(r), v.word(r))
		for range 4 + r.IntN(20) {
			buf = fmt.Appendf(buf, "\t%s %d(%s), %s\n", asmOps[r.IntN(len(asmOps))], 8*r.IntN(16), asmRegs[r.IntN(len(asmRegs))], asmRegs[r.IntN(len(asmRegs))])
		}
		buf = append(buf, "\tRET\n\n"...)
	}
	return buf
}

// binary appends n bytes of 4 KiB blocks: a share rnd of them random, the
// others zero runs, little-endian small-integer tables or symbol names,
// like compiled code and data files.
func (v *vocabulary) binary(r *rand.Rand, buf []byte, n int, rnd float64) []byte {
	end := len(buf) + n
	for len(buf) < end {
		blk := min(4096, end-len(buf))
		if r.Float64() < rnd {
			buf = randomBytes(r, buf, blk)
			continue
		}
		start := len(buf)
		switch r.IntN(3) {
		case 0:
			buf = append(buf, make([]byte, blk)...)
		case 1:
			for len(buf)-start < blk {
				buf = binary.LittleEndian.AppendUint32(buf, uint32(r.IntN(300)))
			}
		default:
			for len(buf)-start < blk {
				buf = append(buf, v.word(r)...)
				buf = append(buf, 0)
			}
		}
		buf = buf[:start+blk]
	}
	return buf
}
