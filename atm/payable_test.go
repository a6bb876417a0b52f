package atm_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/host/hostfake"
)

// lowCash reports fewer notes than the simulator holds: 3 x 100.00 and
// 1 x 50.00, 350.00 in all.
type lowCash struct{ *dispensersim.Sim }

func (d lowCash) Status(ctx context.Context) (dispenser.Status, error) {
	st, err := d.Sim.Status(ctx)
	for i := range st.Units {
		st.Units[i].Count = map[string]int{"CST1": 3, "CST2": 1}[st.Units[i].ID]
	}
	return st, err
}

// payable waits (bounded) until the core has read the dispenser's status.
func payable(t *testing.T, r *rig, in []int64) ([]int64, int64) {
	t.Helper()
	for range 1000 {
		if ok, largest, known := r.core.Payable(in); known {
			return ok, largest
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the core never read the dispenser's status")
	return nil, 0
}

func TestPayableFollowsTheCassettes(t *testing.T) {
	presets := []int64{10000, 20000, 50000, 100000, 300000, 12345, 400000}
	for _, tt := range []struct {
		name        string
		wrap        []func(*dispensersim.Sim) atm.Dispenser
		wantOK      []int64
		wantLargest int64
	}{
		// 50 x 100.00 and 50 x 50.00, 40 notes at most: the limit (3,000.00) is payable.
		{"full", nil, []int64{10000, 20000, 50000, 100000, 300000}, 300000},
		// 350.00 loaded: only what those notes can make, up to 350.00.
		{"low", []func(*dispensersim.Sim) atm.Dispenser{func(s *dispensersim.Sim) atm.Dispenser { return lowCash{s} }},
			[]int64{10000, 20000}, 35000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk, fake := rigClock(t)
			r := newRigOn(t, dispensersim.Faults{}, clk, fake, tt.wrap...)
			ok, largest := payable(t, r, presets)
			if !slices.Equal(ok, tt.wantOK) || largest != tt.wantLargest {
				t.Fatalf("Payable = %v, largest %d; want %v, largest %d", ok, largest, tt.wantOK, tt.wantLargest)
			}
		})
	}
	r := newRig(t, dispensersim.Faults{Offline: true})
	r.advance(time.Second)
	if ok, largest, known := r.core.Payable(presets); known || ok != nil || largest != 0 {
		t.Fatalf("offline dispenser: Payable = %v, %d, known %v; want nothing known", ok, largest, known)
	}
}

// "Do you need more time?" on the QR screen shows a new payload (a new
// expiry under a new MAC, the same nonce), and a phone that scanned the
// code before the extension can still pay after the first expiry.
func TestMoreTimeKeepsScannedQRValid(t *testing.T) {
	r := newRig(t, dispensersim.Faults{})
	if r.fake == nil {
		// The command must land between the first expiry and the new
		// one, a window a real clock (3 s sessions, expiries in whole
		// seconds) cannot promise on a loaded machine.
		t.Skip("needs the fake clock: the window between the two expiries is under a second on the real one")
	}
	r.host.Expect(t, hostfake.Authorize, hostfake.Advise)
	s := r.session(10000)
	scanned := *s
	r.advance(r.ttl / 2)
	if err := r.core.MoreTime(context.Background()); err != nil {
		t.Fatal(err)
	}
	v := r.core.View().Session
	if v == nil || v.ID != s.ID || v.QR == s.QR || !v.Expires.After(s.Expires) {
		t.Fatalf("after more time: %+v; want the same session with a new QR and a later expiry than %v", v, s.Expires)
	}
	r.advance(r.ttl/2 + r.ttl/30) // past the first expiry, before the new one
	if res := r.command(&scanned, "000001"); res.ResponseCode != "00" || res.Dispensed != 10000 {
		t.Fatalf("the QR scanned before the extension: %+v", res)
	}
	r.settle()
	r.wantJournal("SESSION CREATED", "MORE TIME", "COMMAND ACCEPTED", "APPROVED", "CASH DISPENSED", "CASH PRESENTED", "CASH TAKEN", "QUEUED ADVICE", "HOST ACK ADVICE")
}
