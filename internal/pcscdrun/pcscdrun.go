//go:build linux

// Package pcscdrun gives a pcscd with a vsmartcard vpcd virtual reader to
// the tests (internal/pcscdtest) and to `make sim NFC=1`
// (cmd/sim/internal/devsim): a phone simulator attaches to the reader as
// a card over a TCP socket on loopback, the appliance reads it through
// PC/SC.
//
// Debian 12's pcscd (1.9.9) does not honour PCSCLITE_CSOCK_NAME: every
// pcscd serves the standard socket (SystemSocket), so there is one reader
// on the machine at a time. Whoever uses it holds Lock for as long. When
// no pcscd runs, the user starts its own (Command) with a private
// reader.conf.d (Config) whose vpcd listens on a port of its choice; that
// needs the right to create /run/pcscd (root, or the pcscd package's
// systemd socket). When the system's pcscd runs, the user takes it and
// its vpcd reader on the default port (Debian's /etc/reader.conf.d/vpcd).
// It needs Debian's pcscd and vsmartcard-vpcd (make deps).
package pcscdrun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

const (
	// VPCDDriver is the vpcd driver Debian's vsmartcard-vpcd installs.
	VPCDDriver = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
	// SystemSocket is the socket of pcscd and its clients.
	SystemSocket = "/run/pcscd/pcscd.comm"
	// ReaderName is the name of the reader Config declares (PC/SC lists
	// it as "Virtual PCD 00 00"): the appliance's nfc.reader.
	ReaderName = "Virtual PCD"
	// DefaultPort is the vpcd port of Debian's /etc/reader.conf.d/vpcd.
	DefaultPort = 35963
)

// ErrNotInstalled: pcscd or the vpcd driver is missing.
var ErrNotInstalled = errors.New("pcscdrun: pcscd or vsmartcard-vpcd is not installed (make deps installs pcscd, libpcsclite-dev and vsmartcard-vpcd)")

// Find returns the path of pcscd, or ErrNotInstalled when it or the vpcd
// driver is missing.
func Find() (string, error) {
	pcscd, err := exec.LookPath("pcscd")
	if err != nil {
		pcscd = "/usr/sbin/pcscd" // not in a user's PATH
		if _, err := os.Stat(pcscd); err != nil {
			return "", ErrNotInstalled
		}
	}
	if _, err := os.Stat(VPCDDriver); err != nil {
		return "", ErrNotInstalled
	}
	return pcscd, nil
}

// SystemRunning reports whether a pcscd answers on SystemSocket.
func SystemRunning() bool {
	c, err := net.Dial("unix", SystemSocket)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// CanStart reports whether this process may start a pcscd of its own: it
// must create SystemSocket's directory (root's /run).
func CanStart() bool {
	dir := filepath.Dir(SystemSocket)
	if _, err := os.Stat(dir); err == nil {
		return syscall.Access(dir, 2 /* W_OK */) == nil
	}
	return syscall.Access(filepath.Dir(dir), 2) == nil
}

// LockFile is the lock Lock takes (the name the tests used before
// make sim shared it).
func LockFile() string { return filepath.Join(os.TempDir(), "cardless-pcscdtest.lock") }

// Lock takes the lock every user of the machine's virtual reader holds:
// the test processes of every package and make sim NFC=1, one at a time.
// When another holds it, Lock calls waiting once and tries again every
// 100 ms until ctx is done. unlock releases it.
func Lock(ctx context.Context, waiting func()) (unlock func(), err error) {
	f, err := os.OpenFile(LockFile(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for told := false; ; told = true {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("pcscdrun: lock %s: %w", LockFile(), err)
		}
		if !told && waiting != nil {
			waiting()
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("pcscdrun: waiting for %s: %w", LockFile(), ctx.Err())
		case <-t.C:
		}
	}
}

// Config writes into dir a reader.conf.d with one vpcd reader, ReaderName,
// that listens for a virtual card on port (vpcd opens a second reader on
// port+1), and returns its absolute path for Command.
func Config(dir string, port int) (string, error) {
	conf, err := filepath.Abs(filepath.Join(dir, "reader.conf.d")) // pcscd takes no relative -c
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(conf, 0o755); err != nil {
		return "", err
	}
	// vpcd's DEVICENAME /dev/null:PORT: listen on PORT for a virtual card.
	reader := fmt.Sprintf("FRIENDLYNAME \"%s\"\nDEVICENAME /dev/null:0x%04X\nLIBPATH %s\nCHANNELID 0x%04X\n", ReaderName, port, VPCDDriver, port)
	return conf, os.WriteFile(filepath.Join(conf, "vpcd"), []byte(reader), 0o644)
}

// Command is pcscd in the foreground with the readers of conf, logging
// every APDU (-a) to its standard error.
func Command(pcscd, conf string) *exec.Cmd { return exec.Command(pcscd, "-f", "-a", "-c", conf) }

// WaitReady waits until a pcscd serves SystemSocket and vpcd listens on
// addr, at most d; it stops early when exited is closed (the pcscd the
// caller started ended).
func WaitReady(addr string, exited <-chan struct{}, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		select {
		case <-exited:
			return errors.New("pcscdrun: pcscd exited at start")
		default:
		}
		if SystemRunning() && Listening(addr) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pcscdrun: no pcscd with a vpcd reader on %s after %v", addr, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Listening probes vpcd's port without attaching a card for long: vpcd
// takes the connection as a card, which goes away again at once.
func Listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// FreePort finds a loopback port p with p+1 free too: vpcd opens two
// readers, on p and p+1.
func FreePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		l.Close()
		if err == nil {
			l2.Close()
			return p, nil
		}
	}
	return 0, errors.New("pcscdrun: no two free ports in a row")
}
