package phonesim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cardless-atm/cardless/atm/nfc"
	"github.com/cardless-atm/cardless/atm/qr"
)

// ErrNoTap: the phone was held to the reader but got no session from it.
var ErrNoTap = errors.New("phonesim: the ATM's reader handed over no session")

// Tap holds the phone to the ATM's contactless reader: it attaches a
// virtual card to the vsmartcard vpcd reader at vpcdAddr and answers as
// the bank's app in host card emulation does (docs/nfc.md): SELECT of aid,
// then the session APDU, whose payload it parses as it would a scanned QR
// code. It returns the payload once received, or ErrNoTap after d (the
// phone is taken away: the connection closes).
func Tap(ctx context.Context, vpcdAddr string, aid []byte, d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	conn, err := nfc.DialVPCD(ctx, vpcdAddr)
	if err != nil {
		return "", err
	}
	app := &nfc.PhoneApp{AID: aid, Accept: func(p string) error {
		_, err := qr.Parse(p)
		return err
	}}
	err = nfc.ServeVPCD(ctx, conn, nfc.ContactlessATR, app, func() bool { return app.Payload() != "" })
	if p := app.Payload(); p != "" {
		return p, nil
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return "", fmt.Errorf("%w: %w", ErrNoTap, err)
	}
	return "", ErrNoTap
}
