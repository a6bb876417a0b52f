package ceremony_test

import (
	"bytes"
	"crypto/des"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/ceremony"
)

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errb bytes.Buffer
	code := ceremony.Run(args, stdin, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// refKCV computes a KCV with crypto/des alone.
func refKCV(t *testing.T, keyHex string) string {
	t.Helper()
	k, err := hex.DecodeString(keyHex)
	if err != nil {
		t.Fatal(err)
	}
	if len(k) == 16 {
		k = append(k, k[:8]...)
	}
	c, err := des.NewTripleDESCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	var b [8]byte
	c.Encrypt(b[:], b[:])
	return fmt.Sprintf("%X", b[:3])
}

// formRef XORs hex components and sets odd parity, independently of hsm.
func formRef(t *testing.T, comps ...string) string {
	t.Helper()
	var k []byte
	for _, c := range comps {
		b, _ := hex.DecodeString(c)
		if k == nil {
			k = make([]byte, len(b))
		}
		for i := range k {
			k[i] ^= b[i]
		}
	}
	for i, b := range k {
		n := 0
		for j := 0; j < 8; j++ {
			n += int(b>>j) & 1
		}
		if n%2 == 0 {
			k[i] ^= 1
		}
	}
	return hex.EncodeToString(k)
}

func TestCryptoCommands(t *testing.T) {
	const key = "0123456789ABCDEFFEDCBA9876543210"
	// "Now is the time for all " (ISO/IEC 9797-1 Annex B sample text).
	const text = "4E6F77206973207468652074696D6520666F7220616C6C20"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"crypto", "kcv", "--key", key}, refKCV(t, key)},
		{[]string{"crypto", "kcv", "-key", strings.ToLower(key)}, "08D7B4"},
		// All-zero key: even parity, accepted by the debug command.
		{[]string{"crypto", "kcv", "--key", strings.Repeat("00", 16)}, refKCV(t, strings.Repeat("00", 16))},
		// ISO/IEC 9797-1 Annex B, MAC algorithm 3.
		{[]string{"crypto", "mac", "--key", key, "--data", text, "--padding", "1"}, "A1C72E74EA3FA9B6"},
		{[]string{"crypto", "mac", "--key", key, "--data", text, "--padding", "2"}, "E9086230CA3BE796"},
		// NIST SP 800-20 variable-plaintext KAT, first entry (one block,
		// so CBC with a zero IV equals ECB).
		{[]string{"crypto", "encrypt", "--key", strings.Repeat("01", 24), "--data", "8000000000000000"}, "95F8A5E5DD31D900"},
		{[]string{"crypto", "decrypt", "--key", strings.Repeat("01", 24), "--data", "95F8A5E5DD31D900"}, "8000000000000000"},
		// Two-key TDEA of the FIPS 81 text, first block as in the Bouncy
		// Castle DESede vectors.
		{[]string{"crypto", "encrypt", "--key", key, "--data", text[:16]}, "D80A0D8B2BAE5E4E"},
	} {
		r := run(t, nil, tc.args...)
		if r.code != 0 || r.stdout != tc.want+"\n" || r.stderr != "" {
			t.Errorf("%v: code %d stdout %q stderr %q; want %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
	// encrypt then decrypt of three blocks round-trips.
	enc := run(t, nil, "crypto", "encrypt", "--key", key, "--data", text)
	dec := run(t, nil, "crypto", "decrypt", "--key", key, "--data", strings.TrimSpace(enc.stdout))
	if dec.code != 0 || strings.TrimSpace(dec.stdout) != text {
		t.Fatalf("round trip: %+v", dec)
	}
}

func TestUsageErrors(t *testing.T) {
	const key = "0123456789ABCDEFFEDCBA9876543210"
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"crypto"},
		{"crypto", "sign", "--key", key},
		{"crypto", "kcv"},
		{"crypto", "kcv", "--key", "0123456789ABCDEFFEDCBA987654321G"},
		{"crypto", "kcv", "--key", "0123"},
		{"crypto", "kcv", "--key", key + "01"},
		{"crypto", "kcv", "--key", key, "extra"},
		{"crypto", "kcv", "--nope", key},
		{"crypto", "mac", "--key", key, "--data", "00"},
		{"crypto", "mac", "--key", key, "--data", "00", "--padding", "3"},
		{"crypto", "mac", "--key", key, "--data", "0", "--padding", "1"},
		{"crypto", "encrypt", "--key", key, "--data", "00112233445566"},
		{"crypto", "decrypt", "--key", key},
		{"key"},
		{"key", "rotate"},
		{"key", "init-storage-key"},
		{"key", "list"},
		{"key", "load-tmk", "--components", "4", "--store", "x", "--storage-key", "y"},
	} {
		r := run(t, nil, args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, r.code, r.stderr)
			continue
		}
		if len(args) == 0 {
			continue // usage text
		}
		if r.stdout != "" || !strings.HasPrefix(r.stderr, "atmctl: ") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: stdout %q stderr %q; want one atmctl: line on stderr", args, r.stdout, r.stderr)
		}
		if strings.Contains(strings.ToUpper(r.stderr), "0123456789") {
			t.Errorf("%v: error quotes the key: %q", args, r.stderr)
		}
	}
	r := run(t, nil, "help")
	if r.code != 0 || !strings.Contains(r.stdout, "do NOT check key parity") {
		t.Fatalf("help: %+v", r)
	}
}

// setup creates a storage key file with atmctl and returns the paths.
func setup(t *testing.T) (store, skey string) {
	t.Helper()
	dir := t.TempDir()
	store, skey = filepath.Join(dir, "keys.bin"), filepath.Join(dir, "storage.key")
	r := run(t, nil, "key", "init-storage-key", skey)
	if r.code != 0 {
		t.Fatalf("init-storage-key: %+v", r)
	}
	if r := run(t, nil, "key", "init-storage-key", skey); r.code != 1 || !strings.Contains(r.stderr, "refusing to overwrite") {
		t.Fatalf("second init-storage-key: %+v", r)
	}
	return store, skey
}

func storeKCV(t *testing.T, store, skey string, name hsm.KeyName) (string, error) {
	t.Helper()
	k, err := hsm.ReadStorageKeyFile(skey)
	if err != nil {
		t.Fatal(err)
	}
	s, err := hsm.OpenStore(store, k)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return s.KCV(name)
}

// Components with odd parity (published-style test keys).
const (
	comp1 = "0123456789ABCDEFFEDCBA9876543210"
	comp2 = "1C1C1C1C1C1C1C1CE0E0E0E0E0E0E0E0"
	comp3 = "3B3B3B3B3B3B3B3B7A7A7A7A7A7A7A7A"
)

// The key ceremony through a real pipe (stdin is an *os.File, not a tty).
func TestLoadTMKThroughPipe(t *testing.T) {
	store, skey := setup(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		fmt.Fprintf(pw, "%s\n%s\n", comp1, strings.ToLower(comp2))
		pw.Close()
	}()
	var out, errb bytes.Buffer
	code := ceremony.Run([]string{"key", "load-tmk", "--store", store, "--storage-key", skey}, pr, &out, &errb)
	pr.Close()
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	final := refKCV(t, formRef(t, comp1, comp2))
	want := fmt.Sprintf("Component 1 KCV: %s\nComponent 2 KCV: %s\nTMK KCV: %s\nTMK stored as \"tmk\" in %s\n",
		refKCV(t, comp1), refKCV(t, comp2), final, store)
	if out.String() != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", out.String(), want)
	}
	for _, secret := range []string{comp1, comp2, strings.ToLower(comp2)} {
		if strings.Contains(out.String()+errb.String(), secret) {
			t.Fatal("a component was echoed")
		}
	}
	if got, err := storeKCV(t, store, skey, hsm.TMK); err != nil || got != final {
		t.Fatalf("store holds TMK KCV %q, %v; want %s", got, err, final)
	}

	// key list shows it, by name, type and KCV only.
	r := run(t, nil, "key", "list", "--store", store, "--storage-key", skey)
	if r.code != 0 || !strings.Contains(r.stdout, "tmk") || !strings.Contains(r.stdout, final) || !strings.Contains(r.stdout, "3DES-2") {
		t.Fatalf("key list: %+v", r)
	}

	// A second ceremony needs --replace.
	in := comp1 + "\n" + comp3 + "\n"
	r = run(t, strings.NewReader(in), "key", "load-tmk", "--store", store, "--storage-key", skey)
	if r.code != 1 || !strings.Contains(r.stderr, "--replace") {
		t.Fatalf("without --replace: %+v", r)
	}
	r = run(t, strings.NewReader(in), "key", "load-tmk", "--store", store, "--storage-key", skey, "--replace")
	if r.code != 0 {
		t.Fatalf("with --replace: %+v", r)
	}
	if got, _ := storeKCV(t, store, skey, hsm.TMK); got != refKCV(t, formRef(t, comp1, comp3)) {
		t.Fatalf("replaced TMK KCV %s", got)
	}
}

func TestLoadTMKThreeComponentsAndExpectedKCV(t *testing.T) {
	store, skey := setup(t)
	final := refKCV(t, formRef(t, comp1, comp2, comp3))
	// Spaces inside a component are allowed (grouped as on the mailer).
	in := "0123 4567 89AB CDEF FEDC BA98 7654 3210\n" + comp2 + "\r\n" + comp3 + "\n"
	args := []string{"key", "load-tmk", "--store", store, "--storage-key", skey, "--components", "3"}

	r := run(t, strings.NewReader(in), append(args, "--expect-kcv", "000000")...)
	if r.code != 1 || !strings.Contains(r.stderr, "nothing stored") {
		t.Fatalf("wrong expected KCV: %+v", r)
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Fatalf("store written despite KCV mismatch: %v", err)
	}
	r = run(t, strings.NewReader(in), append(args, "--expect-kcv", strings.ToLower(final))...)
	if r.code != 0 || !strings.Contains(r.stdout, "Component 3 KCV: "+refKCV(t, comp3)) || !strings.Contains(r.stdout, "TMK KCV: "+final) {
		t.Fatalf("three components: %+v", r)
	}
	if got, _ := storeKCV(t, store, skey, hsm.TMK); got != final {
		t.Fatalf("stored KCV %s, want %s", got, final)
	}
}

func TestLoadTMKBadInput(t *testing.T) {
	badParity := "0123456789ABCDEFFEDCBA9876543211" // last byte 0x11: even parity
	for name, in := range map[string]string{
		"bad parity":      comp1 + "\n" + badParity + "\n",
		"not hex":         comp1 + "\n" + strings.Repeat("G", 32) + "\n",
		"short":           comp1 + "\n" + comp2[:30] + "\n",
		"length mismatch": comp1 + "\n" + comp2 + "0101010101010101\n",
		"end of input":    comp1 + "\n",
		"no input":        "",
	} {
		store, skey := setup(t)
		r := run(t, strings.NewReader(in), "key", "load-tmk", "--store", store, "--storage-key", skey)
		if r.code != 2 || !strings.HasPrefix(lastLine(r.stderr), "atmctl: component") {
			t.Errorf("%s: %+v", name, r)
		}
		if strings.Contains(r.stderr, badParity) || strings.Contains(r.stderr, "GGGG") {
			t.Errorf("%s: input echoed in the error", name)
		}
		if _, err := os.Stat(store); !os.IsNotExist(err) {
			t.Errorf("%s: store written", name)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestStoreErrors(t *testing.T) {
	store, skey := setup(t)
	in := comp1 + "\n" + comp2 + "\n"
	if r := run(t, strings.NewReader(in), "key", "load-tmk", "--store", store, "--storage-key", skey); r.code != 0 {
		t.Fatalf("load: %+v", r)
	}
	// Another storage key cannot open the store: clear error, exit 1.
	other := filepath.Join(t.TempDir(), "other.key")
	run(t, nil, "key", "init-storage-key", other)
	r := run(t, nil, "key", "list", "--store", store, "--storage-key", other)
	if r.code != 1 || !strings.Contains(r.stderr, "wrong storage key or file tampered with") {
		t.Fatalf("wrong storage key: %+v", r)
	}
	// The ceremony refuses before asking for components.
	r = run(t, strings.NewReader(in), "key", "load-tmk", "--store", store, "--storage-key", other, "--replace")
	if r.code != 1 || strings.Contains(r.stderr, "Component") {
		t.Fatalf("load-tmk with wrong storage key: %+v", r)
	}
	// A storage key file readable by others is refused.
	os.Chmod(skey, 0o644)
	r = run(t, nil, "key", "list", "--store", store, "--storage-key", skey)
	if r.code != 1 || !strings.Contains(r.stderr, "chmod 600") {
		t.Fatalf("world-readable storage key: %+v", r)
	}
	os.Chmod(skey, 0o600)
	// An empty store lists as such.
	store2 := filepath.Join(t.TempDir(), "empty.bin")
	r = run(t, nil, "key", "list", "--store", store2, "--storage-key", skey)
	if r.code != 0 || r.stdout != "(no keys)\n" {
		t.Fatalf("empty list: %+v", r)
	}
}

// TestLoadTMKRefusesWeakComponents: a component equal to an earlier one
// or with no key bits set defeats split knowledge and
// is refused; nothing is stored and the exit status is 2.
func TestLoadTMKRefusesWeakComponents(t *testing.T) {
	for _, tc := range []struct {
		name, in, args string
		want           string
	}{
		{"repeated", comp1 + "\n" + comp1 + "\n", "2",
			"atmctl: component 2: the component equals component 1: each custodian's component must be their own (split knowledge)"},
		{"repeated third", comp1 + "\n" + comp2 + "\n" + comp2 + "\n", "3",
			"atmctl: component 3: the component equals component 2: each custodian's component must be their own (split knowledge)"},
		{"zeros", strings.Repeat("01", 16) + "\n", "2",
			"atmctl: component 1: the component is all zeros (only parity bits set): each custodian types a random component"},
	} {
		store, skey := setup(t)
		r := run(t, strings.NewReader(tc.in), "key", "load-tmk", "--store", store, "--storage-key", skey, "--components", tc.args)
		if r.code != 2 || lastLine(r.stderr) != tc.want {
			t.Errorf("%s: %+v\nwant %s", tc.name, r, tc.want)
		}
		if _, err := os.Stat(store); !os.IsNotExist(err) {
			t.Errorf("%s: store written", tc.name)
		}
	}
}
