//go:build linux

// Package pcscdtest gives a test a pcscd with a vsmartcard vpcd virtual
// reader (internal/pcscdrun). When no pcscd runs, it starts one of the
// test's own with a private reader.conf.d whose vpcd listens on a free
// port for a virtual card. Debian 12's pcscd (1.9.9) does not honour
// PCSCLITE_CSOCK_NAME, so that pcscd serves the standard socket
// (/run/pcscd/pcscd.comm): a file lock (pcscdrun.Lock) serialises the
// tests of every package that use it, and make sim NFC=1. When the
// system's pcscd already runs, the test uses it and its vpcd reader on
// the default port (Debian's /etc/reader.conf.d/vpcd). It needs Debian's
// pcscd and vsmartcard-vpcd (make deps).
package pcscdtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/internal/pcscdrun"
)

// VPCDDriver is the vpcd driver Debian's vsmartcard-vpcd installs.
const VPCDDriver = pcscdrun.VPCDDriver

// Daemon is a running pcscd with one vpcd reader.
type Daemon struct {
	// VPCDAddr is where a virtual card connects ("127.0.0.1:PORT").
	VPCDAddr string
	// Socket is the pcscd's socket (PCSCLITE_CSOCK_NAME).
	Socket string
	log    *syncBuf

	// The test's own pcscd (pcscd "" when it is the system's).
	pcscd, conf string
	cmd         *exec.Cmd
	exited      chan struct{}
}

// Log returns what pcscd printed (with -a: every APDU).
func (d *Daemon) Log() string { return d.log.String() }

// SystemSocket is the socket of pcscd and its clients.
const SystemSocket = pcscdrun.SystemSocket

// Start gives t a pcscd with a vpcd reader, or skips t when pcscd or vpcd
// is not installed. A pcscd it started stops at the test's end.
func Start(t *testing.T) *Daemon {
	t.Helper()
	pcscd, err := pcscdrun.Find()
	if err != nil {
		t.Skipf("%v: the tap is not tested against a real reader", err)
	}
	unlock, err := pcscdrun.Lock(context.Background(), func() {
		t.Logf("waiting for %s: another test, or make sim NFC=1, uses the virtual reader", pcscdrun.LockFile())
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unlock)
	if pcscdrun.SystemRunning() {
		d := &Daemon{VPCDAddr: fmt.Sprintf("127.0.0.1:%d", pcscdrun.DefaultPort), Socket: SystemSocket, log: &syncBuf{}}
		if !pcscdrun.Listening(d.VPCDAddr) {
			t.Fatalf("the system's pcscd runs but no vpcd reader listens on %s (/etc/reader.conf.d/vpcd; restart pcscd after installing vsmartcard-vpcd)", d.VPCDAddr)
		}
		t.Logf("using the system's pcscd (%s) and its vpcd reader at %s", SystemSocket, d.VPCDAddr)
		return d
	}
	port, err := pcscdrun.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pcscd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf, err := pcscdrun.Config(dir, port)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{VPCDAddr: fmt.Sprintf("127.0.0.1:%d", port), Socket: SystemSocket, log: &syncBuf{}, pcscd: pcscd, conf: conf}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("pcscd:\n%s", d.log.String())
		}
	})
	d.start(t)
	return d
}

// Own reports whether the test started this pcscd (not the system's):
// only then can it Stop and Restart it.
func (d *Daemon) Own() bool { return d.pcscd != "" }

// Stop stops the test's own pcscd, as an operator or a crash would: the
// clients' contexts lose their service.
func (d *Daemon) Stop(t *testing.T) {
	t.Helper()
	if !d.Own() {
		t.Fatal("pcscdtest: the system's pcscd is not the test's to stop")
	}
	d.stop()
}

// Restart starts the test's own pcscd again after Stop, with the same
// reader on the same port.
func (d *Daemon) Restart(t *testing.T) {
	t.Helper()
	if !d.Own() || d.cmd != nil {
		t.Fatal("pcscdtest: Restart needs the test's own pcscd, stopped")
	}
	d.start(t)
}

func (d *Daemon) start(t *testing.T) {
	t.Helper()
	cmd := pcscdrun.Command(d.pcscd, d.conf)
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("pcscd: %v", err)
	}
	d.cmd, d.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { cmd.Wait(); close(exited) }(d.exited)
	if err := pcscdrun.WaitReady(d.VPCDAddr, d.exited, 10*time.Second); err != nil {
		t.Fatalf("%v:\n%s", err, d.log.String())
	}
}

// stop ends the pcscd the test started, if it runs.
func (d *Daemon) stop() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Clone(s.b.String())
}
