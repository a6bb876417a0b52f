package atm_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/host/hostfake"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/atm/wire"
)

// The reason of a reversal that recovery sends after a crash is chosen by
// the cause: an authorization that was sent and never answered is 68
// (response too late), a dispense the crash interrupted with nothing paid
// is 22 (suspected malfunction). The flow's own reversals are checked by
// TestDispenserFaults, TestHostOutcomeUnknownReverses and
// TestOperatorSettlesInDoubt.
func TestRecoveryReversalReasons(t *testing.T) {
	for _, tt := range []struct {
		name   string
		state  string // the state the crash left in the store
		reason string
	}{
		{"crash while authorizing", "Authorizing", wire.ReasonLateResponse},
		{"crash while dispensing, nothing dispensed", "Dispensing", wire.ReasonMalfunction},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake := clock.NewFake(defaultStart)
			r := newRigOn(t, dispensersim.Faults{}, fake, fake)
			s := r.session(10000)
			crashIn(t, r, s, tt.state)
			r.host.Expect(t, hostfake.Reverse)
			restart(t, r, func(*atm.Config) {})
			for i := 0; ; i++ {
				if _, _, rev := r.host.Counts(); rev > 0 {
					break
				}
				if i == 200 {
					t.Fatal("recovery sent no reversal")
				}
				fake.Advance(time.Second)
				time.Sleep(5 * time.Millisecond) // let the new core take the tick
			}
			auths, adv, rev := r.host.Counts()
			if auths != 0 || adv != 0 || rev != 1 {
				t.Fatalf("host saw %d authorizations, %d advices, %d reversals; want only one reversal", auths, adv, rev)
			}
			got := r.host.Reversals()[0]
			if got.Reason != tt.reason || got.Dispensed != 0 || got.Amount != 10000 || got.Original.STAN != "000007" {
				t.Fatalf("reversal %+v, want reason %s for 10000 with nothing paid, original STAN 000007", got, tt.reason)
			}
		})
	}
}

// crashIn stops the rig's core and leaves its session in the store as a
// crash in state would: the authorization sent under STAN 000007 and, for
// Dispensing, a dispense the device never received.
func crashIn(t *testing.T, r *rig, s *atm.Session, state string) {
	t.Helper()
	r.cancel()
	<-r.runErr
	err := r.db.Update(func(tx *store.Tx) error {
		b, err := tx.GetSession(s.ID)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		m["state"], m["hostStan"], m["hostTime"] = state, "000007", r.clk.Now().UTC()
		if state == "Dispensing" {
			m["dispenseNonce"] = "NONCE-OF-THE-CRASHED-DISPENSE"
		}
		b, _ = json.Marshal(m)
		return tx.PutSession(s.ID, b)
	})
	if err != nil {
		t.Fatal(err)
	}
}
