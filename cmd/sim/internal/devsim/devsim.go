// Package devsim runs the whole cardless-withdrawal system on a laptop: the
// bank host simulator, the proxy simulator and the ATM appliance as real
// processes on loopback, then the first use of a new phone (bound to the
// customer with a verification code by simulated SMS) and a complete
// withdrawal through the phone simulator, narrating each step. cmd/sim is its thin main; `make sim` runs it.
// It polls other processes (their status endpoint, the screen file), so it
// runs on real time, unlike the appliance, whose clock is injected.
package devsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/nfc"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
)

// Options configure a run. The zero value is not usable; see Defaults.
type Options struct {
	Bin         string // directory holding hostsim, proxysim, atm, phonesim
	Configs     string // directory holding atm.json, hostsim.json, proxysim.json, phonesim.json
	Var         string // run-time data and logs
	HostAddr    string
	BindAddr    string // the host's bind endpoint and simulated SMS inbox
	ProxyATM    string
	ProxyPhone  string
	ProxyStatus string // the proxy's terminal status endpoint (proxysim status)
	Control     string // the ATM's control endpoint
	Amount      int64  // minor units
	Customer    string
	PIN         string
	// Dispenser is the dispenser the ATM drives: "sim" (the simulator
	// inside the appliance, the default), "xfs4iot" (the XFS4IoT device
	// simulator as its own process, driven over a WebSocket) or "lcdm"
	// (the Puloon LCDM simulator on a pseudo-terminal, driven as a serial
	// port; the first two cassettes of atm.json).
	Dispenser  string
	DeviceAddr string // where the xfs4iot device simulator listens
	// NFC gives the ATM a contactless reader: a vsmartcard vpcd virtual
	// reader of pcscd (the system's, or one started for the run on
	// VPCDPort), and the demo phone taps it instead of scanning.
	NFC      bool
	VPCDPort int
	Window   bool // open the ATM window (needs a display)
	Once     bool // stop everything after the demo withdrawal
	Out      io.Writer
}

// Defaults are the laptop defaults the shipped configs use.
func Defaults() Options {
	return Options{Bin: "bin", Configs: "configs", Var: "var", HostAddr: "127.0.0.1:6100", BindAddr: "127.0.0.1:6101", ProxyATM: "127.0.0.1:6200",
		ProxyPhone: "127.0.0.1:6201", ProxyStatus: "127.0.0.1:6202", Control: "127.0.0.1:6300", Dispenser: "sim", DeviceAddr: "127.0.0.1:5846", VPCDPort: nfc.DefaultVPCDPort, Amount: 50000, Customer: "13800000001", PIN: "123456",
		Out: os.Stdout}
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// exited returns an error naming p and the last line of its log if p has
// exited, else nil.
func (p *proc) exited() error {
	select {
	case <-p.done:
	default:
		return nil
	}
	last := ""
	if b, err := os.ReadFile(p.log); err == nil {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		last = strings.TrimSpace(lines[len(lines)-1])
	}
	return fmt.Errorf("%s exited (%v); last log line: %s (full log %s)", p.name, p.err, last, p.log)
}

// Run starts the system, runs one withdrawal and, unless Once, keeps the
// system up until ctx is done. It returns an error if the demo withdrawal
// was not approved and paid.
func Run(ctx context.Context, o Options) error {
	r := &run{o: o, logs: filepath.Join(o.Var, "logs")}
	defer r.stopAll()
	if err := os.MkdirAll(r.logs, 0o755); err != nil {
		return err
	}
	ports := []string{o.HostAddr, o.BindAddr, o.ProxyATM, o.ProxyPhone, o.ProxyStatus, o.Control}
	switch o.Dispenser {
	case "sim", "":
	case "xfs4iot":
		ports = append(ports, o.DeviceAddr)
	case "lcdm":
	default:
		return fmt.Errorf("dispenser %q: want sim, xfs4iot or lcdm", o.Dispenser)
	}
	if err := portsFree(ports...); err != nil {
		return err
	}
	r.say("== Cardless withdrawal: the whole system on this laptop ==")
	r.say("[1/7] Starting the bank host, the proxy server and the ATM as separate processes on loopback")
	if o.NFC {
		if err := r.startReader(ctx); err != nil {
			return fmt.Errorf("NFC=1: %w", err)
		}
	}
	if err := r.startAll(); err != nil {
		return err
	}
	r.say("[2/7] Waiting for the ATM to sign on to the proxy (key exchange) and connect to the host")
	st, err := r.waitInService(ctx)
	if err != nil {
		return err
	}
	r.say("      ATM %s in service: proxy link signed on, host link up", st.TerminalID)
	device, err := r.bindPhone(ctx)
	if err != nil {
		return err
	}
	if err := r.demoWithdrawal(ctx, device); err != nil {
		return err
	}
	if o.Once {
		r.say("Once: the demo withdrawal is done; stopping everything.")
		return nil
	}
	r.sayByHand()
	r.say("Press Ctrl-C to stop.")
	<-ctx.Done()
	return nil
}

// run is one Run: its options, the processes it started and where their
// logs go.
type run struct {
	o     Options
	logs  string
	procs []*proc
	// With NFC: the virtual reader's card socket and name, where pcscd
	// logs the APDUs ("" when it is the system's), and the reader's lock
	// (released after the processes stopped).
	vpcd, reader, pcscdLog string
	unlock                 func()
}

func (r *run) say(format string, a ...any) { fmt.Fprintf(r.o.Out, format+"\n", a...) }

func (r *run) cfg(name string) string { return filepath.Join(r.o.Configs, name) }

// screenPNG is where the ATM (headless or windowed) writes its screen.
func (r *run) screenPNG() string { return filepath.Join(r.o.Var, "atm", "screen.png") }

// portsFree fails if something already listens on one of addrs (another
// `make sim`, most likely).
func portsFree(addrs ...string) error {
	for _, addr := range addrs {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return fmt.Errorf("%s is already in use: is another `make sim` running? stop it first", addr)
		}
	}
	return nil
}

// start runs bin/name with args, its output in logs/name.log, in its own
// process group (see stop).
func (r *run) start(name string, args ...string) error {
	_, err := r.startCmd(name, exec.Command(filepath.Join(r.o.Bin, name), args...))
	if err != nil {
		return fmt.Errorf("%w (did `make build` run?)", err)
	}
	return nil
}

// startCmd runs cmd as name, its output in logs/name.log, in its own
// process group (see stop).
func (r *run) startCmd(name string, cmd *exec.Cmd) (*proc, error) {
	p := &proc{name: name, log: filepath.Join(r.logs, name+".log"), done: make(chan struct{}), cmd: cmd}
	f, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	ownGroup(p.cmd)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.err = p.cmd.Wait(); f.Close(); close(p.done) }()
	r.procs = append(r.procs, p)
	r.say("  started %-9s pid %-7d log %s", name, p.cmd.Process.Pid, p.log)
	return p, nil
}

func (r *run) startAll() error {
	o := r.o
	if err := r.start("hostsim", "--config", r.cfg("hostsim.json"), "--listen", o.HostAddr, "--bind-listen", o.BindAddr); err != nil {
		return err
	}
	if err := r.start("proxysim", "--config", r.cfg("proxysim.json"), "--atm", o.ProxyATM, "--phone", o.ProxyPhone, "--status", o.ProxyStatus); err != nil {
		return err
	}
	mode := "--headless"
	if o.Window {
		mode = "--window"
	}
	atmConfig := r.cfg("atm.json")
	if o.Dispenser != "sim" && o.Dispenser != "" {
		var err error
		if atmConfig, err = r.startDevice(); err != nil {
			return err
		}
	}
	if o.NFC {
		var err error
		if atmConfig, err = r.withNFC(atmConfig); err != nil {
			return err
		}
	}
	// The laptop demo may start from nothing (make sim-clean): it lets the
	// ATM create its store; a real terminal does that once, at installation.
	return r.start("atm", "--config", atmConfig, mode, "--new-store")
}

// startDevice starts the device simulator Options.Dispenser names,
// loaded with the cassettes of atm.json's simulated dispenser and its
// token key (the key the host signs with), and returns the path of a copy
// of atm.json whose dispenser section drives it.
func (r *run) startDevice() (string, error) {
	b, err := os.ReadFile(r.cfg("atm.json"))
	if err != nil {
		return "", err
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", fmt.Errorf("atm.json: %w", err)
	}
	var sim struct {
		Dispenser struct {
			Sim struct {
				Units        []dispenser.CashUnit `json:"units"`
				TokenKey     string               `json:"tokenKey"`
				MaxNotes     int                  `json:"maxNotes"`
				LowThreshold int                  `json:"lowThreshold"`
			} `json:"sim"`
		} `json:"dispenser"`
	}
	if err := json.Unmarshal(b, &sim); err != nil {
		return "", fmt.Errorf("atm.json: %w", err)
	}
	s := sim.Dispenser.Sim
	keyFile, err := filepath.Abs(filepath.Join(r.o.Var, "dispenser-token.key"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(keyFile, []byte(s.TokenKey+"\n"), 0o600); err != nil {
		return "", err
	}
	switch r.o.Dispenser {
	case "xfs4iot":
		var units []string
		for i, u := range s.Units {
			units = append(units, fmt.Sprintf("unit%d:%s:%d:%d", i+1, u.Currency, u.Denomination, u.Count))
		}
		if err := r.start("xfs4iotsim", "-listen", r.o.DeviceAddr, "-token-key-file", keyFile, "-units", strings.Join(units, ","),
			"-max-notes", fmt.Sprint(s.MaxNotes), "-state-file", filepath.Join(r.o.Var, "xfs4iotsim.json")); err != nil {
			return "", err
		}
		cfg["dispenser"] = map[string]any{"driver": "xfs4iot", "xfs4iot": map[string]any{
			"publisher": "ws://" + r.o.DeviceAddr + "/xfs4iot/v1.0", "responseKeyFile": keyFile}}
	case "lcdm":
		units := s.Units[:min(2, len(s.Units))] // upper and lower cassette
		var spec []string
		for _, u := range units {
			spec = append(spec, fmt.Sprintf("%s:%d:%s:%d", u.ID, u.Denomination, u.Currency, u.Count))
		}
		tty, err := filepath.Abs(filepath.Join(r.o.Var, "lcdm.tty"))
		if err != nil {
			return "", err
		}
		_ = os.Remove(tty)
		if err := r.start("lcdmsim", "-link", tty, "-units", strings.Join(spec, ","), "-state", filepath.Join(r.o.Var, "lcdmsim.json")); err != nil {
			return "", err
		}
		if err := r.waitFile(tty); err != nil {
			return "", err
		}
		cfg["dispenser"] = map[string]any{"driver": "lcdm", "lcdm": map[string]any{
			"port": tty, "model": "lcdm2000", "units": units, "maxNotes": s.MaxNotes, "lowThreshold": s.LowThreshold, "tokenKeyFile": keyFile}}
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(r.o.Var, "atm-"+r.o.Dispenser+".json")
	return path, os.WriteFile(path, out, 0o600)
}

// waitFile waits (bounded) until a device simulator has created path.
func (r *run) waitFile(path string) error {
	for range 100 {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		for _, p := range r.procs {
			if err := p.exited(); err != nil {
				return err
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not appear", path)
}

// stopAll stops the processes in the reverse order of their start, then
// releases the virtual reader.
func (r *run) stopAll() {
	for i := len(r.procs) - 1; i >= 0; i-- {
		stop(r.procs[i])
	}
	if r.unlock != nil {
		r.unlock()
	}
}

// waitInService waits until the ATM is signed on, connected and in
// service. It stops waiting as soon as a process dies (a bad config, a
// refused store) and then returns the last line of its log.
func (r *run) waitInService(ctx context.Context) (status, error) {
	wctx, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	for _, p := range r.procs {
		go func() {
			select {
			case <-p.done:
				stopWaiting()
			case <-wctx.Done():
			}
		}()
	}
	st, err := waitStatus(wctx, r.o.Control, 45*time.Second, func(s status) bool { return s.ProxySignedOn && s.HostConnected && s.InService })
	if err == nil {
		return st, nil
	}
	for _, p := range r.procs {
		if perr := p.exited(); perr != nil {
			return st, fmt.Errorf("the ATM did not come into service: %w", perr)
		}
	}
	return st, fmt.Errorf("the ATM did not come into service: %w (see %s)", err, r.logs)
}

// bindPhone is step 3: the customer's new phone (a device ID drawn as the
// app does at its first start) is bound to the customer with the PIN and
// the code the host "sends by SMS" (phonesim reads the simulated inbox).
// It returns the device ID.
func (r *run) bindPhone(ctx context.Context) (string, error) {
	o := r.o
	device, err := wire.NewDeviceID()
	if err != nil {
		return "", err
	}
	r.say("[3/7] First use of the app on a new phone: it binds the phone to customer %s (docs/binding.md)", o.Customer)
	r.say("      app -> bank: customer, PIN block, device ID; bank -> customer: a 6-digit code by SMS (simulated); app -> bank: the code")
	bind := exec.CommandContext(ctx, filepath.Join(o.Bin, "phonesim"), "bind", "--config", r.cfg("phonesim.json"),
		"--bind", "http://"+o.BindAddr, "--device", device, "--customer", o.Customer, "--pin", o.PIN)
	bind.Stderr = os.Stderr
	out, err := bind.Output()
	r.say("      bank's answer: %s", strings.TrimSpace(string(out)))
	if err != nil {
		return "", fmt.Errorf("binding the phone failed: %v (logs in %s)", err, r.logs)
	}
	return device, nil
}

// demoWithdrawal is steps 4 to 7: the customer picks the amount at the
// ATM, the phone simulator (the phone bound in step 3) reads the QR from
// the screen's pixels and withdraws; then the completion advice and the
// journal are checked.
func (r *run) demoWithdrawal(ctx context.Context, device string) error {
	o := r.o
	r.say("[4/7] Customer at the ATM chooses \"cardless withdrawal\" and %s", money(o.Amount))
	sess, err := withdraw(ctx, o.Control, o.Amount)
	if err != nil {
		return err
	}
	r.say("      session written to bbolt, QR on screen (expires %s)", sess.Expires.Local().Format("15:04:05"))
	r.say("      QR payload: %s", sess.QR)
	png := r.screenPNG()
	if err := phonesim.WaitScreenQR(ctx, png, sess.QR, 15*time.Second); err != nil {
		return err
	}

	get := []string{"--qr-png", png}
	if o.NFC {
		r.say("[5/7] Customer holds the phone to the ATM's contactless reader (phonesim --nfc attaches to the vpcd virtual reader at %s as the phone's card)", r.vpcd)
		r.say("      ATM -> phone over NFC: SELECT of the bank app's AID, the session payload (docs/nfc.md)")
		get = []string{"--nfc", "--vpcd", r.vpcd, "--tap-for", "30s"}
	} else {
		r.say("[5/7] Customer scans the screen with the phone app (phonesim reads %s from pixels)", png)
	}
	r.say("      phone -> proxy (ISO 8583, 3DES) -> ATM -> host (authorize) -> dispenser")
	seen := make(chan struct{})
	nctx, stopNarrating := context.WithCancel(ctx)
	defer stopNarrating()
	go narrate(nctx, o, r.say, seen)
	phone := exec.CommandContext(ctx, filepath.Join(o.Bin, "phonesim"), append(append([]string{"--proxy", o.ProxyPhone, "--config", r.cfg("phonesim.json")},
		get...), "--device", device, "--customer", o.Customer, "--pin", o.PIN)...)
	phone.Stderr = os.Stderr
	outb, perr := phone.Output()
	if perr != nil {
		stopNarrating() // the session may never finish: do not wait for it
	}
	<-seen
	r.say("[6/7] Phone app shows the outcome: %s", strings.TrimSpace(string(outb)))
	if perr != nil {
		return fmt.Errorf("withdrawal not approved and paid: %v (logs in %s)", perr, r.logs)
	}
	st, err := waitStatus(ctx, o.Control, 30*time.Second, func(s status) bool { return s.SAFPending == 0 })
	if err != nil {
		return fmt.Errorf("the completion advice was not acknowledged by the host: %w (logs in %s)", err, r.logs)
	}
	r.say("      completion advice acknowledged by the host (store-and-forward queue: %d pending)", st.SAFPending)
	if v := verify(o.Control); v != "ok" {
		return fmt.Errorf("the journal does not verify: %s", v)
	}
	r.say("[7/7] Cash paid out. Journal chain verified: ok")
	return nil
}

func (r *run) sayByHand() {
	o := r.o
	r.say("")
	r.say("Do one by hand (the system keeps running):")
	r.say("  curl -X POST 'http://%s/withdraw?amount=20000'      # the customer picks 200.00", o.Control)
	r.say("  %s/phonesim --proxy %s --config %s --qr-png %s --customer 13800000001 --pin 123456", o.Bin, o.ProxyPhone, r.cfg("phonesim.json"), r.screenPNG())
	r.say("  curl http://%s/status                                # what the ATM is doing", o.Control)
	if o.NFC {
		r.say("Tap instead of scanning (docs/nfc.md): choose an amount as above, then hold the phone to the reader:")
		r.say("  %s/phonesim --nfc --vpcd %s --proxy %s --config %s --customer 13800000001 --pin 123456", o.Bin, r.vpcd, o.ProxyPhone, r.cfg("phonesim.json"))
		if r.pcscdLog != "" {
			r.say("  the APDUs the reader exchanged are in %s", r.pcscdLog)
		}
	} else {
		r.say("Tap instead of scanning: make sim NFC=1 (a vpcd virtual reader through pcscd; docs/nfc.md)")
	}
	r.say("Bind another phone (docs/binding.md; the development phone of %s is bound already):", r.cfg("phonesim.json"))
	r.say("  ID=$(%s/phonesim new-device)", o.Bin)
	r.say("  %s/phonesim bind --config %s --bind http://%s --device $ID --customer 13800000002 --pin 654321", o.Bin, r.cfg("phonesim.json"), o.BindAddr)
	r.say("  curl 'http://%s/sim/sms?to=13800000002'              # the simulated SMS inbox", o.BindAddr)
	r.say("  then add --device $ID to the phonesim withdrawal above (without binding: declined 57)")
	r.say("  open %s to see the screen; logs are in %s", r.screenPNG(), r.logs)
}

// stop asks p's process group to end (SIGTERM on Unix; see ownGroup) and
// kills it if it has not ended within 5 s.
func stop(p *proc) {
	if p.cmd.Process == nil {
		return
	}
	terminate(p.cmd)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		kill(p.cmd)
		<-p.done
	}
}

// narrate prints the ATM's session states as they change, until the session
// is finished.
func narrate(ctx context.Context, o Options, say func(string, ...any), done chan<- struct{}) {
	defer close(done)
	words := map[string]string{
		"Authorizing":  "dispense command accepted (MAC, session, nonce, amount checked); asking the host to authorize",
		"Dispensing":   "host approved with a dispense token; the dispenser checks the token and counts the notes",
		"Presenting":   "notes counted; opening the shutter",
		"AwaitingTake": "cash presented: \"please take your cash\"",
		"Completed":    "customer took the cash; completion advice queued for the host",
		"Declined":     "host declined",
		"Failed":       "failed; reversal queued where the host may have debited",
		"Retracted":    "cash not taken: retracted, reversal queued",
	}
	last := "AwaitingPhone"
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		s, err := getStatus(o.Control)
		if err == nil && s.Session != nil && s.Session.State != last {
			last = s.Session.State
			say("      ATM: %-12s %s", last, words[last])
			if s.Session.Finished {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type sessionStatus struct {
	State    string    `json:"state"`
	QR       string    `json:"qr"`
	Expires  time.Time `json:"expires"`
	Finished bool      `json:"finished"`
}

type status struct {
	TerminalID    string         `json:"terminal_id"`
	InService     bool           `json:"in_service"`
	ProxySignedOn bool           `json:"proxy_signed_on"`
	HostConnected bool           `json:"host_connected"`
	SAFPending    int            `json:"saf_pending"`
	Session       *sessionStatus `json:"session"`
}

var client = &http.Client{Timeout: 5 * time.Second}

func getStatus(addr string) (status, error) {
	var s status
	resp, err := client.Get("http://" + addr + "/status")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

func waitStatus(ctx context.Context, addr string, d time.Duration, ok func(status) bool) (status, error) {
	deadline := time.Now().Add(d)
	var last status
	var lastErr error
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return last, ctx.Err()
		}
		s, err := getStatus(addr)
		if err == nil && ok(s) {
			return s, nil
		}
		last, lastErr = s, err
		time.Sleep(100 * time.Millisecond)
	}
	if lastErr != nil {
		return last, fmt.Errorf("timed out: %w", lastErr)
	}
	return last, fmt.Errorf("timed out: last status %+v", last)
}

func withdraw(ctx context.Context, addr string, amount int64) (sessionStatus, error) {
	var s sessionStatus
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://%s/withdraw?amount=%d", addr, amount), nil)
	resp, err := client.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return s, fmt.Errorf("the ATM refused the amount: %s", strings.TrimSpace(string(b)))
	}
	return s, json.Unmarshal(b, &s)
}

func verify(addr string) string {
	resp, err := client.Get("http://" + addr + "/journal/verify")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return "FAILED " + string(b)
	}
	return "ok"
}

func money(minor int64) string { return dispenser.FormatAmount(minor, 2) + " CNY" }
