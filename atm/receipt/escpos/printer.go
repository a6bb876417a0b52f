package escpos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.bug.st/serial"
)

// Printer errors: the receipt was not printed (or not completely).
var (
	ErrOffline  = errors.New("escpos: printer offline or not answering")
	ErrPaperOut = errors.New("escpos: paper out")
)

// Status is what the printer says of itself (DLE EOT 1 and 4).
type Status struct {
	Online   bool
	PaperLow bool // near end: still prints
	PaperOut bool
}

// Ready reports whether a receipt can be printed.
func (s Status) Ready() bool { return s.Online && !s.PaperOut }

// Port is the byte stream to the printer (a serial port; a USB printer's
// character device works for printing but cannot answer status).
type Port interface {
	Write(p []byte) (int, error)
	Read(p []byte) (int, error)
	ResetInputBuffer() error
	Close() error
}

// Printer drives an ESC/POS receipt printer. Its methods are safe for
// concurrent use; they run one at a time.
type Printer struct {
	port    Port
	timeout time.Duration // for a status answer
	log     *slog.Logger
	mu      sync.Mutex
}

// Open opens the printer's serial port (8N1 at baud, 9600 by default).
func Open(path string, baud int, log *slog.Logger) (*Printer, error) {
	if baud == 0 {
		baud = 9600
	}
	p, err := serial.Open(path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, fmt.Errorf("escpos: open %s: %w", path, err)
	}
	if err := p.SetReadTimeout(100 * time.Millisecond); err != nil {
		p.Close()
		return nil, err
	}
	return New(p, log), nil
}

// New drives a printer on an open port.
func New(port Port, log *slog.Logger) *Printer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Printer{port: port, timeout: time.Second, log: log}
}

// Close closes the port.
func (p *Printer) Close() error { return p.port.Close() }

// query sends a DLE EOT request and reads the one status byte. Holds p.mu.
func (p *Printer) query(ctx context.Context, cmd []byte) (byte, error) {
	_ = p.port.ResetInputBuffer()
	if _, err := p.port.Write(cmd); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrOffline, err)
	}
	// The serial read times out every 100 ms; the loop is bounded by the
	// answer timeout counted in reads, so it needs no clock.
	buf := make([]byte, 1)
	for range int(p.timeout / (100 * time.Millisecond)) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := p.port.Read(buf)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrOffline, err)
		}
		if n == 1 {
			// Every ESC/POS status byte has bit 1 and bit 4 set, bits 0
			// and 7 clear.
			if buf[0]&0x93 != 0x12 {
				return 0, fmt.Errorf("%w: status byte %#02x is not an ESC/POS status", ErrOffline, buf[0])
			}
			return buf[0], nil
		}
	}
	return 0, fmt.Errorf("%w: no status answer", ErrOffline)
}

// Status asks the printer for its state (DLE EOT 1, then 4).
func (p *Printer) Status(ctx context.Context) (Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status(ctx)
}

func (p *Printer) status(ctx context.Context) (Status, error) {
	online, err := p.query(ctx, cmdStatusOnline)
	if err != nil {
		return Status{}, err
	}
	paper, err := p.query(ctx, cmdStatusPaper)
	if err != nil {
		return Status{}, err
	}
	return Status{Online: online&0x08 == 0, PaperLow: paper&0x0C != 0, PaperOut: paper&0x60 != 0}, nil
}

// Print sends an encoded receipt (Encode) once the printer says it can
// print, and asks again afterwards: paper that ran out meanwhile is
// ErrPaperOut (the receipt may be cut short).
func (p *Printer) Print(ctx context.Context, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, err := p.status(ctx)
	switch {
	case err != nil:
		return err
	case !st.Online:
		return ErrOffline
	case st.PaperOut:
		return ErrPaperOut
	}
	if _, err := p.port.Write(data); err != nil {
		return fmt.Errorf("%w: %v", ErrOffline, err)
	}
	after, err := p.status(ctx)
	switch {
	case err != nil:
		return err
	case after.PaperOut:
		return fmt.Errorf("%w while printing: the receipt may be incomplete", ErrPaperOut)
	}
	if after.PaperLow {
		p.log.Warn("receipt printer paper low")
	}
	return nil
}
