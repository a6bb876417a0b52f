package connlimit

import (
	"testing"
	"time"
)

func TestFileLimits(t *testing.T) {
	l, err := FileLimits{MaxConns: 5, FirstByte: "2s"}.Limits()
	if err != nil || l.MaxConns != 5 || l.FirstByte != 2*time.Second || l.Frame != 0 {
		t.Fatalf("%+v %v", l, err)
	}
	if d := l.WithDefaults(); d.Frame != DefaultFrame || d.Idle != DefaultIdle || d.MaxPerSource != DefaultMaxPerSource || d.MaxConns != 5 {
		t.Fatalf("defaults %+v", d)
	}
	for _, bad := range []FileLimits{{FirstByte: "soon"}, {Frame: "-1s"}, {Idle: "0s"}, {MaxConns: -1}} {
		if _, err := bad.Limits(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
