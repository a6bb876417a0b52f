package operators_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/operators"
)

func TestCheckAndLockout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "operators.json")
	now := time.Date(2028, 2, 29, 23, 59, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	f, err := operators.Open(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Check("op-7", "271828"); !errors.Is(err, operators.ErrNone) {
		t.Fatalf("no operators: %v", err)
	}
	for _, bad := range [][2]string{{"", "271828"}, {"has space", "271828"}, {"op-7", "12345"}} {
		if err := f.Add(bad[0], bad[1]); err == nil {
			t.Errorf("Add(%q, %d characters) accepted", bad[0], len(bad[1]))
		}
	}
	if err := f.Add("op-7", "271828"); err != nil {
		t.Fatal(err)
	}
	if err := f.Add("op-8", "correct horse"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if bytes.Contains(b, []byte("271828")) || bytes.Contains(b, []byte("correct horse")) {
		t.Fatal("a secret is in the file in clear")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", st.Mode().Perm())
	}
	if err := f.Check("op-7", "271828"); err != nil {
		t.Fatal(err)
	}
	if err := f.Check("nobody", "271828"); !errors.Is(err, operators.ErrBadCredentials) {
		t.Fatalf("unknown operator: %v", err)
	}
	for i := 1; i < operators.MaxFailures; i++ {
		if err := f.Check("op-7", "000000"); !errors.Is(err, operators.ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if err := f.Check("op-7", "000000"); !errors.Is(err, operators.ErrLocked) {
		t.Fatalf("failure %d: %v, want locked", operators.MaxFailures, err)
	}
	// Locked even with the right secret, across a restart, and only op-7.
	f, err = operators.Open(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Check("op-7", "271828"); !errors.Is(err, operators.ErrLocked) {
		t.Fatalf("locked operator with the right secret: %v", err)
	}
	if err := f.Check("op-8", "correct horse"); err != nil {
		t.Fatalf("another operator: %v", err)
	}
	now = now.Add(operators.LockoutTime)
	if err := f.Check("op-7", "271828"); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
}
