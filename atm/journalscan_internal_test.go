package atm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/atm/store/storetest"
)

// TestScanJournalInChunks: the journal read in chunks of a few entries,
// one read transaction each, is every entry once, in order, whatever the
// chunk size; an error from the callback stops it.
func TestScanJournalInChunks(t *testing.T) {
	db := storetest.Open(t)
	for i := range 11 {
		if err := db.Update(func(tx *store.Tx) error {
			_, err := tx.AppendJournal(store.Entry{Kind: "TEST", Text: fmt.Sprint(i)})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	a := &ATM{cfg: Config{Clock: clock.Real{}, DayZone: time.UTC}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), db: db}
	defer func(n int) { journalScanChunk = n }(journalScanChunk)
	for _, chunk := range []int{1, 2, 3, 11, 12, 5000} {
		journalScanChunk = chunk
		var seqs []uint64
		if err := a.scanJournal(func(e store.Entry) error { seqs = append(seqs, e.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		if want := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}; !slices.Equal(seqs, want) {
			t.Errorf("chunk %d: %v", chunk, seqs)
		}
	}
	journalScanChunk = 2
	stop := fmt.Errorf("stop")
	n := 0
	if err := a.scanJournal(func(store.Entry) error {
		n++
		if n == 5 {
			return stop
		}
		return nil
	}); err != stop || n != 5 {
		t.Fatalf("stopped with %v after %d entries", err, n)
	}
}

// gatedDispenser hands each Status call's answer channel to the test;
// the other methods are never called.
type gatedDispenser struct {
	Dispenser
	calls chan chan dispenser.Status
}

func (g *gatedDispenser) Status(ctx context.Context) (dispenser.Status, error) {
	answer := make(chan dispenser.Status)
	g.calls <- answer
	return <-answer, nil
}

// TestStaleStatusNotCached: a status answer to a request that began before
// a newer one was answered (a poll in flight across a replenishment's
// exchange) never replaces the newer answer in the cache.
func TestStaleStatusNotCached(t *testing.T) {
	g := &gatedDispenser{calls: make(chan chan dispenser.Status)}
	a := &ATM{cfg: Config{Dispenser: g, Clock: clock.Real{}}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	old := dispenser.Status{Device: dispenser.StateOnline, Units: []dispenser.CashUnit{{ID: "CST1", Count: 50}}}
	fresh := dispenser.Status{Device: dispenser.StateOnline, Units: []dispenser.CashUnit{{ID: "CST1", Count: 500}}}
	ctx := context.Background()
	done := make(chan struct{})
	go func() { a.dispenserStatus(ctx); close(done) }() // the poll, begun first
	poll := <-g.calls
	second := make(chan struct{})
	go func() { a.dispenserStatus(ctx); close(second) }() // after the exchange
	(<-g.calls) <- fresh
	<-second
	poll <- old // the poll's answer arrives last
	<-done
	if st, _ := a.cachedStatus(); st.Units[0].Count != 500 {
		t.Fatalf("cached %+v, want the newer answer", st.Units)
	}
	if got := a.cashUnits(); got[0].Count != 500 {
		t.Fatalf("cash units %+v", got)
	}
}
