package diskspace_test

import (
	"testing"

	"github.com/cardless-atm/cardless/atm/diskspace"
)

func TestFree(t *testing.T) {
	n, err := diskspace.Free(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no free space reported for a writable temporary directory")
	}
	if _, err := diskspace.Free(t.TempDir() + "/missing/dir"); err == nil {
		t.Fatal("free space of a missing directory")
	}
}
