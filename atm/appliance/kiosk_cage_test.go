//go:build linux

package appliance_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
	"github.com/cardless-atm/cardless/ui"
)

// cageOutput is the screen of cage's headless backend: wlroots creates its
// headless outputs at 1280x720.
var cageOutput = image.Pt(1280, 720)

// kioskWait bounds each wait of TestKioskUnderCage: for the appliance to
// be in service, for the welcome screen, for the kiosk to stop. Real
// time: each takes a few seconds at most.
const kioskWait = 45 * time.Second

// TestKioskUnderCage starts the appliance as the kiosk does: the real
// binary in kiosk mode with the shipped production configuration template
// (configs/atm.production.json: the key store, the XFS4IoT dispenser, no
// customer input), started by configs/kiosk-cage.sh under the cage
// compositor, as an unprivileged user. cage runs on its headless backend
// (no display, no GPU needed), the host, the proxy and the dispenser are
// the simulators. Each case waits until the appliance is in service, then
// takes screenshots with grim (the wlroots screen capture) until one equals,
// pixel for pixel, the welcome screen that ui.Renderer draws offscreen for
// the same configuration and store at the same size, and checks the
// appliance's one "renderer" log line. The cases:
//
//   - software: cage's pixman renderer and Mesa's llvmpipe, forced
//     (WLR_RENDERER=pixman, LIBGL_ALWAYS_SOFTWARE=1): the configuration of
//     issue 12, where the appliance exited with "vkCreateInstance: error
//     -9" (Gio's kiosk window had no size under cage -d);
//   - automatic: nothing set; without a GPU render node both fall back to
//     software by themselves, and the log says why;
//   - cage without -d (client-side decorations allowed): there the same
//     missing size made Gio panic on the first configure ("internal error:
//     zero-sized Draw");
//   - no EGL driver (Mesa's DRI drivers not found, no Vulkan driver): the
//     start fails and the error names EGL's failure, not only Vulkan's.
//
// cage's output is turned 180 degrees (cage -r -r, CAGE_OPTIONS): cage
// 0.1.4 (Debian 12) scans a full-screen client's buffer out directly on the
// headless backend, and its damage tracking then hands screen captures a
// stale frame (the window's first one, before its resize to the output's
// size). On a turned output cage composites every frame, as it does on a
// real display with a software-rendered (shared memory) buffer, which
// cannot be scanned out. The screenshot comes out upright.
func TestKioskUnderCage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the appliance and runs it under cage")
	}
	if _, err := exec.LookPath("cage"); err != nil {
		t.Skip("cage is not installed (make deps installs it with xwayland and grim): the kiosk under cage is not tested")
	}
	for _, tool := range []string{"grim", "Xwayland"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make deps installs it): %v", tool, err)
		}
	}
	k := newKioskRig(t)
	gpu := k.gpuRenderNode()

	type renderer struct{ kind, why string }
	auto := renderer{"software", "EGL found no GPU driver for this display"}
	if gpu != "" {
		auto = renderer{kind: "gpu"}
	}
	for _, tc := range []struct {
		name      string
		viaScript bool     // through configs/kiosk-cage.sh (cage -d), else cage without -d
		env       []string // added to the kiosk's environment
		renderer  renderer
		failure   string // the appliance's "window" error; "": it shows the welcome screen
	}{
		{name: "software", viaScript: true, env: []string{"WLR_RENDERER=pixman", "LIBGL_ALWAYS_SOFTWARE=1"},
			renderer: renderer{"software", "LIBGL_ALWAYS_SOFTWARE=1"}},
		{name: "automatic", viaScript: true, renderer: auto},
		{name: "cage-without-d", env: []string{"WLR_RENDERER=pixman", "LIBGL_ALWAYS_SOFTWARE=1"},
			renderer: renderer{"software", "LIBGL_ALWAYS_SOFTWARE=1"}},
		{name: "no-EGL-driver", viaScript: true,
			env: []string{"WLR_RENDERER=pixman", "LIBGL_DRIVERS_PATH=/nonexistent", "VK_ICD_FILENAMES=/nonexistent/icd.json", "VK_DRIVER_FILES=/nonexistent/icd.json"},
			failure: "ui: no usable renderer: OpenGL ES (EGL): on wayland: eglInitialize failed: EGL_NOT_INITIALIZED (0x3001): " +
				"no EGL driver could open the display, not even the software one (are libegl-mesa0 and libgl1-mesa-dri installed, and LIBGL_DRIVERS_PATH unset?); " +
				"then Vulkan: vulkan: vkCreateInstance: error -9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := k.start(t, tc.name, tc.viaScript, tc.env)
			if tc.failure != "" {
				select {
				case <-p.exited:
				case <-time.After(kioskWait):
					t.Fatalf("the kiosk did not stop within %v after a start that cannot draw\n%s", kioskWait, p.tail())
				}
				lines := p.logLines(t)
				if got := logAttr(lines, "window", "err"); got != tc.failure {
					t.Fatalf("window error\n got %q\nwant %q\n%s", got, tc.failure, p.tail())
				}
				if got := logAttr(lines, "renderer", "level"); got != "ERROR" {
					t.Fatalf("renderer line at level %q, want ERROR\n%s", got, p.tail())
				}
				return
			}
			defer p.stop(t)
			p.waitInService(t, k.cfg.Control.Addr)
			got := p.waitLog(t, "renderer")
			if len(got) != 1 {
				t.Fatalf("%d renderer lines, want 1\n%s", len(got), p.tail())
			}
			r := got[0]
			if r["level"] != "INFO" || r["kind"] != tc.renderer.kind || r["api"] != "OpenGL ES (EGL)" || r["window"] != "wayland" {
				t.Fatalf("renderer line %v, want kind %s, OpenGL ES (EGL) on wayland", r, tc.renderer.kind)
			}
			why, _ := r["why"].(string)
			if why != tc.renderer.why {
				t.Fatalf("renderer why %q, want %q", why, tc.renderer.why)
			}
			glr, _ := r["gl_renderer"].(string)
			if tc.renderer.kind == "software" && !strings.HasPrefix(glr, "llvmpipe (") {
				t.Fatalf("software renderer %q, want Mesa's llvmpipe", glr)
			}
			want := k.reference[tc.renderer.kind]
			if want == nil {
				t.Fatalf("no %s reference rendering (render node %q)", tc.renderer.kind, gpu)
			}
			p.waitScreen(t, want)
		})
	}
}

// kioskRig is what every case shares: the simulators, the appliance binary,
// the key store and the store (made once, as by the key ceremony and the
// first start with --new-store), the configuration, and the reference
// renderings of the welcome screen.
type kioskRig struct {
	dir       string // readable by the kiosk's user
	bin       string
	script    string // a copy of configs/kiosk-cage.sh
	cfg       *appliance.Config
	cfgPath   string
	uid, gid  int                    // the kiosk's user; -1: the test's own
	reference map[string]*image.RGBA // by renderer kind: "software", "gpu"
}

func newKioskRig(t *testing.T) *kioskRig {
	t.Helper()
	k := &kioskRig{uid: -1, gid: -1, reference: map[string]*image.RGBA{}}
	if os.Geteuid() == 0 {
		// cage refuses to run as root.
		k.uid, k.gid = 65534, 65534
		if u, err := user.Lookup("nobody"); err == nil {
			k.uid, _ = strconv.Atoi(u.Uid)
			k.gid, _ = strconv.Atoi(u.Gid)
		}
		for _, tool := range []string{"unshare", "setpriv"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Fatalf("%s (util-linux) is needed to run cage as an unprivileged user: %v", tool, err)
			}
		}
	}
	// Not t.TempDir: its parents are not open to the kiosk's user.
	dir, err := os.MkdirTemp("", "kiosk-cage-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	k.dir = dir
	k.bin = filepath.Join(dir, "atm")
	if out, err := exec.Command("go", "build", "-o", k.bin, "../../cmd/atm").CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/atm: %v\n%s", err, out)
	}
	script, err := os.ReadFile("../../configs/kiosk-cage.sh")
	if err != nil {
		t.Fatal(err)
	}
	k.script = filepath.Join(dir, "kiosk-cage.sh")
	if err := os.WriteFile(k.script, script, 0o755); err != nil {
		t.Fatal(err)
	}

	hcfg, err := hostsim.LoadConfig("../../configs/hostsim.json")
	if err != nil {
		t.Fatal(err)
	}
	hcfg.DBPath = filepath.Join(t.TempDir(), "host.db")
	hcfg.Logger = slog.New(slog.DiscardHandler)
	host, err := hostsim.NewServer(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	pcfg, _, _, err := proxysim.LoadConfig("../../configs/proxysim.json")
	if err != nil {
		t.Fatal(err)
	}
	pcfg.Logger = slog.New(slog.DiscardHandler)
	proxy, err := proxysim.Start(pcfg, "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)

	// The laptop configuration's keys and cassettes, for the key ceremony
	// and the dispenser simulator.
	dev, err := appliance.Load("../../configs/atm.json")
	if err != nil {
		t.Fatal(err)
	}
	etc := filepath.Join(dir, "etc")
	data := filepath.Join(dir, "data")
	for _, d := range []string{etc, data} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	startXFS4IoTSim(t, dev, etc, nil)

	cfg, err := appliance.Load("../../configs/atm.production.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = data
	cfg.Keys.Store = filepath.Join(data, "keys.enc")
	cfg.Keys.StorageKeyFile = filepath.Join(etc, "storage.key")
	cfg.Journal.ExportDir = filepath.Join(data, "journal-export")
	cfg.Proxy.Addr, cfg.Host.Addr = proxy.ATMAddr(), host.Addr()
	cfg.Dispenser = dev.Dispenser
	cfg.Control.Addr = freeAddr(t)
	keyCeremony(t, cfg.Keys, dev.Keys.Dev)
	k.cfg = cfg
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k.cfgPath = filepath.Join(dir, "atm.json")
	if err := os.WriteFile(k.cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}

	// The reference: the same configuration and store, in this process,
	// drawn offscreen. Its first start creates the store (--new-store).
	k.renderReference(t, "software")
	if k.gpuRenderNode() != "" {
		k.renderReference(t, "gpu")
	}
	if k.uid >= 0 {
		err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, k.uid, k.gid)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// keyCeremony loads the terminal's keys into a new key store, as atmctl key
// load-tmk does.
func keyCeremony(t *testing.T, keys appliance.Keys, dev *appliance.DevKeys) {
	t.Helper()
	if err := hsm.NewStorageKeyFile(keys.StorageKeyFile); err != nil {
		t.Fatal(err)
	}
	sk, err := hsm.ReadStorageKeyFile(keys.StorageKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := hsm.OpenStore(keys.Store, sk)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, h := range map[hsm.KeyName]string{hsm.TMK: dev.TMK, hsm.HostMAC: dev.HostMAC, hsm.HostData: dev.HostData} {
		key, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ImportClearKey(name, key); err != nil {
			t.Fatal(err)
		}
	}
}

// renderReference starts the appliance in this process with k's
// configuration, waits until it is in service and draws its screen
// offscreen at cage's output size, through Mesa's software rasterizer
// (kind "software") or the GPU ("gpu").
func (k *kioskRig) renderReference(t *testing.T, kind string) {
	t.Helper()
	t.Setenv("EGL_PLATFORM", "surfaceless")
	if kind == "software" {
		t.Setenv("LIBGL_ALWAYS_SOFTWARE", "1")
	} else {
		t.Setenv("LIBGL_ALWAYS_SOFTWARE", "")
	}
	cfg := *k.cfg
	cfg.Screen = appliance.Screen{Mode: "window"} // no headless screen writer of its own
	cfg.Control.Addr = ""
	cfg.NewStore = true
	a, err := appliance.New(&cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		a.Close()
	}()
	deadline := time.Now().Add(kioskWait)
	for st := a.Status(); !(st.InService && st.ProxyUp && st.HostUp); st = a.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("the reference appliance is not in service: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r, err := ui.NewRenderer(a.Backend, cageOutput, a.Clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	img, err := r.Render(ui.State{})
	if err != nil {
		t.Fatal(err)
	}
	k.reference[kind] = img
}

// gpuRenderNode returns a GPU render node that the kiosk's user may open,
// or "".
func (k *kioskRig) gpuRenderNode() string {
	nodes, _ := filepath.Glob("/dev/dri/renderD*")
	for _, n := range nodes {
		if k.uid < 0 {
			if f, err := os.OpenFile(n, os.O_RDWR, 0); err == nil {
				f.Close()
				return n
			}
			continue
		}
		fi, err := os.Stat(n)
		if err != nil {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		perm := fi.Mode().Perm()
		if perm&0o006 == 0o006 || ok && (int(st.Uid) == k.uid && perm&0o600 == 0o600 || int(st.Gid) == k.gid && perm&0o060 == 0o060) {
			return n
		}
	}
	return ""
}

// kioskProc is one start of the kiosk: cage and the appliance in it.
type kioskProc struct {
	cmd     *exec.Cmd
	logPath string
	runtime string // XDG_RUNTIME_DIR: cage's Wayland socket
	shot    string
	exited  chan struct{}
}

// start runs the kiosk: configs/kiosk-cage.sh (cage -d) when viaScript, else
// cage without -d, with the appliance in kiosk mode, as k's user, in a
// process group of its own. As root it runs in a mount namespace with a
// /tmp/.X11-unix of its own: cage's Xwayland refuses one that belongs to
// another user, and this machine's may.
func (k *kioskRig) start(t *testing.T, name string, viaScript bool, extra []string) *kioskProc {
	t.Helper()
	p := &kioskProc{
		logPath: filepath.Join(k.dir, name+".log"),
		runtime: filepath.Join(k.dir, "run-"+name),
		shot:    filepath.Join(k.dir, name+".png"),
		exited:  make(chan struct{}),
	}
	if err := os.Mkdir(p.runtime, 0o700); err != nil {
		t.Fatal(err)
	}
	if k.uid >= 0 {
		if err := os.Chown(p.runtime, k.uid, k.gid); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + p.runtime,
		"XDG_RUNTIME_DIR=" + p.runtime,
		"WLR_BACKENDS=headless",
		"WLR_LIBINPUT_NO_DEVICES=1",
		"ATM_BIN=" + k.bin,
		"ATM_CONFIG=" + k.cfgPath,
		"CAGE_OPTIONS=-r -r",
	}
	env = append(env, extra...)
	argv := []string{"sh", k.script}
	if !viaScript {
		argv = []string{"cage", "-r", "-r", "--", k.bin, "-config", k.cfgPath, "-kiosk"}
	}
	var cmd *exec.Cmd
	if k.uid >= 0 {
		args := []string{"--mount", "sh", "-c",
			`mkdir -p -m 1777 /tmp/.X11-unix && mount -t tmpfs -o mode=1777 tmpfs /tmp/.X11-unix && exec "$@"`, "sh",
			"setpriv", "--reuid=" + strconv.Itoa(k.uid), "--regid=" + strconv.Itoa(k.gid), "--clear-groups", "--",
			"env", "-i"}
		args = append(append(args, env...), argv...)
		cmd = exec.Command("unshare", args...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	} else {
		cmd = exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
	}
	f, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.kill(t) })
	return p
}

// stop ends the kiosk as systemd does (SIGTERM to every process of it),
// kills what is left after kioskWait, and returns once no process of it is
// left: the next start needs its control port and its stores.
func (p *kioskProc) stop(t *testing.T) {
	t.Helper()
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(kioskWait)
	for groupAlive(pgid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if groupAlive(pgid) {
		t.Errorf("the kiosk did not stop within %v of SIGTERM\n%s", kioskWait, p.tail())
	}
	p.kill(t)
}

// kill ends every process of the kiosk at once and waits until none is left.
func (p *kioskProc) kill(t *testing.T) {
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.exited
	deadline := time.Now().Add(kioskWait)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			t.Errorf("processes of group %d still run after SIGKILL", pgid)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupAlive tells whether a process of group pgid runs (zombies, which
// hold nothing, do not count).
func groupAlive(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// waitInService waits until the appliance's control endpoint says it is in
// service; a kiosk that exits before is a failure, with its log.
func (p *kioskProc) waitInService(t *testing.T, control string) {
	t.Helper()
	deadline := time.Now().Add(kioskWait)
	var st appliance.Status
	var err error
	for {
		select {
		case <-p.exited:
			t.Fatalf("the kiosk exited before it was in service\n%s", p.tail())
		default:
		}
		if st, err = getStatus(control); err == nil && st.InService && st.ProxyUp && st.HostUp {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not in service within %v: %+v %v\n%s", kioskWait, st, err, p.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLog waits until the appliance has logged a line with message msg and
// returns every such line.
func (p *kioskProc) waitLog(t *testing.T, msg string) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(kioskWait)
	for {
		var found []map[string]any
		for _, l := range p.logLines(t) {
			if l["msg"] == msg {
				found = append(found, l)
			}
		}
		if len(found) > 0 {
			return found
		}
		select {
		case <-p.exited:
			t.Fatalf("the kiosk exited before it logged %q\n%s", msg, p.tail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q line within %v\n%s", msg, kioskWait, p.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitScreen takes screenshots of cage's output until one equals want,
// pixel for pixel; the screenshot and want are kept in the test's artifact
// directory when none does.
func (p *kioskProc) waitScreen(t *testing.T, want *image.RGBA) {
	t.Helper()
	deadline := time.Now().Add(kioskWait)
	var last image.Image
	var diff int
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("the kiosk exited\n%s", p.tail())
		default:
		}
		if last, err = p.screenshot(); err == nil {
			if last.Bounds() != want.Bounds() {
				t.Fatalf("screenshot %v, want cage's headless output %v", last.Bounds(), want.Bounds())
			}
			if diff = pixelsDiffer(last, want); diff == 0 {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if last == nil {
		t.Fatalf("no screenshot: %v\n%s", err, p.tail())
	}
	dir := t.ArtifactDir()
	for name, img := range map[string]image.Image{"screenshot.png": last, "want.png": want} {
		f, err := os.Create(filepath.Join(dir, name))
		if err == nil {
			png.Encode(f, img)
			f.Close()
		}
	}
	t.Fatalf("within %v no screenshot showed the welcome screen: %d of %d pixels differ (images in %s, kept with go test -artifacts)\n%s",
		kioskWait, diff, want.Bounds().Dx()*want.Bounds().Dy(), dir, p.tail())
}

// screenshot captures cage's output with grim (wlr-screencopy).
func (p *kioskProc) screenshot() (image.Image, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "grim", p.shot)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+p.runtime, "WAYLAND_DISPLAY=wayland-0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("grim: %v: %s", err, out)
	}
	f, err := os.Open(p.shot)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return png.Decode(f)
}

// pixelsDiffer counts the pixels whose colour differs (8 bits a channel;
// both are opaque).
func pixelsDiffer(a image.Image, b *image.RGBA) int {
	n := 0
	r := b.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ar, ag, ab, _ := a.At(x, y).RGBA()
			c := b.RGBAAt(x, y)
			if uint8(ar>>8) != c.R || uint8(ag>>8) != c.G || uint8(ab>>8) != c.B {
				n++
			}
		}
	}
	return n
}

// logLines returns the appliance's JSON log lines (cage's own lines are
// not JSON).
func (p *kioskProc) logLines(t *testing.T) []map[string]any {
	t.Helper()
	f, err := os.Open(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l map[string]any
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// logAttr returns attribute attr of the first log line with message msg.
func logAttr(lines []map[string]any, msg, attr string) string {
	for _, l := range lines {
		if l["msg"] == msg {
			s, _ := l[attr].(string)
			return s
		}
	}
	return ""
}

// tail is the end of the kiosk's log, for failure messages.
func (p *kioskProc) tail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return "kiosk log (end):\n" + strings.Join(lines, "\n")
}
