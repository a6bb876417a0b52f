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
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/operators"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
)

// make chaos runs this campaign (build tag chaos; not part of make test).
var (
	chaosRounds = flag.Int("chaos.rounds", 50, "withdrawals, each ending in a kill of the atm, hostsim or proxysim process")
	chaosSeed   = flag.Uint64("chaos.seed", 1, "seed of the victims, kill points and times (the same seed repeats the choices)")
	chaosTime   = flag.Duration("chaos.time", 30*time.Minute, "stop starting rounds after this long")
)

// atmPoints are where a round kills the appliance: "" at a random moment
// (uniform over the first 2.5 s of the withdrawal); a session state: right
// after the commit of that state (the crash hook of the failpoint build);
// "device:ACTION": right after the dispenser recorded ACTION, before the
// core heard of it.
var atmPoints = []string{"", "", "", "", "Authorizing", "Dispensing", "Presenting", "AwaitingTake",
	"Completed", "Retracting", "Retracted", "Failed",
	"device:Dispense", "device:Present", "device:Taken", "device:Retract", "saf-ack"}

// recoveryPoints are where a restart after a kill may be killed again,
// while it recovers: "" at a random moment of the first 400 ms, or a
// failure point of recovery (the commits of the recovered session, the
// device's retract or purge, the clearing of notes left in the device,
// the first acknowledged advice or reversal).
var recoveryPoints = []string{"", "", "", "device:Reset", "device:Retract", "leftovers-intent", "leftovers",
	"Retracted", "Failed", "Completed", "saf-ack"}

// reachable lists the faults with which a withdrawal reaches a point
// (any fault when the point is not listed).
var reachable = map[string][]string{
	"Presenting":     {"plain", "not-taken", "short", "shutter"},
	"device:Present": {"plain", "not-taken", "short", "shutter"},
	"AwaitingTake":   {"plain", "not-taken", "short"},
	"Completed":      {"plain", "short"},
	"device:Taken":   {"plain", "short"},
	"Retracting":     {"not-taken"},
	"Retracted":      {"not-taken"},
	"device:Retract": {"not-taken"},
	"Failed":         {"jam", "shutter"},
}

// chaosFaults are the dispenser faults a round's appliance may run with
// (the plain configuration twice as often as each fault).
var chaosFaults = []struct {
	name string
	f    appliance.SimFaults
}{
	{"plain", appliance.SimFaults{}}, {"plain", appliance.SimFaults{}},
	{"not-taken", appliance.SimFaults{NotesNotTaken: true}},
	{"jam", appliance.SimFaults{JamAfter: 1}},
	{"short", appliance.SimFaults{ShortDispense: 1}},
	{"count-unknown", appliance.SimFaults{CountUnknown: true}},
	{"shutter", appliance.SimFaults{ShutterFailure: true}},
	{"offline", appliance.SimFaults{Offline: true}},
}

const (
	chaosOperator = "chaos"
	chaosSecret   = "chaos-campaign-passphrase" // test-only operator secret
)

// TestChaos is the random kill campaign of issue 16. The host simulator,
// the proxy simulator and the appliance (built with its failure points)
// run as real processes; the phone simulator is the customer. Every
// round withdraws 100.00 and ends in a SIGKILL: of the appliance (at a
// random moment, after a random commit or after a random device action;
// sometimes while it recovers), of hostsim or of proxysim (at a random
// moment; restarted at once). Rounds run with every dispenser fault of the
// simulator. Before each withdrawal, once the appliance is in service and
// has settled (sessions in doubt are settled as an operator who counted
// the device would), the invariants are checked on copies of the three
// stores: each session's host debit equals what the session paid, the
// host's debits equal the cash the customers took from the device, the
// ATM's cassette counters equal the device's, and the journal verifies.
// The same is checked at the end with nothing running. It prints one
// summary line.
func TestChaos(t *testing.T) {
	start := time.Now()
	rng := rand.New(rand.NewPCG(*chaosSeed, 0x5eed))
	dir := t.TempDir()
	bins := buildChaosBinaries(t, dir)
	logPath := filepath.Join(dir, "chaos.log")
	defer func() {
		if t.Failed() {
			l, _ := os.ReadFile(logPath)
			keep := filepath.Join(os.TempDir(), fmt.Sprintf("chaos-seed%d.log", *chaosSeed))
			os.WriteFile(keep, l, 0o644)
			t.Logf("the log of the three processes is in %s", keep)
		}
	}()

	// The host: customers with room for a long campaign (Li keeps her
	// 200.00, so insufficient funds come up too).
	hostCfgPath := filepath.Join(dir, "hostsim.json")
	editJSON(t, "../../configs/hostsim.json", hostCfgPath, func(m map[string]any) {
		m["dbPath"] = filepath.Join(dir, "host.db")
		for _, c := range m["customers"].([]any) {
			if c := c.(map[string]any); c["id"] == zhang {
				c["balance"], c["dailyLimit"] = 1_000_000_000, 1_000_000_000
			}
		}
	})
	hcfg, err := hostsim.LoadConfig(hostCfgPath)
	if err != nil {
		t.Fatal(err)
	}
	proxyCfgPath := filepath.Join(dir, "proxysim.json")
	editJSON(t, "../../configs/proxysim.json", proxyCfgPath, func(m map[string]any) { m["atmTimeout"] = "10s" })
	hostAddr, proxyATM, proxyPhone, control := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	startHost := func() *atmProc {
		return startProc(t, logPath, nil, bins.host, "--config", hostCfgPath, "--listen", hostAddr, "--bind-listen", "")
	}
	startProxy := func() *atmProc {
		return startProc(t, logPath, nil, bins.proxy, "--config", proxyCfgPath, "--atm", proxyATM, "--phone", proxyPhone, "--status", "")
	}
	before := hostBalances(t, hcfg, hcfg.DBPath) // seeds the host's store
	host, proxy := startHost(), startProxy()

	cfg, err := appliance.Load("../../configs/atm.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(dir, "atm")
	cfg.Proxy.Addr, cfg.Host.Addr, cfg.Control.Addr = proxyATM, hostAddr, control
	cfg.Host.SendTimeout = appliance.Duration(2 * time.Second)
	cfg.Proxy.EchoInterval = appliance.Duration(time.Second)
	cfg.Screen = appliance.Screen{Mode: "headless", PNG: filepath.Join(dir, "screen.png")}
	cfg.TakeTimeout = appliance.Duration(2 * time.Second)
	cfg.Dispenser.Sim.Latency, cfg.Dispenser.Sim.TakeDelay = 0, appliance.Duration(300*time.Millisecond)
	for i := range cfg.Dispenser.Sim.Units {
		cfg.Dispenser.Sim.Units[i].Count = 5000
	}
	configs := map[string]string{}
	for _, f := range chaosFaults {
		c := *cfg
		c.Dispenser.Sim.Faults = f.f
		b, _ := json.Marshal(&c)
		configs[f.name] = filepath.Join(dir, f.name+".json")
		if err := os.WriteFile(configs[f.name], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ops, err := operators.Open(filepath.Join(cfg.DataDir, appliance.OperatorsFile), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := ops.Add(chaosOperator, chaosSecret); err != nil {
		t.Fatal(err)
	}
	startATM := func(config, point string) *atmProc {
		env := []string{"EGL_PLATFORM=surfaceless"}
		if point != "" {
			env = append(env, appliance.CrashEnv+"="+point)
		}
		return startProc(t, logPath, env, bins.atm, "--config", config, "--new-store")
	}
	up := func(st appliance.Status) bool { return st.InService && st.ProxyUp && st.HostUp }
	phone, _ := phonesim.LoadConfig("../../configs/phonesim.json")
	phone.ProxyAddr, phone.Timeout = proxyPhone, 15*time.Second
	pins := map[string]string{zhang: "123456", li: "654321"}
	c := &chaosCheck{t: t, dir: dir, cfg: cfg, hcfg: hcfg, before: before}

	kills := map[string]int{}
	var p *atmProc
	alive := func(p *atmProc) bool {
		if p == nil {
			return false
		}
		select {
		case <-p.exited:
			return false
		default:
			return true
		}
	}
	rounds, checks, killedATM := 0, 0, false
	for ; rounds < *chaosRounds && time.Since(start) < *chaosTime; rounds++ {
		c.round = rounds
		victim := []string{"atm", "atm", "atm", "atm", "atm", "atm", "hostsim", "proxysim"}[rng.IntN(8)]
		point, fault := "", "plain"
		if victim == "atm" {
			point = atmPoints[rng.IntN(len(atmPoints))]
			fault = chaosFaults[rng.IntN(len(chaosFaults))].name
			// A point is reached only with some faults.
			if ok := reachable[point]; ok != nil {
				fault = ok[rng.IntN(len(ok))]
			}
		}
		if alive(p) {
			if !settle(t, control, p, up, c) {
				t.Fatalf("round %d: the appliance (no failure point armed) ended while settling", rounds)
			}
			c.check(rounds)
			checks++
			if victim == "atm" {
				stopATM(p)
			}
		}
		if !alive(p) {
			// Sometimes a kill at a random moment of the recovery of the
			// previous round's session.
			// Sometimes a kill while the appliance recovers from the
			// last one.
			if rp := recoveryPoints[rng.IntN(len(recoveryPoints))]; killedATM && rng.IntN(2) == 0 {
				q := startATM(configs["plain"], rp)
				switch {
				case rp == "":
					time.Sleep(time.Duration(rng.Int64N(int64(400 * time.Millisecond))))
					q.cmd.Process.Kill()
					<-q.exited
					kills["atm random (recovery)"]++
				case !c.comeUp(control, q, up):
					kills["atm "+rp+" (recovery)"]++
				default: // nothing to recover reached the point
					stopATM(q)
				}
			}
			if fault == "offline" {
				// The dispenser does not answer: the ATM must stay out of
				// service. Killed once both links are up.
				q := startATM(configs["offline"], "")
				outOfService(t, control, q)
				q.cmd.Process.Kill()
				<-q.exited
				kills["atm dispenser offline"]++
				killedATM = true
				continue
			}
			p = startATM(configs[fault], point)
			// The point may come while the appliance recovers or settles
			// (an advice acknowledged, say): then the round ends there.
			if !c.comeUp(control, p, up) || !settle(t, control, p, up, c) {
				kills["atm "+point+" (recovery)"]++
				killedATM = true
				continue
			}
			c.check(rounds)
			checks++
		}
		killedATM = false
		if fault == "count-unknown" {
			c.countUnknown = true // from here the counters may differ until adopted
		}
		resp, err := http.Post("http://"+control+"/withdraw?amount=10000", "", nil)
		if err != nil {
			select {
			case <-p.exited: // the armed point came after the check
				kills["atm "+point+" (before the withdrawal)"]++
				killedATM = true
				continue
			case <-time.After(time.Second):
			}
			t.Fatalf("round %d: %v", rounds, err)
		}
		var sess appliance.SessionStatus
		json.NewDecoder(resp.Body).Decode(&sess)
		resp.Body.Close()
		customer := zhang
		if rng.IntN(4) == 0 { // Li has 200.00: her withdrawals are often declined
			customer = li
		}
		go phonesim.Withdraw(context.Background(), phone, sess.QR, customer, pins[customer])
		wait := 8 * time.Second // a commit point the round never reaches: killed then
		switch {
		case victim != "atm": // most withdrawals are over in 0.7 s
			wait = time.Duration(rng.Int64N(int64(700 * time.Millisecond)))
		case point == "":
			wait = time.Duration(rng.Int64N(int64(2500 * time.Millisecond)))
		}
		select {
		case <-p.exited:
			kills["atm "+point]++
			killedATM = true
			continue
		case <-time.After(wait):
		}
		state := "idle"
		if st, err := getStatus(control); err == nil && st.Session != nil {
			state = st.Session.State
		}
		switch victim {
		case "atm":
			p.cmd.Process.Kill()
			<-p.exited
			killedATM = true
			if point == "" {
				kills["atm random in "+state]++
			} else {
				kills["atm "+point+" not reached (killed at 8 s)"]++
			}
		case "hostsim":
			host.cmd.Process.Kill()
			<-host.exited
			kills["hostsim random in "+state]++
			host = startHost()
		case "proxysim":
			proxy.cmd.Process.Kill()
			<-proxy.exited
			kills["proxysim random in "+state]++
			proxy = startProxy()
		}
	}

	if alive(p) {
		stopATM(p)
	}
	p = startATM(configs["plain"], "")
	if !c.comeUp(control, p, up) || !settle(t, control, p, up, c) {
		t.Fatal("the appliance died in the final recovery")
	}
	stopATM(p)
	host.cmd.Process.Signal(os.Interrupt)
	<-host.exited
	proxy.cmd.Process.Signal(os.Interrupt)
	<-proxy.exited
	c.check(-1)

	if l, _ := os.ReadFile(logPath); strings.Contains(string(l), "panic:") {
		c.violations = append(c.violations, "a process panicked")
	}
	var byPoint []string
	total := 0
	for _, k := range slices.Sorted(maps.Keys(kills)) {
		byPoint = append(byPoint, fmt.Sprintf("%s=%d", k, kills[k]))
		total += kills[k]
	}
	fmt.Printf("chaos: seed %d, %d rounds, %d kills (%s), %d checks, %d sessions settled and %d counter adoptions by the operator after count-unknown faults, customers took %d, host debited %d, %d violations, %s\n",
		*chaosSeed, rounds, total, strings.Join(byPoint, ", "), checks+1, c.settled, c.adopted, c.taken, c.debited, len(c.violations), time.Since(start).Round(time.Second))
	for _, v := range c.violations {
		t.Error(v)
	}
}

type chaosBinaries struct{ atm, host, proxy string }

// buildChaosBinaries builds cmd/atm with its failure points, cmd/hostsim
// and cmd/proxysim.
func buildChaosBinaries(t *testing.T, dir string) chaosBinaries {
	t.Helper()
	b := chaosBinaries{atm: filepath.Join(dir, "atm-bin"), host: filepath.Join(dir, "hostsim-bin"), proxy: filepath.Join(dir, "proxysim-bin")}
	for _, c := range [][]string{
		{"build", "-tags", "failpoint", "-o", b.atm, "../../cmd/atm"},
		{"build", "-o", b.host, "../../cmd/hostsim"},
		{"build", "-o", b.proxy, "../../cmd/proxysim"},
	} {
		if out, err := exec.Command("go", c...).CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", c, err, out)
		}
	}
	return b
}

// editJSON writes to dst the JSON file src as changed by edit.
func editJSON(t *testing.T, src, dst string, edit func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// stopATM stops the appliance cleanly.
func stopATM(p *atmProc) {
	p.cmd.Process.Signal(os.Interrupt)
	<-p.exited
}

// comeUp waits (bounded) until the appliance is in service (true) or its
// process has ended (false).
func (c *chaosCheck) comeUp(control string, p *atmProc, up func(appliance.Status) bool) bool {
	for range 600 {
		select {
		case <-p.exited:
			return false
		default:
		}
		st, err := getStatus(control)
		if err == nil && up(st) {
			return true
		}
		if err == nil {
			c.counters(control, st, p)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal("the appliance neither came in service nor died within 30 s")
	return false
}

// counters handles an ATM out of service because its cassette counters
// differ from the device's. After a count-unknown the ATM cannot know
// what moved: an operator who counted adopts the device's counts.
// Anywhere else it is a violation (the books went wrong); the campaign
// adopts and goes on.
func (c *chaosCheck) counters(control string, st appliance.Status, p *atmProc) {
	if st.InService || st.Reason != "counters" {
		return
	}
	if !c.countUnknown {
		c.fail(c.round, "cassette counters differ from the device's without a count-unknown fault")
	}
	var out map[string]string
	if err := operatorCall(control, "POST", "/operator/counters/adopt", &out); err != nil {
		if exited(p) {
			return // a failure point armed for the round fired meanwhile
		}
		c.t.Fatalf("adopt the device's counters: %v", err)
	}
	c.adopted++
	// The adoption sets the remaining counts. The notes the device picked
	// without counting and then purged are in its dispensed and rejected
	// counters but not in the ATM's: that difference is carried from here.
	units, _ := c.device()
	counters, _ := c.readATM()
	if c.offset == nil {
		c.offset = map[string][3]int64{}
	}
	for _, u := range counters {
		d := units[u.UnitID]
		c.offset[u.UnitID] = [3]int64{int64(d.Dispensed) - u.Dispensed, int64(d.Rejected) - u.Rejected, int64(d.Retracted) - u.Retracted}
	}
}

// outOfService waits (bounded) until the appliance with an offline
// dispenser has both links up, and fails if it ever says it is in service.
func outOfService(t *testing.T, control string, p *atmProc) {
	t.Helper()
	for range 600 {
		select {
		case <-p.exited:
			t.Fatal("the appliance with an offline dispenser ended")
		default:
		}
		st, err := getStatus(control)
		if err == nil && st.InService {
			t.Fatalf("in service with the dispenser offline: %+v", st)
		}
		if err == nil && st.ProxyUp && st.HostUp {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the appliance with an offline dispenser never brought its links up within 30 s")
}

// settle waits (bounded) until the appliance is in service with no
// session running and nothing queued for the host, cancelling a session
// that waits for a phone that will not come (its request died with a
// killed proxy) and settling sessions in doubt as an operator would. It
// returns false when the process ended meanwhile (a failure point armed
// for the round fired).
func settle(t *testing.T, control string, p *atmProc, up func(appliance.Status) bool, c *chaosCheck) bool {
	t.Helper()
	waiting := 0
	for range 1200 {
		select {
		case <-p.exited:
			return false
		default:
		}
		st, err := getStatus(control)
		switch {
		case err != nil:
		case !up(st):
			c.counters(control, st, p)
		case st.Session != nil && !st.Session.Completed:
			if st.Session.State == "AwaitingPhone" {
				if waiting++; waiting > 60 {
					if resp, err := http.Post("http://"+control+"/cancel", "", nil); err == nil {
						resp.Body.Close()
					}
				}
			}
		case c.settleInDoubt(control, p):
		case st.SAFPending == 0:
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := getStatus(control)
	t.Fatalf("the appliance did not settle within 60 s: %+v %v", st, err)
	return false
}

// settleInDoubt settles every session in doubt with what the device shows
// the customers took (an operator counts the cassettes, bins and exit):
// the cash taken less what the other sessions paid, all of it to the
// first session in doubt. It returns whether there was one.
func (c *chaosCheck) settleInDoubt(control string, p *atmProc) bool {
	t := c.t
	var list []struct {
		ID string `json:"id"`
	}
	if err := operatorCall(control, "GET", "/operator/in-doubt", &list); err != nil {
		if exited(p) {
			return true
		}
		t.Fatalf("in-doubt list: %v", err)
	}
	if len(list) == 0 {
		return false
	}
	_, taken := c.device()
	_, sessions := c.readATM()
	var rest int64
	for _, s := range sessions {
		if s.State != atm.StateInDoubt {
			rest += s.Paid
		}
	}
	for i, s := range list {
		var out struct {
			Error string `json:"error"`
		}
		paid := taken - rest
		if i > 0 {
			paid = 0
		}
		if err := operatorCall(control, "POST", fmt.Sprintf("/operator/settle?session=%s&paid=%d", s.ID, paid), &out); err != nil || out.Error != "" {
			if exited(p) {
				return true // the settlement's commit was the round's failure point: settle sees the exit
			}
			t.Fatalf("settle %s with %d: %v %s", s.ID[:8], paid, err, out.Error)
		}
		c.settled++
	}
	return true
}

func operatorCall(control, method, path string, out any) error {
	req, err := http.NewRequest(method, "http://"+control+path, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(chaosOperator, chaosSecret)
	req.Header.Set("Origin", "http://"+control)
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// chaosCheck checks the campaign's invariants on copies of the three
// stores (the processes may be running; at a settled moment nothing
// writes).
type chaosCheck struct {
	t          *testing.T
	dir        string
	cfg        *appliance.Config
	hcfg       hostsim.Config
	before     map[string]int64
	violations []string
	round      int
	// countUnknown: a count-unknown fault ran since the last check, so
	// the ATM's counters may rightly differ from the device's until an
	// operator adopts the device's counts.
	countUnknown bool
	adopted      int // counter adoptions
	// offset: per unit, the device's dispensed, rejected and retracted
	// counts less the ATM's, as left by the last adoption.
	offset  map[string][3]int64
	settled int
	taken   int64 // at the last check
	debited int64
}

// fail records a violation and reports it at once (a run that ends early
// still shows it).
func (c *chaosCheck) fail(round int, format string, args ...any) {
	v := fmt.Sprintf("round %d: ", round) + fmt.Sprintf(format, args...)
	c.violations = append(c.violations, v)
	c.t.Log("VIOLATION " + v)
}

// exited reports, after a moment, whether the process has ended (an
// operator call that failed because the process died).
func exited(p *atmProc) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(2 * time.Second):
		return false
	}
}

func copyFile(t *testing.T, src, dst string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// device reads the dispenser's memory: its counters, and the cash the
// customers took (dispensed less rejected, retracted and still inside).
func (c *chaosCheck) device() (map[string]dispensersim.UnitCounters, int64) {
	t := c.t
	state := copyFile(t, filepath.Join(c.cfg.DataDir, "dispenser-sim.json"), filepath.Join(c.dir, "check-dispenser.json"))
	sim, err := dispensersim.New(dispensersim.Config{Units: c.cfg.Dispenser.Sim.Units, MaxNotes: 40,
		TokenKey: []byte("0123456789abcdef"), StateFile: state})
	if err != nil {
		t.Fatal(err)
	}
	denom := map[string]int64{}
	for _, u := range c.cfg.Dispenser.Sim.Units {
		denom[u.ID] = u.Denomination
	}
	units := map[string]dispensersim.UnitCounters{}
	var taken int64
	for _, u := range sim.Counters() {
		taken += int64(u.Dispensed-u.Rejected-u.Retracted) * denom[u.ID]
		units[u.ID] = u
	}
	stacker, exit := sim.Stacked()
	for _, m := range []dispenser.Mix{stacker, exit} {
		for id, n := range m {
			taken -= int64(n) * denom[id]
		}
	}
	return units, taken
}

// readATM reads the ATM's store (a copy): its cassette counters and
// sessions, and whether its journal verifies.
func (c *chaosCheck) readATM() ([]store.UnitCounters, []atm.Session) {
	counters, sessions, _, _ := c.readATMStore()
	return counters, sessions
}

func (c *chaosCheck) readATMStore() (counters []store.UnitCounters, sessions []atm.Session, queued int, journal error) {
	t := c.t
	path := copyFile(t, filepath.Join(c.cfg.DataDir, "atm.db"), filepath.Join(c.dir, "check-atm.db"))
	db, err := store.Open(path, store.Options{JournalAuth: devJournalAuth(t, c.cfg)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	journal = db.VerifyJournal()
	err = db.View(func(tx *store.Tx) error {
		var err error
		if counters, err = tx.UnitCounters(); err != nil {
			return err
		}
		if queued, err = tx.QueueLen(); err != nil {
			return err
		}
		return tx.ForEachSession(func(id string, v []byte) error {
			var s atm.Session
			if err := json.Unmarshal(v, &s); err != nil {
				return err
			}
			sessions = append(sessions, s)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return counters, sessions, queued, journal
}

// check checks every invariant; round -1 is the final check.
func (c *chaosCheck) check(round int) {
	t := c.t
	units, taken := c.device()
	counters, sessions, queued, journal := c.readATMStore()
	if journal != nil {
		c.fail(round, "journal: %v", journal)
	}
	if queued != 0 {
		c.fail(round, "%d advices/reversals never acknowledged", queued)
	}
	for _, u := range counters {
		d, o := units[u.UnitID], c.offset[u.UnitID]
		if u.Dispensed+o[0] != int64(d.Dispensed) || u.Rejected+o[1] != int64(d.Rejected) || u.Retracted+o[2] != int64(d.Retracted) || int(u.Remaining) != d.Count {
			c.fail(round, "unit %s: ATM %d/%d/%d/%d (adoptions carried %v), device %d/%d/%d/%d (dispensed/rejected/retracted/remaining)",
				u.UnitID, u.Dispensed, u.Rejected, u.Retracted, u.Remaining, o, d.Dispensed, d.Rejected, d.Retracted, d.Count)
		}
	}
	hostDB := copyFile(t, c.hcfg.DBPath, filepath.Join(c.dir, "check-host.db"))
	after := hostBalances(t, c.hcfg, hostDB)
	h := c.hcfg
	h.DBPath = hostDB
	s, err := hostsim.NewUnstartedServer(h)
	if err != nil {
		t.Fatal(err)
	}
	debits, err := s.Debits()
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	var debited int64
	for id, b := range c.before {
		debited += b - after[id]
	}
	if debited != taken {
		c.fail(round, "host debited %d, customers took %d", debited, taken)
	}
	// Per session: the host's debit equals what the session paid.
	net := map[string]int64{}
	for _, d := range debits {
		net[d.Nonce] += d.Net
	}
	var paid int64
	for _, s := range sessions {
		paid += s.Paid
		if s.DispenseNonce == "" {
			if s.Paid != 0 {
				c.fail(round, "session %s paid %d without an authorization", s.ID[:8], s.Paid)
			}
			continue
		}
		if s.State == atm.StateInDoubt {
			c.fail(round, "session %s still in doubt", s.ID[:8])
		}
		if net[s.DispenseNonce] != s.Paid {
			c.fail(round, "session %s (%s): paid %d, host debit %d", s.ID[:8], s.State, s.Paid, net[s.DispenseNonce])
		}
		delete(net, s.DispenseNonce)
	}
	for nonce, n := range net {
		if n != 0 {
			c.fail(round, "host debit %d for dispense nonce %s that no ATM session knows", n, nonce[:8])
		}
	}
	if paid != taken {
		c.fail(round, "the ATM's sessions paid %d, customers took %d", paid, taken)
	}
	c.taken, c.debited = taken, debited
	c.countUnknown = false
}

// hostBalances opens the host's store at path (not in use by a running
// host) and returns the campaign customers' balances.
func hostBalances(t *testing.T, cfg hostsim.Config, path string) map[string]int64 {
	t.Helper()
	cfg.DBPath = path
	s, err := hostsim.NewUnstartedServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := map[string]int64{}
	for _, id := range []string{zhang, li} {
		if out[id], err = s.Balance(id); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
