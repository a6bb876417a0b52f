//go:build cgo && linux

package nfc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/nfc"
	"github.com/cardless-atm/cardless/internal/pcscdtest"
)

// TestPCSCThroughVPCD taps a virtual card through a real pcscd: the card
// is the phone's app served over vpcd's socket, the reader side is NewPCSC.
func TestPCSCThroughVPCD(t *testing.T) {
	d := pcscdtest.Start(t)
	r, err := nfc.NewPCSC("Virtual PCD")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tap := func(app nfc.App, done func() bool) (error, error) {
		conn, err := nfc.DialVPCD(ctx, d.VPCDAddr)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- nfc.ServeVPCD(ctx, conn, nfc.ContactlessATR, app, done) }()
		card, err := r.WaitCard(ctx)
		if err != nil {
			t.Fatalf("WaitCard: %v", err)
		}
		tapErr := nfc.Tap(card, aid, payload)
		card.Close()
		conn.Close() // the phone is taken away
		return tapErr, <-served
	}

	app := &nfc.PhoneApp{AID: aid}
	if err, served := tap(app, nil); err != nil {
		t.Fatalf("tap: %v (card: %v)", err, served)
	}
	if app.Payload() != payload {
		t.Fatalf("the phone got %q", app.Payload())
	}

	// Another app (a wrong AID): 6A82 through the real stack.
	other := &nfc.PhoneApp{AID: []byte{0xA0, 0, 0, 0, 0x03, 0x10, 0x10}}
	err, _ = tap(other, nil)
	var se *nfc.StatusError
	if !errors.As(err, &se) || se.SW != nfc.SWFileNotFound || !errors.Is(err, nfc.ErrNoApp) {
		t.Fatalf("wrong AID: %v", err)
	}

	// Removed mid-exchange: the phone leaves after answering the SELECT.
	leaving := &nfc.PhoneApp{AID: aid}
	n := 0
	err, _ = tap(leaving, func() bool { n++; return n == 1 })
	if !errors.Is(err, nfc.ErrRemoved) {
		t.Fatalf("removed mid-exchange: %v", err)
	}
}

// TestPCSCAfterPCSCDRestart: when pcscd stops, WaitCard fails (its
// context lost the service); once pcscd is back, the next WaitCard
// establishes a new context and a tap goes through again.
func TestPCSCAfterPCSCDRestart(t *testing.T) {
	d := pcscdtest.Start(t)
	if !d.Own() {
		t.Skip("the system's pcscd runs: the test does not stop it")
	}
	r, err := nfc.NewPCSC("Virtual PCD")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tap := func() error {
		conn, err := nfc.DialVPCD(ctx, d.VPCDAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		app := &nfc.PhoneApp{AID: aid}
		go nfc.ServeVPCD(ctx, conn, nfc.ContactlessATR, app, nil)
		card, err := r.WaitCard(ctx)
		if err != nil {
			return err
		}
		defer card.Close()
		if err := nfc.Tap(card, aid, payload); err != nil || app.Payload() != payload {
			t.Fatalf("tap: %v, the phone got %q", err, app.Payload())
		}
		return nil
	}
	if err := tap(); err != nil {
		t.Fatal(err)
	}
	d.Stop(t)
	if _, err := r.WaitCard(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("WaitCard with pcscd stopped: %v (context %v)", err, ctx.Err())
	}
	d.Restart(t)
	if err := tap(); err != nil {
		t.Fatalf("WaitCard after pcscd came back: %v\npcscd:\n%s", err, d.Log())
	}
}
