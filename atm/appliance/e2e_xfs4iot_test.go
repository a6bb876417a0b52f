package appliance_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/dispenser/xfs4iot/xfs4iotsim"
	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

// startXFS4IoTSim starts the XFS4IoT device simulator loaded like the
// shipped configuration's simulated dispenser (storage units unit1...,
// reported as CST1...) with the token key the host signs with, and
// switches cfg to the xfs4iot driver with that key as response key.
func startXFS4IoTSim(t *testing.T, cfg *appliance.Config, dir string, afterSave func(string)) *xfs4iotsim.Server {
	t.Helper()
	sim := cfg.Dispenser.Sim
	key, err := hex.DecodeString(sim.TokenKey)
	if err != nil {
		t.Fatal(err)
	}
	units := make([]dispenser.CashUnit, len(sim.Units))
	for i, u := range sim.Units {
		u.ID = fmt.Sprintf("unit%d", i+1)
		units[i] = u
	}
	srv, err := xfs4iotsim.Start(xfs4iotsim.Config{Addr: "127.0.0.1:0", Units: units, MaxNotes: sim.MaxNotes, LowThreshold: sim.LowThreshold,
		TokenKey: key, Exponent: cfg.Exponent, TakeDelay: 50 * time.Millisecond, StateFile: filepath.Join(dir, "xfs4iotsim.json"),
		AfterSave: afterSave})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	keyFile := filepath.Join(dir, "response.key")
	if err := os.WriteFile(keyFile, []byte(sim.TokenKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Dispenser = appliance.Dispenser{Driver: "xfs4iot", XFS4IoT: &appliance.DispenserXFS4IoT{
		Publisher: srv.PublisherURL(), ResponseKeyFile: keyFile, CommandTimeout: appliance.Duration(10 * time.Second)}}
	return srv
}

// TestE2EXFS4IoT: a withdrawal through the XFS4IoT driver and the device
// simulator over a real WebSocket pays, and notes not taken are retracted
// and reversed.
func TestE2EXFS4IoT(t *testing.T) {
	var srv *xfs4iotsim.Server
	s := startSystem(t, func(c *appliance.Config) { srv = startXFS4IoTSim(t, c, t.TempDir(), nil) })
	before := s.balance(zhang)
	out := s.withdraw(s.qr(35000), zhang, "123456")
	if out.ResponseCode != "00" || !out.PaidInFull() || out.Dispensed != 35000 {
		t.Fatalf("outcome %+v", out)
	}
	s.settled()
	if got := s.balance(zhang); got != before-35000 {
		t.Fatalf("balance %d, want %d", got, before-35000)
	}
	paid := 0
	for _, c := range srv.Counters() {
		paid += int(c.Dispensed-c.Rejected-c.Retracted) * int(c.Denomination)
	}
	if paid != 35000 {
		t.Fatalf("the device paid %d", paid)
	}

	s.dismiss()
	srv.SetFaults(dispensersim.Faults{NotesNotTaken: true})
	s.waitFor("in service", func(st appliance.Status) bool { return st.InService })
	out = s.withdraw(s.qr(20000), zhang, "123456")
	s.settled()
	if v := s.app.Core.View(); v.Session.State != atm.StateRetracted || v.Session.Paid != 0 {
		t.Fatalf("not-taken session %+v (outcome %+v)", v.Session, out)
	}
	if got := s.balance(zhang); got != before-35000 {
		t.Fatalf("balance %d after a retract, want %d (reversed)", got, before-35000)
	}
}

// TestCrashRecoveryXFS4IoT kills the appliance process right after the
// XFS4IoT device acted (its state saved) and before the completion reached
// it; the restarted appliance settles the session from the device's signed
// present status (the dispense named by its token's HMAC), and the host,
// the device and the ATM's counters agree.
func TestCrashRecoveryXFS4IoT(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the appliance binary")
	}
	bin := buildATM(t)
	const amount = 30000
	for _, tt := range []struct {
		action string
		paid   int64
	}{
		{"Dispense", 0},     // notes stacked: purged to the reject bin, reversed
		{"Present", amount}, // notes presented and taken while the ATM was down
	} {
		t.Run(tt.action, func(t *testing.T) {
			dir := t.TempDir()
			hcfg, err := hostsim.LoadConfig("../../configs/hostsim.json")
			if err != nil {
				t.Fatal(err)
			}
			hcfg.DBPath = filepath.Join(dir, "host.db")
			host, err := hostsim.NewServer(hcfg)
			if err != nil {
				t.Fatal(err)
			}
			defer host.Close()
			pcfg, _, _, err := proxysim.LoadConfig("../../configs/proxysim.json")
			if err != nil {
				t.Fatal(err)
			}
			pcfg.ATMTimeout = 10 * time.Second
			proxy, err := proxysim.Start(pcfg, "127.0.0.1:0", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()

			cfg, err := appliance.Load("../../configs/atm.json")
			if err != nil {
				t.Fatal(err)
			}
			var p *atmProc
			kill := make(chan struct{}, 1)
			srv := startXFS4IoTSim(t, cfg, dir, func(action string) {
				if action == tt.action {
					select {
					case kill <- struct{}{}:
						p.cmd.Process.Kill() // the device acted; the ATM dies before it hears
					default:
					}
				}
			})
			control := freeAddr(t)
			cfg.DataDir = filepath.Join(dir, "atm")
			cfg.Proxy.Addr, cfg.Host.Addr, cfg.Control.Addr = proxy.ATMAddr(), host.Addr(), control
			cfg.Host.SendTimeout = appliance.Duration(2 * time.Second)
			cfg.Proxy.EchoInterval = appliance.Duration(time.Second)
			cfg.Screen = appliance.Screen{Mode: "headless", PNG: filepath.Join(dir, "screen.png")}
			cfg.TakeTimeout = appliance.Duration(2 * time.Second)
			b, _ := json.Marshal(cfg)
			cfgPath := filepath.Join(dir, "atm.json")
			os.WriteFile(cfgPath, b, 0o600)
			logPath := filepath.Join(dir, "atm.log")
			defer func() {
				if t.Failed() {
					l, _ := os.ReadFile(logPath)
					t.Logf("appliance log:\n%s", l)
				}
			}()

			before, _ := host.Balance(zhang)
			p = startATM(t, bin, cfgPath, "", logPath)
			up := func(st appliance.Status) bool { return st.InService && st.ProxyUp && st.HostUp }
			waitStatus(t, control, "in service", up)
			var sess appliance.SessionStatus
			resp, err := http.Post("http://"+control+"/withdraw?amount=30000", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			json.NewDecoder(resp.Body).Decode(&sess)
			resp.Body.Close()
			phone, _ := phonesim.LoadConfig("../../configs/phonesim.json")
			phone.ProxyAddr, phone.Timeout = proxy.PhoneAddr(), 15*time.Second
			go phonesim.Withdraw(context.Background(), phone, sess.QR, zhang, "123456")
			select {
			case <-p.done:
				ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
				if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("appliance exited, want killed after the device's %s", tt.action)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("the device never did %s", tt.action)
			}
			if tt.paid > 0 {
				// The customer takes the notes while the ATM is down.
				for i := 0; ; i++ {
					if ps, err := srv.PresentStatus(); err == nil && ps.State == dispenser.PresentTaken {
						break
					}
					if i == 500 {
						t.Fatal("the simulated customer never took the notes")
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			// Restart: recovery asks the device, then the queue drains.
			p = startProc(t, logPath, []string{"EGL_PLATFORM=surfaceless"}, bin, "--config", cfgPath)
			waitStatus(t, control, "recovered and settled", func(st appliance.Status) bool { return up(st) && st.SAFPending == 0 })
			p.cmd.Process.Signal(syscall.SIGTERM)
			<-p.done

			var dispensed, paid int64
			devCounts := map[string]dispensersim.UnitCounters{}
			for i, c := range srv.Counters() {
				dispensed += int64(c.Dispensed) * c.Denomination
				paid += int64(c.Dispensed-c.Rejected-c.Retracted) * c.Denomination
				devCounts[fmt.Sprintf("CST%d", i+1)] = c
			}
			after, _ := host.Balance(zhang)
			if dispensed > amount || paid != tt.paid || before-after != paid {
				t.Fatalf("device dispensed %d, paid %d (want %d); host debited %d", dispensed, paid, tt.paid, before-after)
			}
			db, err := store.Open(filepath.Join(cfg.DataDir, "atm.db"), store.Options{JournalAuth: devJournalAuth(t, cfg)})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var recovery string
			err = db.View(func(tx *store.Tx) error {
				units, err := tx.UnitCounters()
				if err != nil {
					return err
				}
				for _, u := range units {
					d := devCounts[u.UnitID]
					if int(u.Dispensed) != d.Dispensed || int(u.Rejected) != d.Rejected || int(u.Retracted) != d.Retracted {
						t.Errorf("unit %s: ATM counted dispensed/rejected/retracted %d/%d/%d, the device %d/%d/%d",
							u.UnitID, u.Dispensed, u.Rejected, u.Retracted, d.Dispensed, d.Rejected, d.Retracted)
					}
				}
				return tx.JournalRange(0, func(e store.Entry) error {
					if e.Kind == "RECOVERY" {
						recovery = e.Text
					}
					return nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if recovery == "" {
				t.Fatal("no recovery journaled")
			}
			t.Logf("recovery: %s", recovery)
		})
	}
}

// TestE2EXFS4IoTFaults: each device fault through the XFS4IoT driver ends
// as it does with the in-process simulator: a jam, a shutter failure and a
// forged token are reversed in full, a short dispense partially, and a
// count the device does not know leaves the session in doubt with the
// debit standing.
func TestE2EXFS4IoTFaults(t *testing.T) {
	for _, tt := range []struct {
		name    string
		faults  dispensersim.Faults
		forged  bool
		paid    int64
		inDoubt bool
	}{
		{name: "jam", faults: dispensersim.Faults{Jam: true, JamAfter: 1}},
		{name: "short dispense", faults: dispensersim.Faults{ShortDispense: 1}, paid: 40000},
		{name: "shutter failure", faults: dispensersim.Faults{ShutterFailure: true}},
		{name: "forged token", forged: true},
		{name: "count unknown", faults: dispensersim.Faults{CountUnknown: true}, inDoubt: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var srv *xfs4iotsim.Server
			s := startSystem(t, func(c *appliance.Config) {
				if tt.forged {
					c.Dispenser.Sim.TokenKey = strings.Repeat("ab", 32) // the device's key differs from the host's
				}
				srv = startXFS4IoTSim(t, c, t.TempDir(), nil)
			})
			srv.SetFaults(tt.faults)
			before := s.balance(zhang)
			out := s.withdraw(s.qr(50000), zhang, "123456")
			if out.Dispensed != tt.paid {
				t.Fatalf("outcome %+v, want %d paid", out, tt.paid)
			}
			if tt.inDoubt {
				s.waitFor("session in doubt", func(st appliance.Status) bool { return st.Session != nil && st.Session.State == "InDoubt" })
				if b := s.balance(zhang); b != before-50000 {
					t.Fatalf("balance %d while in doubt, want the debit standing (%d)", b, before-50000)
				}
				return
			}
			s.settled()
			if got := s.balance(zhang); got != before-tt.paid {
				t.Fatalf("balance %d, want %d", got, before-tt.paid)
			}
		})
	}
}
