package sign

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

func fields() Fields {
	return Fields{Scope: "refs/heads/main", Key: "gomod-1", Description: "d", Paths: []string{"a", "b"},
		Size: 10, Files: 2, ArchiveSize: 99, SHA256: strings.Repeat("ab", 32),
		IndexOffset: 80, IndexLength: 19, IndexSHA256: strings.Repeat("cd", 32)}
}

func keyPair(t *testing.T) (privText, pubText string) {
	t.Helper()
	priv, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func TestSignVerify(t *testing.T) {
	privText, pubText := keyPair(t)
	priv, err := ParsePrivateKey(" " + privText + "\n")
	if err != nil {
		t.Fatal(err)
	}
	_, otherText := keyPair(t)
	keys, err := ParsePublicKeys(otherText + ",\n" + pubText)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := NewTrust(keys)
	if err != nil {
		t.Fatal(err)
	}
	sig := Sign(priv, fields())
	if err := trust.Verify(fields(), sig); err != nil {
		t.Fatalf("a signature by the second trusted key: %v", err)
	}

	// Every field is covered.
	edits := map[string]func(f *Fields){
		"scope":        func(f *Fields) { f.Scope = "refs/pull/1/merge" },
		"key":          func(f *Fields) { f.Key = "gomod-2" },
		"description":  func(f *Fields) { f.Description = "" },
		"paths":        func(f *Fields) { f.Paths = []string{"ab"} },
		"path count":   func(f *Fields) { f.Paths = append(f.Paths, "") },
		"size":         func(f *Fields) { f.Size++ },
		"files":        func(f *Fields) { f.Files-- },
		"archive size": func(f *Fields) { f.ArchiveSize++ },
		"sha256":       func(f *Fields) { f.SHA256 = strings.Repeat("ab", 31) + "ac" },
		"index offset": func(f *Fields) { f.IndexOffset++ },
		"index length": func(f *Fields) { f.IndexLength = 0 },
		"index sha256": func(f *Fields) { f.IndexSHA256 = "" },
	}
	for name, edit := range edits {
		f := fields()
		edit(&f)
		if bytes.Equal(Message(f), Message(fields())) {
			t.Errorf("%s: the message does not change", name)
		}
		if err := trust.Verify(f, sig); !errors.Is(err, ErrBadSignature) || !errors.Is(err, ErrUntrusted) {
			t.Errorf("%s edited: Verify = %v, want ErrBadSignature", name, err)
		}
	}
	bad := *sig
	bad.Sig = bytes.Clone(sig.Sig)
	bad.Sig[0] ^= 1
	if err := trust.Verify(fields(), &bad); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a flipped signature bit: %v", err)
	}
	bad.Sig = bad.Sig[:10]
	if err := trust.Verify(fields(), &bad); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a short signature: %v", err)
	}
	if err := trust.Verify(fields(), nil); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned: %v", err)
	}

	strangerText, _ := keyPair(t)
	stranger, _ := ParsePrivateKey(strangerText)
	err = trust.Verify(fields(), Sign(stranger, fields()))
	if !errors.Is(err, ErrUnknownSigner) || !strings.Contains(err.Error(), Fingerprint(stranger.Public().(ed25519.PublicKey))) {
		t.Errorf("a stranger's signature: %v, want ErrUnknownSigner naming its fingerprint", err)
	}
}

func TestParseErrors(t *testing.T) {
	privText, pubText := keyPair(t)
	secret := strings.TrimPrefix(privText, privatePrefix)
	for _, s := range []string{"", "  ", pubText, secret, privatePrefix + "AAAA"} {
		if _, err := ParsePrivateKey(s); err == nil {
			t.Errorf("ParsePrivateKey(%q) accepted it", s)
		} else if secret != "" && strings.Contains(err.Error(), secret) {
			t.Errorf("ParsePrivateKey's error quotes the secret: %v", err)
		}
	}
	for _, s := range []string{"", " , ", privText, secret, pubText + "," + publicPrefix + "AAAA"} {
		if _, err := ParsePublicKeys(s); err == nil {
			t.Errorf("ParsePublicKeys(%q) accepted it", s)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("ParsePublicKeys's error quotes a private key: %v", err)
		}
	}
	if _, err := NewTrust(nil); err == nil {
		t.Error("NewTrust(nil) accepted no key")
	}
}
