//go:build linux

// Package pcscdtest gives a test a pcscd with a vsmartcard vpcd virtual
// reader. When no pcscd runs, it starts one of the test's own with a
// private reader.conf.d whose vpcd listens on a free port for a virtual
// card. Debian 12's pcscd (1.9.9) does not honour PCSCLITE_CSOCK_NAME, so
// that pcscd serves the standard socket (/run/pcscd/pcscd.comm): a file
// lock serialises the tests of every package that use it. When the
// system's pcscd already runs, the test uses it and its vpcd reader on
// the default port (Debian's /etc/reader.conf.d/vpcd). It needs Debian's
// pcscd and vsmartcard-vpcd (make deps).
package pcscdtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// VPCDDriver is the vpcd driver Debian's vsmartcard-vpcd installs.
const VPCDDriver = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"

// Daemon is a running pcscd with one vpcd reader.
type Daemon struct {
	// VPCDAddr is where a virtual card connects ("127.0.0.1:PORT").
	VPCDAddr string
	// Socket is the pcscd's socket (PCSCLITE_CSOCK_NAME).
	Socket string
	log    *syncBuf
}

// Log returns what pcscd printed (with -a: every APDU).
func (d *Daemon) Log() string { return d.log.String() }

// SystemSocket is the socket of pcscd and its clients.
const SystemSocket = "/run/pcscd/pcscd.comm"

// Start gives t a pcscd with a vpcd reader, or skips t when pcscd or vpcd
// is not installed. A pcscd it started stops at the test's end.
func Start(t *testing.T) *Daemon {
	t.Helper()
	pcscd, err := exec.LookPath("pcscd")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/pcscd"); err != nil {
			t.Skip("pcscd is not installed (make deps installs pcscd, libpcsclite-dev and vsmartcard-vpcd): the tap is not tested against a real reader")
		}
		pcscd = "/usr/sbin/pcscd"
	}
	if _, err := os.Stat(VPCDDriver); err != nil {
		t.Skip("vsmartcard-vpcd is not installed (make deps installs it): the tap is not tested against a real reader")
	}
	lock(t)
	if c, err := net.Dial("unix", SystemSocket); err == nil {
		c.Close()
		d := &Daemon{VPCDAddr: fmt.Sprintf("127.0.0.1:%d", 35963), Socket: SystemSocket, log: &syncBuf{}}
		if !listening(d.VPCDAddr) {
			t.Fatalf("the system's pcscd runs but no vpcd reader listens on %s (/etc/reader.conf.d/vpcd; restart pcscd after installing vsmartcard-vpcd)", d.VPCDAddr)
		}
		t.Logf("using the system's pcscd (%s) and its vpcd reader at %s", SystemSocket, d.VPCDAddr)
		return d
	}
	port := freePort(t)
	dir, err := os.MkdirTemp("", "pcscd") // short: a socket path has at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "reader.conf.d")
	if err := os.Mkdir(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	// vpcd's DEVICENAME /dev/null:PORT: listen on PORT for a virtual card.
	reader := fmt.Sprintf("FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME /dev/null:0x%04X\nLIBPATH %s\nCHANNELID 0x%04X\n", port, VPCDDriver, port)
	if err := os.WriteFile(filepath.Join(conf, "vpcd"), []byte(reader), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{VPCDAddr: fmt.Sprintf("127.0.0.1:%d", port), Socket: SystemSocket, log: &syncBuf{}}
	cmd := exec.Command(pcscd, "-f", "-a", "-c", conf)
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("pcscd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("pcscd:\n%s", d.log.String())
		}
	})
	// Ready once the socket exists and vpcd listens.
	for i := 0; ; i++ {
		select {
		case <-exited:
			t.Fatalf("pcscd exited at start:\n%s", d.log.String())
		default:
		}
		if c, err := net.Dial("unix", d.Socket); err == nil && listening(d.VPCDAddr) {
			c.Close()
			return d
		}
		if i == 200 {
			t.Fatalf("pcscd did not come up in 10 s:\n%s", d.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listening probes vpcd's port without attaching a card for long: vpcd
// takes the connection as a card, which goes away again at once.
func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// freePort finds a port p with p+1 free too: vpcd opens two readers, on
// p and p+1.
func freePort(t *testing.T) int {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no two free ports in a row")
	return 0
}

// lock holds a lock shared by every test process for the rest of t: one
// pcscd at a time.
func lock(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "cardless-pcscdtest.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
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
