// Package softhsm makes SoftHSM2 tokens for tests: a fresh token in a
// temporary directory, with SOFTHSM2_CONF pointing at it for the test
// (Debian package softhsm2; make deps installs it). SoftHSM2 reads
// SOFTHSM2_CONF when the library is initialised, so tests that use it do
// not run in parallel.
package softhsm

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Library is the SoftHSM2 PKCS#11 module of Debian's softhsm2.
const Library = "/usr/lib/softhsm/libsofthsm2.so"

// Test-only PINs of the tokens Token makes.
const (
	PIN   = "2468-test-pin"
	SOPIN = "1357-test-so"
)

// Token initialises a SoftHSM2 token labelled label, with user PIN PIN,
// in a temporary directory of t, and sets SOFTHSM2_CONF for t. It fails
// the test (does not skip) when SoftHSM2 is missing.
func Token(t testing.TB, label string) {
	t.Helper()
	if _, err := os.Stat(Library); err != nil {
		t.Fatalf("SoftHSM2 is not installed (%v): run make deps, or apt-get install softhsm2", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SOPIN).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
}
