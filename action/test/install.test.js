'use strict';
// Getting the binary: the release download and its verification against
// a local HTTP server playing the release host, the fall back to building
// from source, TIERCACHE_BIN, and the archive readers.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const url = require('node:url');
const zlib = require('node:zlib');
const { spawnSync } = require('node:child_process');
const { test } = require('node:test');

const h = require('./helpers');
const install = require('../install');
const { fileFromTarGz, fileFromZip } = require('../unpack');

// --- archives made here ---------------------------------------------------------

function tarHeader(name, size, type = '0') {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100);
  b.write('0000755\0', 100);
  b.write('0000000\0', 108);
  b.write('0000000\0', 116);
  b.write(size.toString(8).padStart(11, '0') + '\0', 124);
  b.write('00000000000\0', 136);
  b.write('        ', 148);
  b.write(type, 156);
  b.write('ustar\0', 257);
  b.write('00', 263);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return b;
}

// tarGz packs members ({name, data, type}) into a .tar.gz.
function tarGz(members) {
  const parts = [];
  for (const { name, data = Buffer.alloc(0), type = '0' } of members) {
    const d = Buffer.from(data);
    parts.push(tarHeader(name, d.length, type), d, Buffer.alloc((512 - (d.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return zlib.gzipSync(Buffer.concat(parts));
}

// zip packs members ({name, data}) deflated (CRCs left 0: the reader
// relies on the archive's SHA-256, not on them).
function zip(members) {
  const locals = [];
  const central = [];
  let off = 0;
  for (const { name, data } of members) {
    const n = Buffer.from(name);
    const comp = zlib.deflateRawSync(Buffer.from(data));
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(8, 8);
    lh.writeUInt32LE(comp.length, 18);
    lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(n.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(8, 10);
    ch.writeUInt32LE(comp.length, 20);
    ch.writeUInt32LE(data.length, 24);
    ch.writeUInt16LE(n.length, 28);
    ch.writeUInt32LE(off, 42);
    locals.push(lh, n, comp);
    central.push(ch, n);
    off += 30 + n.length + comp.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(off, 16);
  return Buffer.concat([...locals, cd, end]);
}

test('archive readers: the file at the root, nothing else', () => {
  const bin = crypto.randomBytes(3000);
  const gz = tarGz([
    { name: 'README.md', data: 'readme' },
    { name: 'sub/tiercache', data: 'not this one' },
    { name: '../tiercache', data: 'nor this one' },
    { name: 'tiercache', data: bin },
  ]);
  assert.ok(fileFromTarGz(gz, 'tiercache').equals(bin));
  assert.ok(fileFromTarGz(tarGz([{ name: './tiercache', data: bin }]), 'tiercache').equals(bin));
  assert.throws(() => fileFromTarGz(tarGz([{ name: '../tiercache', data: bin }, { name: 'x/tiercache', data: bin }]), 'tiercache'), /no file "tiercache" at its root/);
  assert.throws(() => fileFromTarGz(tarGz([{ name: 'tiercache', type: '2' }]), 'tiercache'), /no file/, 'a symlink is not the binary');
  // A pax header's path is the member's name.
  const pax = Buffer.from('22 path=sub/tiercache\n');
  assert.throws(() => fileFromTarGz(tarGz([{ name: 'PaxHeader', data: pax, type: 'x' }, { name: 'tiercache', data: bin }]), 'tiercache'), /no file/);
  const corrupt = zlib.gunzipSync(gz);
  corrupt[1030] ^= 0xff; // in the third header's name
  assert.throws(() => fileFromTarGz(zlib.gzipSync(corrupt), 'tiercache'), /checksum/);

  const z = zip([
    { name: 'README.md', data: Buffer.from('readme') },
    { name: '../tiercache.exe', data: Buffer.from('no') },
    { name: 'tiercache.exe', data: bin },
  ]);
  assert.ok(fileFromZip(z, 'tiercache.exe').equals(bin));
  assert.throws(() => fileFromZip(zip([{ name: 'a/tiercache.exe', data: bin }]), 'tiercache.exe'), /no file/);
});

test('which refs have releases, and the asset names', () => {
  assert.equal(install.releaseVersion('v1.2.3'), '1.2.3');
  assert.equal(install.releaseVersion('v1.2.3-rc.1'), '1.2.3-rc.1');
  assert.equal(install.releaseVersion('1.2.3'), '1.2.3');
  for (const ref of ['v1', 'v1.2', 'main', 'feature/v1.2.3', '0123456789abcdef0123456789abcdef01234567', '']) {
    assert.equal(install.releaseVersion(ref), null, ref);
  }
  assert.deepEqual(install.platform('linux', 'x64'), { os: 'linux', arch: 'amd64', ext: 'tar.gz', exe: 'tiercache' });
  assert.deepEqual(install.platform('darwin', 'arm64'), { os: 'darwin', arch: 'arm64', ext: 'tar.gz', exe: 'tiercache' });
  assert.deepEqual(install.platform('win32', 'x64'), { os: 'windows', arch: 'amd64', ext: 'zip', exe: 'tiercache.exe' });
  assert.equal(install.platform('linux', 'ia32'), null);
  assert.deepEqual(install.assetNames('1.2.3', install.platform('win32', 'arm64')), {
    asset: 'tiercache_1.2.3_windows_arm64.zip',
    checksums: 'tiercache_1.2.3_checksums.txt',
  });

  const repo = { GITHUB_ACTION_REPOSITORY: 'tiercache/tiercache' };
  assert.deepEqual(install.plan({ TIERCACHE_BIN: '/x/tiercache', GITHUB_ACTION_REF: 'v1.2.3', ...repo }), { kind: 'override', bin: '/x/tiercache' });
  assert.equal(install.plan({ GITHUB_ACTION_REF: 'v1.2.3', ...repo }).kind, 'release');
  assert.equal(install.plan({ GITHUB_ACTION_REF: 'v1.2.3', ...repo }, null).kind, 'build');
  assert.match(install.plan({ GITHUB_ACTION_REF: 'v1', ...repo }).why, /ref v1 is not a version tag/);
  assert.match(install.plan({ GITHUB_ACTION_REF: 'main', ...repo }).why, /ref main is not a version tag/);
  assert.match(install.plan({}).why, /not used from a repository/);
});

test('checksum lines', () => {
  const a = 'a'.repeat(64);
  const b = 'B'.repeat(64);
  const text = `${a}  tiercache_1.0.0_linux_amd64.tar.gz\n${b} *tiercache_1.0.0_darwin_arm64.tar.gz\r\n`;
  assert.equal(install.checksumFor(text, 'tiercache_1.0.0_linux_amd64.tar.gz'), a);
  assert.equal(install.checksumFor(text, 'tiercache_1.0.0_darwin_arm64.tar.gz'), 'b'.repeat(64));
  assert.equal(install.checksumFor(text, 'tiercache_1.0.0_linux_arm64.tar.gz'), null);
  assert.equal(install.checksumFor(`${a}  tiercache_1.0.0_linux_amd64.tar.gz.sig\n`, 'tiercache_1.0.0_linux_amd64.tar.gz'), null);
});

// releaseHost serves files (path → Buffer, or {redirect}) and counts
// requests; every other path is 404.
async function releaseHost(files) {
  const host = { requests: [] };
  const srv = http.createServer((req, res) => {
    host.requests.push(req.url);
    const f = files[req.url];
    if (f && f.redirect) {
      res.writeHead(302, { Location: f.redirect });
      res.end();
    } else if (f) {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.end(f);
    } else {
      res.writeHead(404);
      res.end('Not Found');
    }
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  host.url = `http://127.0.0.1:${srv.address().port}`;
  host.close = () => new Promise((r) => srv.close(r));
  return host;
}

const REF = 'v9.9.9';
const p = install.platform();
const { asset, checksums } = install.assetNames('9.9.9', p);
const base = `/tiercache/tiercache/releases/download/${REF}`;

function actionEnv(host, extra = {}) {
  return { TIERCACHE_BIN: undefined, GITHUB_SERVER_URL: host.url, GITHUB_ACTION_REPOSITORY: 'tiercache/tiercache', GITHUB_ACTION_REF: REF, ...extra };
}

function sha(b) {
  return crypto.createHash('sha256').update(b).digest('hex');
}

test('a release whose checksum matches is installed into the tool cache, run, and reused', async () => {
  const archive = tarGz([{ name: 'LICENSE', data: 'x' }, { name: p.exe, data: fs.readFileSync(h.tiercacheBin()) }]);
  const host = await releaseHost({
    [`${base}/${checksums}`]: Buffer.from(`${'0'.repeat(64)}  tiercache_9.9.9_other_os.tar.gz\n${sha(archive)}  ${asset}\n`),
    [`${base}/${asset}`]: { redirect: `/storage/${asset}?signed=1` },
    [`/storage/${asset}?signed=1`]: archive,
  });
  try {
    const m = new h.Machine();
    const inputs = { key: 'rel-1', path: 'dir' };
    const main = await h.mainStep(m, { inputs, extra: actionEnv(host) });
    assert.equal(main.code, 0, main.log);
    assert.match(main.log, new RegExp(`verified ${asset.replace(/\./g, '\\.')}: sha256 ${sha(archive)}`));
    const bin = path.join(m.toolcache, 'tiercache-tiercache-tiercache', '9.9.9', p.arch, p.exe);
    assert.equal(main.state.bin, bin);
    assert.ok(fs.readFileSync(bin).equals(fs.readFileSync(h.tiercacheBin())));
    assert.equal(main.outputs['cache-hit'], 'false', 'the installed binary did not run the pull');
    h.writeTree(path.join(m.workspace, 'dir'), 'rel');
    const post = await h.postStep(m, main, { inputs, extra: actionEnv(host) });
    assert.equal(post.code, 0, post.log);
    assert.match(post.log, new RegExp(`\\[command\\]${bin.replace(/[.]/g, '\\.')} push`));

    const before = host.requests.length;
    const again = await h.mainStep(m, { inputs, extra: actionEnv(host) });
    assert.equal(again.code, 0, again.log);
    assert.match(again.log, /found in the tool cache/);
    assert.equal(host.requests.length, before, 'downloaded again');
    assert.equal(again.outputs['cache-hit'], 'true');

    // A tool cache binary that no longer matches its recorded digest is
    // replaced by a verified download.
    fs.writeFileSync(bin, 'tampered');
    const fixed = await h.mainStep(m, { inputs, extra: actionEnv(host) });
    assert.equal(fixed.code, 0, fixed.log);
    assert.ok(host.requests.length > before, 'a tampered tool cache binary was run');
    assert.ok(fs.readFileSync(bin).equals(fs.readFileSync(h.tiercacheBin())));
  } finally {
    await host.close();
  }
});

test('a release whose checksum does not match, or is missing, is refused and never run', async () => {
  const archive = tarGz([{ name: p.exe, data: '#!/bin/sh\necho ran > "$HOME/ran"\n' }]);
  const wrong = 'f'.repeat(64);
  for (const [sums, want] of [
    [`${wrong}  ${asset}\n`, new RegExp(`checksum mismatch for ${asset.replace(/\./g, '\\.')}: ${checksums.replace(/\./g, '\\.')} says sha256 ${wrong}, the download has sha256 ${sha(archive)}`)],
    [`${sha(archive)}  some_other_asset.tar.gz\n`, new RegExp(`${checksums.replace(/\./g, '\\.')} has no line for ${asset.replace(/\./g, '\\.')}`)],
  ]) {
    const host = await releaseHost({ [`${base}/${checksums}`]: Buffer.from(sums), [`${base}/${asset}`]: archive });
    try {
      const m = new h.Machine();
      const main = await h.mainStep(m, { inputs: { key: 'bad', path: 'dir' }, extra: actionEnv(host) });
      assert.notEqual(main.code, 0, main.log);
      assert.match(main.stdout, want);
      assert.match(main.stdout, /::error title=tiercache::/);
      assert.equal(fs.existsSync(path.join(m.home, 'ran')), false, 'the unverified download ran');
      assert.equal(fs.existsSync(path.join(m.toolcache, 'tiercache-tiercache-tiercache', '9.9.9', p.arch, p.exe)), false, 'the unverified download was installed');
      assert.deepEqual(main.outputs, {});
      assert.equal(main.state.bin, undefined);
    } finally {
      await host.close();
    }
  }
});

// localGoProxy is a GOPROXY serving this machine's module cache first,
// then falling back to the GOPROXY the tests were started with.
function localGoProxy() {
  const r = spawnSync('go', ['env', 'GOMODCACHE', 'GOPROXY'], { encoding: 'utf8' });
  if (r.status !== 0) return process.env.GOPROXY;
  const [modcache, proxy] = r.stdout.trim().split('\n');
  const local = url.pathToFileURL(path.join(modcache, 'cache', 'download')).href;
  return proxy && proxy !== 'off' ? `${local},${proxy}` : local;
}

test('without a release (404) the binary is built from the action\'s source', async () => {
  const host = await releaseHost({});
  try {
    const m = new h.Machine();
    // The job's Go caches, which the build must leave alone: it uses the
    // action's own, under RUNNER_TEMP. Its modules come from this
    // machine's module cache where it has them, so the test needs no
    // network there.
    const user = { GOMODCACHE: path.join(m.home, 'go', 'pkg', 'mod'), GOCACHE: path.join(m.home, '.cache', 'go-build') };
    const main = await h.mainStep(m, { inputs: { key: 'src-1', path: 'dir' }, extra: actionEnv(host, { ...user, GOPROXY: localGoProxy() }) });
    assert.equal(main.code, 0, main.log);
    assert.match(main.log, /no release asset for v9\.9\.9 \(.*404 Not Found\): building tiercache from /);
    assert.ok(main.state.bin.startsWith(path.join(m.temp, 'tiercache-build-')), main.state.bin);
    for (const [v, dir] of Object.entries(user)) assert.equal(fs.existsSync(dir), false, `the build wrote into the job's ${v}`);
    assert.ok(fs.readdirSync(path.join(m.temp, 'tiercache-go', 'mod')).length > 0, 'the action\'s module cache is empty');
    const v = spawnSync(main.state.bin, ['version'], { encoding: 'utf8' });
    assert.match(v.stdout, /tiercache v9\.9\.9 /, 'not the binary built from source with the ref as its version');
    assert.equal(main.outputs['cache-primary-key'], 'src-1');
  } finally {
    await host.close();
  }
});

test('the build from source keeps out of the user\'s Go caches: GOMODCACHE and GOCACHE are the action\'s own', { skip: process.platform === 'win32' && 'the fake go is a shell script' }, async () => {
  const m = new h.Machine();
  // A fake go, first on PATH: it records its arguments and the Go
  // variables it was started with, and writes a stub binary where -o asks.
  const fake = path.join(m.root, 'fake-go');
  fs.mkdirSync(fake);
  const record = path.join(m.root, 'go-run');
  fs.writeFileSync(
    path.join(fake, 'go'),
    [
      '#!/bin/sh',
      `{ printf 'ARG=%s\\n' "$@"; for v in GOMODCACHE GOCACHE GOPATH GOPROXY GOFLAGS GOTOOLCHAIN HTTPS_PROXY; do eval "printf '%s=%s\\n' $v \\"\\$$v\\""; done; } > '${record}'`,
      'while [ $# -gt 0 ]; do if [ "$1" = -o ]; then out=$2; fi; shift; done',
      `printf '#!/bin/sh\\necho %s\\n' "'{\\"hit\\":false,\\"exact\\":false}'" > "$out"`,
      'chmod 755 "$out"',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  const user = {
    GOPATH: path.join(m.home, 'go'),
    GOMODCACHE: path.join(m.home, 'go', 'pkg', 'mod'),
    GOCACHE: path.join(m.home, '.cache', 'go-build'),
    GOPROXY: 'https://goproxy.example.com,direct',
    GOFLAGS: '-buildvcs=false -trimpath',
    GOTOOLCHAIN: 'go1.99.0+auto',
    HTTPS_PROXY: 'http://proxy.example.com:3128',
  };
  const main = await h.mainStep(m, {
    inputs: { key: 'gocache-1', path: '~/go/pkg/mod\n~/.cache/go-build' },
    extra: {
      TIERCACHE_BIN: undefined,
      GITHUB_ACTION_REPOSITORY: 'tiercache/tiercache',
      GITHUB_ACTION_REF: 'main',
      HOME: m.home,
      PATH: `${fake}${path.delimiter}${process.env.PATH}`,
      ...user,
    },
  });
  assert.equal(main.code, 0, main.log);
  assert.match(main.log, /ref main is not a version tag.*: building tiercache from /);
  const lines = fs.readFileSync(record, 'utf8').split('\n').slice(0, -1);
  const args = lines.filter((l) => l.startsWith('ARG=')).map((l) => l.slice(4));
  const vars = Object.fromEntries(lines.filter((l) => !l.startsWith('ARG=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  assert.equal(args[0], 'build');
  const goDir = path.join(m.temp, 'tiercache-go');
  for (const v of ['GOMODCACHE', 'GOCACHE']) {
    assert.notEqual(vars[v], user[v], `${v} is the user's`);
    assert.ok(vars[v].startsWith(goDir + path.sep), `${v}=${vars[v]} is not under ${goDir}`);
    assert.ok(!vars[v].startsWith(m.home + path.sep), `${v}=${vars[v]} is in HOME`);
  }
  assert.notEqual(vars.GOMODCACHE, vars.GOCACHE);
  assert.ok(args.includes('-modcacherw'), 'the module cache would be left read-only in RUNNER_TEMP');
  // The rest is the job's, as it was.
  for (const v of ['GOPATH', 'GOPROXY', 'GOFLAGS', 'GOTOOLCHAIN', 'HTTPS_PROXY']) assert.equal(vars[v], user[v], v);
  assert.ok(main.state.bin.startsWith(path.join(m.temp, 'tiercache-build-')), main.state.bin);
  assert.equal(main.outputs['cache-hit'], 'false', 'the built stub did not run the pull');
});

test('TIERCACHE_BIN: used as it is; a missing one is an error naming it', async () => {
  const m = new h.Machine();
  const script = path.join(m.root, 'fake-tiercache');
  const argsFile = path.join(m.root, 'args');
  fs.writeFileSync(script, `#!/bin/sh\nprintf '%s\\n' "$@" > '${argsFile}'\necho '{"hit":false,"exact":false}'\n`, { mode: 0o755 });
  const main = await h.mainStep(m, {
    inputs: {
      key: 'k-1',
      path: '~/a\n  b  \n!b/tmp\n',
      'restore-keys': 'k-\n\nk,with,commas-\n',
      remote: 's3://bucket/prefix',
      endpoint: 'https://s3.example.com',
      region: 'eu-west-1',
      'path-style': 'false',
      strict: 'true',
      'read-only': 'true',
      'lookup-only': 'true',
    },
    extra: { TIERCACHE_BIN: script, RUNNER_ENVIRONMENT: 'github-hosted' },
  });
  assert.equal(main.code, 0, main.log);
  assert.deepEqual(fs.readFileSync(argsFile, 'utf8').split('\n').slice(0, -1), [
    'pull',
    '--remote=s3://bucket/prefix',
    '--endpoint=https://s3.example.com',
    '--region=eu-west-1',
    '--path-style=false',
    '--read-only',
    '--strict',
    '--no-local=true',
    '--json',
    '--restore-key=k-1', // key itself is the first prefix, as in actions/cache
    '--restore-key=k-',
    '--restore-key=k,with,commas-',
    '--lookup-only',
    '--', // no --exclude on a pull: excludes matter to a push only
    'k-1',
    '~/a', // the home directory as "~/" on every OS, for the CLI to expand
    'b',
  ]);

  const missing = await h.mainStep(m, { inputs: { key: 'k', path: 'd' }, extra: { TIERCACHE_BIN: path.join(m.root, 'nope') } });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stdout, /TIERCACHE_BIN=.*nope: no such file/);
});
