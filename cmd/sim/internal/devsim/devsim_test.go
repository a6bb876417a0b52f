package devsim

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestRunOnce is a smoke test of `make sim --once`: it builds the four
// programs, writes the shipped configurations with free loopback ports and
// paths under a temporary directory, and runs the demo: host, proxy and
// ATM as real processes, one withdrawal through the phone simulator
// reading the QR from the screen's pixels, the advice acknowledged and the
// journal verified.
func TestRunOnce(t *testing.T) { runOnce(t, "sim") }

// TestRunOnceXFS4IoT is `make sim DISPENSER=xfs4iot --once`: the ATM drives
// the XFS4IoT device simulator, a process of its own, over a WebSocket.
func TestRunOnceXFS4IoT(t *testing.T) { runOnce(t, "xfs4iot") }

// TestRunOnceLCDM is `make sim DISPENSER=lcdm --once`: the ATM drives the
// LCDM simulator through a real pseudo-terminal.
func TestRunOnceLCDM(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the LCDM simulator needs a Unix pseudo-terminal")
	}
	runOnce(t, "lcdm")
}

// runOnce runs the demo once with the dispenser disp and returns its
// narration and the options it ran with; edit, if given, changes the
// options first.
func runOnce(t *testing.T, disp string, edit ...func(*Options)) (string, Options) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs every program")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "../../../atm", "../../../hostsim", "../../../proxysim", "../../../phonesim", "../../../xfs4iotsim", "../../../lcdmsim")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	o := Defaults()
	o.Bin, o.Configs, o.Var = bin, filepath.Join(dir, "configs"), filepath.Join(dir, "var")
	o.HostAddr, o.ProxyATM, o.ProxyPhone, o.ProxyStatus, o.Control = freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	o.BindAddr = freeAddr(t)
	o.Dispenser, o.DeviceAddr = disp, freeAddr(t)
	o.Once = true
	var out bytes.Buffer
	o.Out = &out
	for _, e := range edit {
		e(&o)
	}
	writeConfigs(t, o)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := Run(ctx, o); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	// The narration names each step once, in order.
	var steps []string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "[") {
			steps = append(steps, line[:5])
		}
	}
	if got, want := strings.Join(steps, " "), "[1/7] [2/7] [3/7] [4/7] [5/7] [6/7] [7/7]"; got != want {
		t.Fatalf("steps %q, want %q\n%s", got, want, out.String())
	}
	// Every process was stopped: the ports are free again.
	if err := portsFree(o.HostAddr, o.BindAddr, o.ProxyATM, o.ProxyPhone, o.Control, o.DeviceAddr); err != nil {
		t.Fatalf("after Run: %v", err)
	}
	log, _ := os.ReadFile(filepath.Join(o.Var, "logs", "atm.log"))
	want := map[string][2]string{"xfs4iot": {"started xfs4iotsim", `"msg":"xfs4iot cash dispenser connected"`},
		"lcdm": {"started lcdmsim", `"msg":"dispenser driver lcdm: the end-to-end token is checked by this PC`}}
	if w, ok := want[disp]; ok && (!strings.Contains(out.String(), w[0]) || !strings.Contains(string(log), w[1])) {
		t.Fatalf("the ATM did not drive the %s simulator:\n%s\n%s", disp, out.String(), log)
	}
	return out.String(), o
}

// TestRunReportsADeadProcess: an ATM that cannot start (its configuration
// names an unknown dispenser driver) ends the wait at once with its last
// log line, not after the 45 s timeout.
func TestRunReportsADeadProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every program")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "../../../atm", "../../../hostsim", "../../../proxysim")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	o := Defaults()
	o.Bin, o.Configs, o.Var = bin, filepath.Join(dir, "configs"), filepath.Join(dir, "var")
	o.HostAddr, o.ProxyATM, o.ProxyPhone, o.ProxyStatus, o.Control = freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	o.BindAddr = freeAddr(t)
	o.Once, o.Out = true, &bytes.Buffer{}
	writeConfigs(t, o, func(atm map[string]any) { atm["dispenser"].(map[string]any)["driver"] = "no-such-driver" })
	err := Run(context.Background(), o)
	want := `the ATM did not come into service: atm exited (exit status 2); last log line: ` +
		filepath.Join(o.Configs, "atm.json") + `: config: dispenser.driver: "no-such-driver" is not a known driver (known: sim, xfs4iot, lcdm) (full log ` + filepath.Join(o.Var, "logs", "atm.log") + ")"
	if err == nil || err.Error() != want {
		t.Fatalf("Run: %v\nwant %s", err, want)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeConfigs writes the shipped configurations (configs/) into
// o.Configs with o's addresses and every path under o.Var; edit, if
// given, changes the ATM's.
func writeConfigs(t *testing.T, o Options, edit ...func(map[string]any)) {
	t.Helper()
	if err := os.MkdirAll(o.Configs, 0o755); err != nil {
		t.Fatal(err)
	}
	rewrite := func(name string, change func(map[string]any)) {
		b, err := os.ReadFile(filepath.Join("../../../../configs", name))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		change(m)
		if b, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(o.Configs, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rewrite("atm.json", func(m map[string]any) {
		m["dataDir"] = filepath.Join(o.Var, "atm")
		m["screen"].(map[string]any)["png"] = filepath.Join(o.Var, "atm", "screen.png")
		m["proxy"].(map[string]any)["addr"] = o.ProxyATM
		m["host"].(map[string]any)["addr"] = o.HostAddr
		m["control"].(map[string]any)["addr"] = o.Control
		for _, e := range edit {
			e(m)
		}
	})
	rewrite("hostsim.json", func(m map[string]any) { m["dbPath"] = filepath.Join(o.Var, "hostsim.db") })
	rewrite("proxysim.json", func(m map[string]any) { m["atmListen"], m["phoneListen"] = o.ProxyATM, o.ProxyPhone })
	rewrite("phonesim.json", func(m map[string]any) { m["proxy"] = o.ProxyPhone })
}
