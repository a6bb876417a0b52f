//go:build linux

package devsim

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cardless-atm/cardless/internal/pcscdrun"
)

// startReader gives the ATM a contactless reader for NFC: the vpcd
// virtual reader of the system's pcscd when one runs, else of a pcscd
// started for this run (which needs root: pcscd serves
// /run/pcscd/pcscd.comm) with vpcd on Options.VPCDPort. It holds the
// reader's lock (internal/pcscdrun) until stopAll: the tests that use the
// virtual reader wait meanwhile.
func (r *run) startReader(ctx context.Context) error {
	pcscd, err := pcscdrun.Find()
	if err != nil {
		return err
	}
	r.unlock, err = pcscdrun.Lock(ctx, func() {
		r.say("  waiting for the virtual reader: a test or another make sim NFC=1 holds %s", pcscdrun.LockFile())
	})
	if err != nil {
		return err
	}
	r.reader = pcscdrun.ReaderName
	if pcscdrun.SystemRunning() {
		r.vpcd = fmt.Sprintf("127.0.0.1:%d", pcscdrun.DefaultPort)
		if err := pcscdrun.WaitReady(r.vpcd, nil, 5*time.Second); err != nil {
			return fmt.Errorf("the system's pcscd runs, but no vpcd reader listens on %s: install vsmartcard-vpcd and restart pcscd (sudo systemctl restart pcscd)", r.vpcd)
		}
		r.say("  using the system's pcscd (%s) and its vpcd virtual reader on %s", pcscdrun.SystemSocket, r.vpcd)
		return nil
	}
	if !pcscdrun.CanStart() {
		return errors.New("no pcscd runs, and starting one needs root (it serves /run/pcscd/pcscd.comm): " +
			"start the system's (sudo systemctl start pcscd.socket; Debian's vsmartcard-vpcd gives it the virtual reader on 35963), then make sim NFC=1 again")
	}
	r.vpcd = fmt.Sprintf("127.0.0.1:%d", r.o.VPCDPort)
	if err := portsFree(r.vpcd, fmt.Sprintf("127.0.0.1:%d", r.o.VPCDPort+1)); err != nil {
		return err
	}
	conf, err := pcscdrun.Config(filepath.Join(r.o.Var, "pcscd"), r.o.VPCDPort)
	if err != nil {
		return err
	}
	p, err := r.startCmd("pcscd", pcscdrun.Command(pcscd, conf))
	if err != nil {
		return err
	}
	r.pcscdLog = p.log
	if err := pcscdrun.WaitReady(r.vpcd, p.done, 10*time.Second); err != nil {
		return fmt.Errorf("%w (log %s)", err, p.log)
	}
	r.say("      pcscd with a vpcd virtual reader (%q) that takes a card on %s", r.reader, r.vpcd)
	return nil
}
