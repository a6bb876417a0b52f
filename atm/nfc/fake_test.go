package nfc_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/nfc"
)

// TestFakeReader: the fake reader hands out what the test gives, one step
// per WaitCard, and reports the calls a test did not expect: a step no
// WaitCard takes, a WaitCard while another waits or after Close.
func TestFakeReader(t *testing.T) {
	r := nfc.NewFakeReader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	err := r.Give(short, nfc.NewFakeCard())
	stop()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a card nobody waited for: %v", err)
	}

	type got struct {
		card nfc.Card
		err  error
	}
	res := make(chan got, 1)
	wait := func() {
		go func() { c, err := r.WaitCard(ctx); res <- got{c, err} }()
	}
	wait()
	if err := r.Waiting(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// A second WaitCard while the first waits is unexpected.
	if _, err := r.WaitCard(ctx); err == nil {
		t.Fatal("a concurrent WaitCard was served")
	}
	card := nfc.NewFakeCard()
	if err := r.Give(ctx, card); err != nil {
		t.Fatal(err)
	}
	if g := <-res; g.card != card || g.err != nil {
		t.Fatalf("WaitCard = %v, %v", g.card, g.err)
	}
	if err := r.Waiting(ctx, 1); err == nil {
		t.Fatal("Waiting for a call that is over")
	}
	wait()
	if err := r.Waiting(ctx, 2); err != nil {
		t.Fatal(err)
	}
	failure := errors.New("reader unplugged")
	if err := r.Fail(ctx, failure); err != nil {
		t.Fatal(err)
	}
	if g := <-res; g.card != nil || g.err != failure {
		t.Fatalf("WaitCard = %v, %v", g.card, g.err)
	}
	r.Close()
	if _, err := r.WaitCard(ctx); err == nil {
		t.Fatal("WaitCard after Close was served")
	}
	if r.Calls() != 2 {
		t.Fatalf("%d calls counted, want 2", r.Calls())
	}
	want := []string{"WaitCard while another WaitCard waits", "WaitCard after Close"}
	if err := r.Check(); err == nil || !reflect.DeepEqual(r.Unexpected, want) {
		t.Fatalf("Check: %v; unexpected %q, want %q", err, r.Unexpected, want)
	}
}
