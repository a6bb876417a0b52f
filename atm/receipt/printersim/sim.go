//go:build unix

// Package printersim is an ESC/POS receipt printer on a pseudo-terminal:
// the escpos driver opens its tty as a serial port. It interprets what it
// receives (text, styles, two-byte GB18030 mode, QR codes, cut), keeps
// each cut receipt as text and renders it to a PNG, and answers the
// status requests (DLE EOT) with faults: paper low, paper out, offline.
package printersim

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// Sim is a running printer.
type Sim struct {
	log *slog.Logger

	mu      sync.Mutex
	faults  Faults
	printed []Printed
	cur     Printed
	line    bytes.Buffer
	kanji   bool

	master, slave *os.File
	done          chan struct{}
}

// Start opens the pseudo-terminal and serves it.
func Start(log *slog.Logger) (*Sim, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, t, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("printersim: open pty: %w", err)
	}
	if _, err := term.MakeRaw(int(t.Fd())); err != nil {
		m.Close()
		t.Close()
		return nil, fmt.Errorf("printersim: raw mode: %w", err)
	}
	fd, err := unix.Dup(int(m.Fd()))
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	m.Close()
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("printersim: pty master: %w", err)
	}
	s := &Sim{log: log, master: os.NewFile(uintptr(fd), "ptmx"), slave: t, done: make(chan struct{})}
	go s.serve()
	return s, nil
}

// Path is the tty the driver opens.
func (s *Sim) Path() string { return s.slave.Name() }

// Close stops the printer.
func (s *Sim) Close() error {
	s.master.Close()
	<-s.done
	return s.slave.Close()
}

// SetFaults sets the printer's conditions.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Printed returns the receipts cut so far.
func (s *Sim) Printed() []Printed {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Printed(nil), s.printed...)
}

func (s *Sim) serve() {
	defer close(s.done)
	in := make(chan byte, 4096)
	go func() {
		defer close(in)
		buf := make([]byte, 1024)
		for {
			n, err := s.master.Read(buf)
			for _, b := range buf[:n] {
				in <- b
			}
			if err != nil {
				return
			}
		}
	}()
	next := func() (byte, bool) { b, ok := <-in; return b, ok }
	for {
		b, ok := next()
		if !ok {
			return
		}
		if err := s.command(b, next); err != nil {
			if errors.Is(err, errEOF) {
				return
			}
			s.log.Warn("printersim: bad command", "err", err)
		}
	}
}

var errEOF = errors.New("eof")

// command interprets one command or text byte.
func (s *Sim) command(b byte, next func() (byte, bool)) error {
	arg := func() (byte, error) {
		c, ok := next()
		if !ok {
			return 0, errEOF
		}
		return c, nil
	}
	s.mu.Lock()
	f := s.faults
	s.mu.Unlock()
	switch b {
	case 0x10: // DLE EOT n: real-time status
		eot, err := arg()
		if err != nil {
			return err
		}
		n, err := arg()
		if err != nil {
			return err
		}
		if eot != 0x04 {
			return fmt.Errorf("DLE %#02x", eot)
		}
		if f.Offline {
			return nil // no answer
		}
		st := byte(0x12)
		switch n {
		case 1:
			// online
		case 4:
			if f.PaperLow {
				st |= 0x0C
			}
			if f.PaperOut {
				st |= 0x60
			}
		default:
			return fmt.Errorf("DLE EOT %d", n)
		}
		_, err = s.master.Write([]byte{st})
		return err
	case 0x1B: // ESC
		c, err := arg()
		if err != nil {
			return err
		}
		switch c {
		case '@':
			s.mu.Lock()
			s.kanji = false
			s.mu.Unlock()
			return nil
		case 'a', 'E', 'd':
			_, err := arg()
			return err
		}
		return fmt.Errorf("ESC %q", c)
	case 0x1C: // FS
		c, err := arg()
		if err != nil {
			return err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		switch c {
		case '&':
			s.kanji = true
		case '.':
			s.kanji = false
		default:
			return fmt.Errorf("FS %q", c)
		}
		return nil
	case 0x1D: // GS
		c, err := arg()
		if err != nil {
			return err
		}
		switch c {
		case '!':
			_, err := arg()
			return err
		case 'V': // cut: m, and n for m = 65/66
			m, err := arg()
			if err != nil {
				return err
			}
			if m == 65 || m == 66 {
				if _, err := arg(); err != nil {
					return err
				}
			}
			s.cut(f)
			return nil
		case '(':
			k, err := arg()
			if err != nil {
				return err
			}
			lo, err := arg()
			if err != nil {
				return err
			}
			hi, err := arg()
			if err != nil {
				return err
			}
			p := make([]byte, int(lo)|int(hi)<<8)
			for i := range p {
				if p[i], err = arg(); err != nil {
					return err
				}
			}
			if k == 'k' && len(p) >= 3 && p[0] == 49 && p[1] == 80 {
				s.mu.Lock()
				s.cur.QR = append(s.cur.QR, string(p[3:]))
				s.mu.Unlock()
			}
			return nil
		}
		return fmt.Errorf("GS %q", c)
	case '\n':
		s.endLine()
		return nil
	}
	s.mu.Lock()
	s.line.WriteByte(b)
	s.mu.Unlock()
	return nil
}

func (s *Sim) endLine() {
	s.mu.Lock()
	defer s.mu.Unlock()
	text := s.line.String()
	s.line.Reset()
	if s.kanji {
		if d, err := simplifiedchinese.GB18030.NewDecoder().String(text); err == nil {
			text = d
		}
	}
	s.cur.Lines = append(s.cur.Lines, text)
}

// cut ends a receipt; with paper out or offline nothing came out.
func (s *Sim) cut(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !f.PaperOut && !f.Offline {
		s.printed = append(s.printed, s.cur)
		s.log.Info("printersim: receipt cut", "lines", len(s.cur.Lines))
	}
	s.cur = Printed{}
}
