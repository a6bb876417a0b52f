//go:build chaos

package appliance_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

// make chaos runs this campaign (build tag chaos; not part of make test).
var (
	chaosRounds = flag.Int("chaos.rounds", 50, "withdrawals, each ending in a kill of the atm process")
	chaosSeed   = flag.Uint64("chaos.seed", 1, "seed of the kill points and times (the same seed repeats a run)")
	chaosTime   = flag.Duration("chaos.time", 30*time.Minute, "stop starting rounds after this long")
)

// chaosPoints are where a round kills the appliance: "" at a random moment
// (uniform over the first 2.5 s of the withdrawal), or right after the
// commit of that state (the crash hook of the failpoint build).
var chaosPoints = []string{"", "", "", "Authorizing", "Dispensing", "Presenting", "AwaitingTake",
	"Completed", "Retracting", "Retracted", "Failed"}

// TestChaos is the random kill campaign of issue 16: rounds of withdrawals
// through the real appliance process, each killed with SIGKILL at a
// random moment or at a random commit, sometimes with a dispenser fault,
// then restarted on the same store. At the end, once every advice and
// reversal is acknowledged: the host debited exactly the cash the
// customers took, the ATM's cassette counters equal the device's, the
// journal verifies and the queue is empty. It prints one summary line.
func TestChaos(t *testing.T) {
	start := time.Now()
	rng := rand.New(rand.NewPCG(*chaosSeed, 0x5eed))
	bin := buildATM(t)
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
	cfg.Dispenser.Sim.Latency, cfg.Dispenser.Sim.TakeDelay = 0, appliance.Duration(300*time.Millisecond)
	write := func(name string, f appliance.SimFaults) string {
		c := *cfg
		c.Dispenser.Sim.Faults = f
		b, _ := json.Marshal(&c)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	configs := []string{write("plain.json", appliance.SimFaults{}), write("plain2.json", appliance.SimFaults{}),
		write("not-taken.json", appliance.SimFaults{NotesNotTaken: true}), write("jam.json", appliance.SimFaults{JamAfter: 1})}
	fixed := configs[0]
	logPath := filepath.Join(dir, "atm.log")
	defer func() {
		if t.Failed() {
			l, _ := os.ReadFile(logPath)
			t.Logf("appliance log (last 20 kB):\n%s", l[max(0, len(l)-20000):])
		}
	}()
	up := func(st appliance.Status) bool { return st.InService && st.ProxyUp && st.HostUp }
	phone, _ := phonesim.LoadConfig("../../configs/phonesim.json")
	phone.ProxyAddr, phone.Timeout = proxy.PhoneAddr(), 15*time.Second
	customers := []string{zhang, li}
	before := map[string]int64{}
	for _, c := range customers {
		before[c], _ = host.Balance(c)
	}

	kills := map[string]int{}
	rounds := 0
	for ; rounds < *chaosRounds && time.Since(start) < *chaosTime; rounds++ {
		point := chaosPoints[rng.IntN(len(chaosPoints))]
		p := startATM(t, bin, configs[rng.IntN(len(configs))], point, logPath)
		// A commit point may come during recovery: the process dies while
		// starting (a kill during recovery), and the round ends there.
		if !inServiceOrDead(t, control, p, up) {
			kills[point+"(recovery)"]++
			continue
		}
		resp, err := http.Post("http://"+control+"/withdraw?amount=10000", "", nil)
		if err != nil {
			t.Fatalf("round %d: %v", rounds, err)
		}
		var sess appliance.SessionStatus
		json.NewDecoder(resp.Body).Decode(&sess)
		resp.Body.Close()
		customer := customers[rng.IntN(len(customers))]
		pin := map[string]string{zhang: "123456", li: "654321"}[customer]
		go phonesim.Withdraw(context.Background(), phone, sess.QR, customer, pin)
		wait := 8 * time.Second // a commit point the round never reaches: killed then
		if point == "" {
			wait = time.Duration(rng.Int64N(int64(2500 * time.Millisecond)))
		}
		select {
		case <-p.done:
			kills[point]++
			continue
		case <-time.After(wait):
		}
		p.cmd.Process.Kill()
		<-p.done
		if point == "" {
			kills["random"]++
		} else {
			kills["timeout:"+point]++
		}
	}

	p := startATM(t, bin, fixed, "", logPath)
	waitStatus(t, control, "recovered and settled", func(st appliance.Status) bool { return up(st) && st.SAFPending == 0 })
	stopATM(p)

	var debited int64
	for _, c := range customers {
		after, _ := host.Balance(c)
		debited += before[c] - after
	}
	sim, err := dispensersim.New(dispensersim.Config{Units: cfg.Dispenser.Sim.Units, MaxNotes: 40,
		TokenKey: []byte("0123456789abcdef"), StateFile: filepath.Join(cfg.DataDir, "dispenser-sim.json")})
	if err != nil {
		t.Fatal(err)
	}
	denom := map[string]int64{}
	for _, u := range cfg.Dispenser.Sim.Units {
		denom[u.ID] = u.Denomination
	}
	var taken int64
	device := map[string]dispensersim.UnitCounters{}
	for _, c := range sim.Counters() {
		taken += int64(c.Dispensed-c.Rejected-c.Retracted) * denom[c.ID]
		device[c.ID] = c
	}
	var violations []string
	if debited != taken {
		violations = append(violations, fmt.Sprintf("host debited %d, customers took %d", debited, taken))
	}
	db, err := store.Open(filepath.Join(cfg.DataDir, "atm.db"), store.Options{JournalAuth: devJournalAuth(t, cfg)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.VerifyJournal(); err != nil {
		violations = append(violations, "journal: "+err.Error())
	}
	err = db.View(func(tx *store.Tx) error {
		units, err := tx.UnitCounters()
		if err != nil {
			return err
		}
		for _, u := range units {
			d := device[u.UnitID]
			if int(u.Dispensed) != d.Dispensed || int(u.Rejected) != d.Rejected || int(u.Retracted) != d.Retracted || int(u.Remaining) != d.Count {
				violations = append(violations, fmt.Sprintf("unit %s: ATM %d/%d/%d/%d, device %d/%d/%d/%d (dispensed/rejected/retracted/remaining)",
					u.UnitID, u.Dispensed, u.Rejected, u.Retracted, u.Remaining, d.Dispensed, d.Rejected, d.Retracted, d.Count))
			}
		}
		items, err := tx.QueueItems()
		if len(items) != 0 {
			violations = append(violations, fmt.Sprintf("%d advices/reversals never acknowledged", len(items)))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := os.ReadFile(logPath); strings.Contains(string(l), "panic:") {
		violations = append(violations, "the appliance panicked")
	}
	var byPoint []string
	for _, k := range slices.Sorted(maps.Keys(kills)) {
		byPoint = append(byPoint, fmt.Sprintf("%s=%d", k, kills[k]))
	}
	fmt.Printf("chaos: seed %d, %d rounds (kills %s), customers took %d, host debited %d, %d violations, %s\n",
		*chaosSeed, rounds, strings.Join(byPoint, " "), taken, debited, len(violations), time.Since(start).Round(time.Second))
	for _, v := range violations {
		t.Error(v)
	}
}

// stopATM stops the appliance cleanly.
func stopATM(p *atmProc) {
	p.cmd.Process.Signal(os.Interrupt)
	<-p.done
}

// inServiceOrDead waits (bounded) until the appliance is in service (true)
// or its process has ended (false).
func inServiceOrDead(t *testing.T, control string, p *atmProc, up func(appliance.Status) bool) bool {
	t.Helper()
	for range 600 {
		select {
		case <-p.done:
			return false
		default:
		}
		if st, err := getStatus(control); err == nil && up(st) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the appliance neither came in service nor died within 30 s")
	return false
}
