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
