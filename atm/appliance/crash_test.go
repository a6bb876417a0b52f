package appliance_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

// buildATM builds cmd/atm with its crash failure points (build tag
// failpoint) into the test's temporary directory.
func buildATM(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "atm")
	out, err := exec.Command("go", "build", "-tags", "failpoint", "-o", bin, "../../cmd/atm").CombinedOutput()
	if err != nil {
		t.Fatalf("go build cmd/atm: %v\n%s", err, out)
	}
	return bin
}

// devJournalAuth returns the store's journal authenticator for the
// development journal key of cfg (keys.development.journalMac), held in an
// in-memory security module as the appliance holds it.
func devJournalAuth(t *testing.T, cfg *appliance.Config) store.JournalAuthenticator {
	t.Helper()
	key, err := hex.DecodeString(cfg.Keys.Dev.JournalMAC)
	if err != nil {
		t.Fatal(err)
	}
	m := hsm.NewSoft()
	t.Cleanup(func() { m.Close() })
	if err := m.ImportClearHMACKey(hsm.JournalKey, key); err != nil {
		t.Fatal(err)
	}
	return appliance.JournalAuth(m)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type atmProc struct {
	cmd    *exec.Cmd
	done   chan error    // receives the Wait result once
	exited chan struct{} // closed when the process has ended
	log    *os.File
}

func startATM(t *testing.T, bin, cfg, crashAfter, logPath string) *atmProc {
	t.Helper()
	env := []string{"EGL_PLATFORM=surfaceless"}
	if crashAfter != "" {
		env = append(env, appliance.CrashEnv+"="+crashAfter)
	}
	return startProc(t, logPath, env, bin, "--config", cfg, "--new-store")
}

// startProc starts bin with args, its output appended to logPath.
func startProc(t *testing.T, logPath string, env []string, bin string, args ...string) *atmProc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p := &atmProc{cmd: exec.Command(bin, args...), done: make(chan error, 1), exited: make(chan struct{}), log: f}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = append(os.Environ(), env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { err := p.cmd.Wait(); f.Close(); close(p.exited); p.done <- err }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

func getStatus(addr string) (appliance.Status, error) {
	var st appliance.Status
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func waitStatus(t *testing.T, addr, what string, ok func(appliance.Status) bool) {
	t.Helper()
	var st appliance.Status
	var err error
	for i := 0; i < 400; i++ {
		if st, err = getStatus(addr); err == nil && ok(st) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %+v %v", what, st, err)
}

// TestCrashRecovery kills the appliance with SIGKILL right after each
// durable state of a withdrawal, and right after each action of the
// dispenser before the core hears of it, restarts it, and checks that nothing was
// paid twice and that the host's balance, the dispenser's counters and the
// ATM's journal and counters agree once every advice and reversal is
// acknowledged.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the appliance binary")
	}
	bin := buildATM(t)
	const amount = 30000
	for _, tt := range []struct {
		point  string
		paid   int64
		faults appliance.SimFaults
		// offline: the dispenser is offline at the first restart, so the
		// appliance must wait (out of service) rather than guess.
		offline bool
	}{
		{point: "AwaitingPhone"},
		{point: "Authorizing"},
		{point: "Dispensing"},
		{point: "Presenting"},
		{point: "AwaitingTake"},
		{point: "Completed", paid: amount},
		{point: "Retracting", faults: appliance.SimFaults{NotesNotTaken: true}},
		{point: "Retracted", faults: appliance.SimFaults{NotesNotTaken: true}},
		{point: "Failed", faults: appliance.SimFaults{JamAfter: 1}},
		{point: "Presenting", offline: true},
		// Killed after the device acted and before the core heard of it
		// (the dispenser simulator's AfterSave hook).
		{point: "device:Dispense"},
		{point: "device:Present"},
		{point: "device:Taken", paid: amount},
		{point: "device:Retract", faults: appliance.SimFaults{NotesNotTaken: true}},
	} {
		name := tt.point
		if tt.offline {
			name += "-dispenser-offline-at-restart"
		}
		t.Run(name, func(t *testing.T) {
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
			control := freeAddr(t)
			cfg.DataDir = filepath.Join(dir, "atm")
			cfg.Proxy.Addr, cfg.Host.Addr, cfg.Control.Addr = proxy.ATMAddr(), host.Addr(), control
			cfg.Host.SendTimeout = appliance.Duration(2 * time.Second)
			cfg.Proxy.EchoInterval = appliance.Duration(time.Second)
			cfg.Screen = appliance.Screen{Mode: "headless", PNG: filepath.Join(dir, "screen.png")}
			cfg.TakeTimeout = appliance.Duration(2 * time.Second)
			cfg.Dispenser.Sim.Latency, cfg.Dispenser.Sim.TakeDelay = 0, appliance.Duration(50*time.Millisecond)
			cfg.Dispenser.Sim.Faults = tt.faults
			b, _ := json.Marshal(cfg)
			cfgPath := filepath.Join(dir, "atm.json")
			os.WriteFile(cfgPath, b, 0o600)
			// After the crash the faults are gone (an engineer fixed the
			// device), or the dispenser is offline for the first restart.
			cfg.Dispenser.Sim.Faults = appliance.SimFaults{}
			b, _ = json.Marshal(cfg)
			fixedPath := filepath.Join(dir, "atm-fixed.json")
			os.WriteFile(fixedPath, b, 0o600)
			cfg.Dispenser.Sim.Faults = appliance.SimFaults{Offline: true}
			b, _ = json.Marshal(cfg)
			offlinePath := filepath.Join(dir, "atm-offline.json")
			os.WriteFile(offlinePath, b, 0o600)
			logPath := filepath.Join(dir, "atm.log")
			defer func() {
				if t.Failed() {
					l, _ := os.ReadFile(logPath)
					t.Logf("appliance log:\n%s", l)
				}
			}()

			before, _ := host.Balance(zhang)
			p := startATM(t, bin, cfgPath, tt.point, logPath)
			up := func(st appliance.Status) bool { return st.InService && st.ProxyUp && st.HostUp }
			waitStatus(t, control, "in service", up)
			var sess appliance.SessionStatus
			resp, err := http.Post("http://"+control+"/withdraw?amount=30000", "", nil)
			switch {
			case err == nil:
				json.NewDecoder(resp.Body).Decode(&sess)
				resp.Body.Close()
			case tt.point != "AwaitingPhone": // there the appliance dies before answering
				t.Fatal(err)
			}
			if tt.point != "AwaitingPhone" {
				phone, _ := phonesim.LoadConfig("../../configs/phonesim.json")
				phone.ProxyAddr, phone.Timeout = proxy.PhoneAddr(), 15*time.Second
				go phonesim.Withdraw(context.Background(), phone, sess.QR, zhang, "123456")
			}
			select {
			case err := <-p.done:
				ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
				if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("appliance exited with %v, want killed at %s", err, tt.point)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("the appliance never reached %s", tt.point)
			}

			if tt.offline {
				p = startATM(t, bin, offlinePath, "", logPath)
				waitStatus(t, control, "out of service waiting to recover", func(st appliance.Status) bool {
					return st.HostUp && !st.InService && st.Reason == "recovery"
				})
				// Nothing is reversed on a guess: the debit stands until the
				// dispenser can say what it did.
				if b, _ := host.Balance(zhang); b != before-amount {
					t.Fatalf("balance %d while recovery waits, want %d (debit standing)", b, before-amount)
				}
				p.cmd.Process.Signal(syscall.SIGTERM)
				<-p.done
			}
			// Restart without the failure point: recovery, then the queue drains.
			p = startATM(t, bin, fixedPath, "", logPath)
			waitStatus(t, control, "recovered and settled", func(st appliance.Status) bool { return up(st) && st.SAFPending == 0 })
			p.cmd.Process.Signal(syscall.SIGTERM)
			<-p.done

			after, _ := host.Balance(zhang)
			sim, err := dispensersim.New(dispensersim.Config{Units: cfg.Dispenser.Sim.Units, MaxNotes: 40,
				TokenKey: []byte("0123456789abcdef"), StateFile: filepath.Join(cfg.DataDir, "dispenser-sim.json")})
			if err != nil {
				t.Fatal(err)
			}
			denom := map[string]int64{}
			for _, u := range cfg.Dispenser.Sim.Units {
				denom[u.ID] = u.Denomination
			}
			var dispensed, paid int64
			simCounts := map[string]dispensersim.UnitCounters{}
			for _, c := range sim.Counters() {
				dispensed += int64(c.Dispensed) * denom[c.ID]
				paid += int64(c.Dispensed-c.Rejected-c.Retracted) * denom[c.ID]
				simCounts[c.ID] = c
			}
			if dispensed > amount {
				t.Fatalf("dispensed %d for a %d withdrawal: paid twice", dispensed, amount)
			}
			if paid != tt.paid {
				t.Errorf("customer got %d, want %d", paid, tt.paid)
			}
			if before-after != paid {
				t.Errorf("host debited %d, customer got %d", before-after, paid)
			}
			// The appliance's development journal key (configs/atm.json), so
			// the head MAC is checked too.
			db, err := store.Open(filepath.Join(cfg.DataDir, "atm.db"), store.Options{JournalAuth: devJournalAuth(t, cfg)})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.VerifyJournal(); err != nil {
				t.Fatal(err)
			}
			var kinds []string
			err = db.View(func(tx *store.Tx) error {
				units, err := tx.UnitCounters()
				if err != nil {
					return err
				}
				if len(units) != len(simCounts) {
					t.Errorf("ATM has counters for %d cash units, the dispenser %d", len(units), len(simCounts))
				}
				for _, u := range units {
					d := simCounts[u.UnitID]
					if int(u.Dispensed) != d.Dispensed || int(u.Rejected) != d.Rejected || int(u.Retracted) != d.Retracted {
						t.Errorf("unit %s: ATM counted dispensed/rejected/retracted %d/%d/%d, the dispenser %d/%d/%d",
							u.UnitID, u.Dispensed, u.Rejected, u.Retracted, d.Dispensed, d.Rejected, d.Retracted)
					}
				}
				items, err := tx.QueueItems()
				if err != nil {
					return err
				}
				if len(items) != 0 {
					t.Errorf("%d advices/reversals never acknowledged", len(items))
				}
				return tx.JournalRange(0, func(e store.Entry) error { kinds = append(kinds, e.Kind); return nil })
			})
			if err != nil {
				t.Fatal(err)
			}
			terminal := map[string]bool{"AwaitingPhone": true, "Completed": true, "Retracted": true, "Failed": true}
			if !terminal[tt.point] && !strings.Contains(strings.Join(kinds, ","), "RECOVERY") {
				t.Errorf("no recovery journaled: %v", kinds)
			}
		})
	}
}
