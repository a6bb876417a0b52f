//go:build cgo

package ceremony_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardless-atm/cardless/hsm/p11/softhsm"
)

// TestLoadTMKIntoToken: the ceremony writes the TMK into a SoftHSM2 token,
// showing each component's KCV and the final one, and key list reads it
// back (with the TMK's prepared network-management variant).
func TestLoadTMKIntoToken(t *testing.T) {
	softhsm.Token(t, "ceremony")
	pin := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pin, []byte(softhsm.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	token := []string{"--pkcs11", softhsm.Library, "--token", "ceremony", "--pin-file", pin}
	final := refKCV(t, formRef(t, comp1, comp2))
	r := run(t, strings.NewReader(comp1+"\n"+comp2+"\n"), append([]string{"key", "load-tmk"}, token...)...)
	want := "Component 1 KCV: " + refKCV(t, comp1) + "\nComponent 2 KCV: " + refKCV(t, comp2) + "\nTMK KCV: " + final +
		"\nTMK stored as \"tmk\" in token \"ceremony\"\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("load-tmk: %+v\nwant stdout\n%s", r, want)
	}
	r = run(t, nil, append([]string{"key", "list"}, token...)...)
	if want := "NAME             TYPE         KCV\ntmk              3DES-2       " + final + "\n"; r.code != 0 || r.stdout != want {
		t.Fatalf("list: %+v\nwant\n%s", r, want)
	}
	// A second load needs --replace.
	r = run(t, strings.NewReader(comp1+"\n"+comp2+"\n"), append([]string{"key", "load-tmk"}, token...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "already holds tmk (KCV "+final+")") {
		t.Fatalf("second load: %+v", r)
	}
	// A wrong PIN is an error naming the token; nothing falls back.
	os.WriteFile(pin, []byte("0000-wrong\n"), 0o600)
	r = run(t, nil, append([]string{"key", "list"}, token...)...)
	if r.code != 1 || r.stderr != "atmctl: p11: wrong user PIN: token \"ceremony\"\n" {
		t.Fatalf("wrong PIN: %+v", r)
	}
}
