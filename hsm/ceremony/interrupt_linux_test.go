//go:build linux

package ceremony_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/ceremony"
)

// The terminal tests run the ceremony in a child process (this test binary
// re-executed) whose standard input is the slave side of a real
// pseudo-terminal, so that a signal can end it as it would end atmctl.

const (
	helperEnv      = "CEREMONY_TTY_HELPER" // "1" in the child
	helperArgsEnv  = "CEREMONY_TTY_ARGS"   // Run's arguments, one a line
	helperAfterEnv = "CEREMONY_TTY_AFTER"  // "1": SIGINT itself after Run
	waitLimit      = 30 * time.Second      // bound on every wait
)

// TestHelperProcess is the child: it runs atmctl on its own standard
// streams. It does nothing in an ordinary test run.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	code := ceremony.Run(strings.Split(os.Getenv(helperArgsEnv), "\n"), os.Stdin, os.Stdout, os.Stderr)
	if os.Getenv(helperAfterEnv) == "1" && code == ceremony.ExitOK {
		// Once the ceremony is over SIGINT must no longer be caught: the
		// default action ends the process at once. Exit 99 (after a
		// bound) if the signal was swallowed.
		syscall.Kill(os.Getpid(), syscall.SIGINT)
		<-time.After(waitLimit / 2)
		os.Exit(99)
	}
	os.Exit(code)
}

// pty is a pseudo-terminal pair: master is raw and non-blocking (the test
// types on it), slave is given to the child as standard input.
type pty struct {
	master int
	slave  *os.File
}

func openPTY(t *testing.T) *pty {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { unix.Close(m) })
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	s, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	p := &pty{master: m, slave: os.NewFile(uintptr(s), name)}
	t.Cleanup(func() { p.slave.Close() })
	return p
}

func (p *pty) termios(t *testing.T) *unix.Termios {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatalf("TCGETS: %v", err)
	}
	return tio
}

func (p *pty) echo(t *testing.T) bool { return p.termios(t).Lflag&unix.ECHO != 0 }

// waitEcho polls the terminal until its echo flag is want, within waitLimit.
func (p *pty) waitEcho(t *testing.T, want bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for p.echo(t) != want {
		if time.Now().After(deadline) {
			t.Fatalf("terminal echo never became %v", want)
		}
		time.Sleep(time.Millisecond)
	}
}

func (p *pty) typeIn(t *testing.T, s string) {
	t.Helper()
	if n, err := unix.Write(p.master, []byte(s)); err != nil || n != len(s) {
		t.Fatalf("typing on the terminal: %d, %v", n, err)
	}
}

// echoed returns what the terminal has written back to the master side so
// far (its echo); the slave is still open, so an empty queue reads EAGAIN.
func (p *pty) echoed(t *testing.T) string {
	t.Helper()
	var out []byte
	b := make([]byte, 1024)
	for i := 0; i < 1024; i++ {
		n, err := unix.Read(p.master, b)
		if n > 0 {
			out = append(out, b[:n]...)
		}
		if errors.Is(err, unix.EAGAIN) || (err == nil && n == 0) {
			return string(out)
		}
		if err != nil {
			t.Fatalf("reading the master side: %v", err)
		}
	}
	t.Fatal("the terminal keeps producing output")
	return ""
}

// output collects a child's stream and lets the test wait for a string.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
	eof     chan struct{}
}

func newOutput(r io.Reader) *output {
	o := &output{changed: make(chan struct{}), eof: make(chan struct{})}
	go func() {
		b := make([]byte, 512)
		for {
			n, err := r.Read(b)
			o.mu.Lock()
			o.buf.Write(b[:n])
			close(o.changed)
			o.changed = make(chan struct{})
			o.mu.Unlock()
			if err != nil {
				close(o.eof)
				return
			}
		}
	}()
	return o
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func (o *output) waitFor(t *testing.T, s string) {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		o.mu.Lock()
		found, changed := strings.Contains(o.buf.String(), s), o.changed
		o.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-o.eof:
			if !strings.Contains(o.String(), s) {
				t.Fatalf("stream ended without %q: %q", s, o.String())
			}
			return
		case <-timer.C:
			t.Fatalf("no %q within %v: %q", s, waitLimit, o.String())
		}
	}
}

type child struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr *output
	waited bool
}

// startChild runs "atmctl args" in a child whose stdin is the slave side of
// p. With ctty the terminal becomes the child's controlling terminal (a new
// session), so ^C typed on the master sends it SIGINT.
func startChild(t *testing.T, p *pty, ctty, after bool, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")}
	c.cmd.Env = append(os.Environ(), helperEnv+"=1", helperArgsEnv+"="+strings.Join(args, "\n"))
	if after {
		c.cmd.Env = append(c.cmd.Env, helperAfterEnv+"=1")
	}
	c.cmd.Stdin = p.slave
	c.cmd.Stdout = &c.stdout
	if ctty {
		c.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}
	errPipe, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.stderr = newOutput(errPipe)
	t.Cleanup(func() {
		if !c.waited {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	return c
}

// wait waits (bounded) for the child to end and returns its wait status.
func (c *child) wait(t *testing.T) syscall.WaitStatus {
	t.Helper()
	select {
	case <-c.stderr.eof:
	case <-time.After(waitLimit):
		t.Fatalf("child still running after %v; stderr %q", waitLimit, c.stderr.String())
	}
	err := c.cmd.Wait()
	c.waited = true
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("wait: %v", err)
	}
	return c.cmd.ProcessState.Sys().(syscall.WaitStatus)
}

func newStore(t *testing.T) (store, skey string) {
	t.Helper()
	dir := t.TempDir()
	store, skey = filepath.Join(dir, "keys.bin"), filepath.Join(dir, "storage.key")
	if err := hsm.NewStorageKeyFile(skey); err != nil {
		t.Fatal(err)
	}
	return store, skey
}

func TestLoadTMKInterruptedOnTerminal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sig    syscall.Signal
		ctrlC  bool // type ^C on the terminal instead of signalling the child
		first  bool // complete the first component before interrupting
		typed  string
		status int
	}{
		{name: "SIGINT", sig: syscall.SIGINT, typed: "0123 4567 89", status: 130},
		{name: "SIGTERM", sig: syscall.SIGTERM, typed: "FEDC", status: 143},
		{name: "SIGHUP", sig: syscall.SIGHUP, status: 129},
		{name: "SIGQUIT", sig: syscall.SIGQUIT, typed: "01", status: 131},
		{name: "Ctrl-C after the first component", ctrlC: true, first: true, typed: "1C1C", status: 130},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := openPTY(t)
			before := p.termios(t)
			if before.Lflag&unix.ECHO == 0 {
				t.Fatal("a new terminal has echo off")
			}
			store, skey := newStore(t)
			c := startChild(t, p, tc.ctrlC, false, "key", "load-tmk", "--store", store, "--storage-key", skey)

			c.stderr.waitFor(t, "Component 1 of 2")
			p.waitEcho(t, false)
			if tc.first {
				p.typeIn(t, comp1+"\r")
				c.stderr.waitFor(t, "Component 2 of 2")
				p.waitEcho(t, false)
			}
			if tc.typed != "" {
				p.typeIn(t, tc.typed)
			}
			if p.echo(t) {
				t.Fatal("echo on while a component is being read")
			}
			if tc.ctrlC {
				p.typeIn(t, "\x03")
			} else if err := c.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			ws := c.wait(t)

			stderr := c.stderr.String()
			if ws.Signaled() {
				t.Errorf("child killed by %v instead of exiting; stderr %q", ws.Signal(), stderr)
			}
			if ws.ExitStatus() != tc.status {
				t.Errorf("exit status %d, want %d; stderr %q", ws.ExitStatus(), tc.status, stderr)
			}
			after := p.termios(t)
			if after.Lflag&unix.ECHO == 0 {
				t.Error("terminal left with echo off")
			}
			if after.Lflag != before.Lflag {
				t.Errorf("terminal local flags %#x after, %#x before", after.Lflag, before.Lflag)
			}
			if !strings.Contains(stderr, "interrupted") || !strings.Contains(stderr, "nothing was stored") {
				t.Errorf("stderr %q does not say the ceremony was interrupted", stderr)
			}
			for _, secret := range []string{"0123", "FEDC", "1C1C"} {
				if strings.Contains(stderr, secret) || strings.Contains(c.stdout.String(), secret) {
					t.Errorf("typed input %q appears in the output", secret)
				}
			}
			if e := p.echoed(t); strings.Contains(e, "0123") || strings.Contains(e, "1C1C") || strings.Contains(e, "FEDC") {
				t.Errorf("the terminal echoed typed input: %q", e)
			}
			if tc.first && !strings.Contains(c.stdout.String(), "Component 1 KCV: "+refKCV(t, comp1)) {
				t.Errorf("first component not accepted: stdout %q", c.stdout.String())
			}
			if strings.Contains(c.stdout.String(), "stored") {
				t.Errorf("stdout %q claims a key was stored", c.stdout.String())
			}
			if _, err := os.Stat(store); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("key store written after an interrupt: %v", err)
			}
			if kcv, err := storeKCV(t, store, skey, hsm.TMK); err == nil {
				t.Errorf("store holds a TMK (KCV %s) after an interrupt", kcv)
			}
		})
	}
}

// The ordinary ceremony on a terminal: nothing echoed, echo restored, the
// TMK stored, and SIGINT no longer caught once the reads are over.
func TestLoadTMKOnTerminal(t *testing.T) {
	p := openPTY(t)
	store, skey := newStore(t)
	c := startChild(t, p, false, true, "key", "load-tmk", "--store", store, "--storage-key", skey)
	for i, comp := range []string{comp1, strings.ToLower(comp2)} {
		c.stderr.waitFor(t, fmt.Sprintf("Component %d of 2", i+1))
		p.waitEcho(t, false)
		p.typeIn(t, comp+"\r")
	}
	ws := c.wait(t)
	if !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Fatalf("after the ceremony SIGINT was caught: status %v; stderr %q", ws, c.stderr.String())
	}
	if !p.echo(t) {
		t.Error("terminal left with echo off")
	}
	final := refKCV(t, formRef(t, comp1, comp2))
	if !strings.Contains(c.stdout.String(), "TMK KCV: "+final) {
		t.Errorf("stdout %q", c.stdout.String())
	}
	if kcv, err := storeKCV(t, store, skey, hsm.TMK); err != nil || kcv != final {
		t.Errorf("stored TMK KCV %q, %v; want %s", kcv, err, final)
	}
	out := c.stdout.String() + c.stderr.String() + p.echoed(t)
	for _, secret := range []string{comp1, strings.ToLower(comp2), "0123456789", "1c1c1c1c"} {
		if strings.Contains(out, secret) {
			t.Fatal("a component was echoed or printed")
		}
	}
	if strings.Contains(c.stderr.String(), "interrupted") {
		t.Errorf("stderr %q", c.stderr.String())
	}
}
