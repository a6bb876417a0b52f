package main

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/operators"
)

func TestOperatorAdd(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := operatorCmd([]string{"add", "--data-dir", dir, "--id", "op-7"}, strings.NewReader("271828\n"), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if strings.Contains(out.String()+errb.String(), "271828") {
		t.Fatal("the secret was echoed")
	}
	f, err := operators.Open(filepath.Join(dir, appliance.OperatorsFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Check("op-7", "271828"); err != nil {
		t.Fatal(err)
	}
	if err := f.Check("op-7", "271829"); !errors.Is(err, operators.ErrBadCredentials) {
		t.Fatalf("wrong secret: %v", err)
	}
	for _, args := range [][]string{nil, {"remove"}, {"add", "--id", "x"}, {"add", "--data-dir", dir, "--id", "op 7"}} {
		errb.Reset()
		if code := operatorCmd(args, strings.NewReader("271828\n"), &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("%q: exit %d, message %q", args, code, errb.String())
		}
	}
	if code := operatorCmd([]string{"add", "--data-dir", dir, "--id", "op-8"}, strings.NewReader("123\n"), &out, &errb); code != 2 {
		t.Error("a 3-character PIN was accepted")
	}
}
