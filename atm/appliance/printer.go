package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/receipt"
	"github.com/cardless-atm/cardless/atm/receipt/escpos"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/ui"
)

// PrinterStatusEvery is how often the receipt printer's status is read.
const PrinterStatusEvery = 5 * time.Second

// receiptPrinter is the appliance's receipt printer and its status as
// last read (the screens ask whether to offer a receipt on every frame:
// they must not wait for the printer).
type receiptPrinter struct {
	p   *escpos.Printer
	clk clock.Clock
	log *slog.Logger

	mu   sync.Mutex
	st   escpos.Status
	err  error
	read bool
}

func (r *receiptPrinter) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := r.p.Status(ctx)
	r.mu.Lock()
	r.st, r.err, r.read = st, err, true
	r.mu.Unlock()
}

// run reads the status every PrinterStatusEvery until ctx ends.
func (r *receiptPrinter) run(ctx context.Context) {
	tick := r.clk.NewTicker(PrinterStatusEvery)
	defer tick.Stop()
	for {
		r.refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
		}
	}
}

// status returns the status last read (ok false before the first read or
// when the printer did not answer).
func (r *receiptPrinter) status() (escpos.Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st, r.read && r.err == nil
}

var _ ui.ReceiptPrinter = (*Backend)(nil)

// ErrNoPrinter: the terminal has no receipt printer configured.
var ErrNoPrinter = errors.New("appliance: no receipt printer")

// PrintReceipt prints the receipt of the completed session on the screen
// in lang, and journals whether it came out.
func (b *Backend) PrintReceipt(lang string) error {
	if b.printer == nil {
		return ErrNoPrinter
	}
	s := b.core.View().Session
	if s == nil || s.State != atm.StateCompleted {
		return errors.New("appliance: no completed withdrawal to print a receipt for")
	}
	r := receipt.Receipt{Terminal: b.cfg.TerminalID, Location: b.cfg.Location, Time: s.Updated.In(b.zone),
		Amount: s.Paid, Currency: b.cfg.CurrencyAlpha, Exponent: b.cfg.Exponent, Customer: s.Customer,
		AuthCode: s.AuthCode, RRN: s.RRN, STAN: s.HostSTAN}
	data, err := escpos.Encode(r, lang)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = b.printer.p.Print(ctx, data)
		cancel()
		b.printer.refresh(context.Background())
	}
	kind, text := "RECEIPT PRINTED", "receipt printed ("+lang+")"
	if err != nil {
		kind, text = "RECEIPT NOT PRINTED", "receipt not printed: "+err.Error()
	}
	if jerr := b.store.UpdateLabeled("receipt", func(tx *store.Tx) error {
		_, err := tx.AppendJournal(store.Entry{Kind: kind, SessionID: s.ID, Text: text, Data: map[string]string{"lang": lang}})
		return err
	}); jerr != nil {
		return fmt.Errorf("appliance: journal the receipt: %w", jerr)
	}
	b.notify()
	return err
}

// receiptReady reports whether the screens may offer a receipt.
func (b *Backend) receiptReady() bool {
	if b.printer == nil {
		return false
	}
	st, ok := b.printer.status()
	return ok && st.Ready()
}
