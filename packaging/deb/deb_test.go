// Package deb_test builds the Debian package (make deb) and checks it:
// its files, its Depends line, its maintainer scripts, and lintian's
// verdict where lintian is installed.
package deb_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDebianPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the appliance")
	}
	for _, tool := range []string{"dpkg-deb", "dpkg-shlibdeps"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (make deps installs dpkg-dev)", tool)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-trimpath", "-buildmode=pie", "-ldflags=-s -w", "-o", bin+string(filepath.Separator), "../../cmd/atm", "../../cmd/atmctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command("./build.sh", "0.0.1", bin, filepath.Join(dir, "out")).CombinedOutput()
	if err != nil {
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	deb := strings.TrimSpace(string(out))

	info := run(t, "dpkg-deb", "-f", deb, "Package", "Version", "Depends")
	for _, want := range []string{"Package: cardless-atm", "Version: 0.0.1"} {
		if !strings.Contains(info, want+"\n") {
			t.Errorf("control lacks %q:\n%s", want, info)
		}
	}
	deps := map[string]bool{}
	for _, d := range strings.Split(strings.TrimPrefix(info[strings.Index(info, "Depends: "):], "Depends: "), ",") {
		deps[strings.Fields(d)[0]] = true
	}
	// What the appliance needs at run time, linked or not.
	for _, want := range []string{"libc6", "libegl1", "libwayland-client0", "libwayland-cursor0", "libwayland-egl1", "libx11-6",
		"libx11-xcb1", "libxcursor1", "libxfixes3", "libxkbcommon-x11-0", "libxkbcommon0",
		"libegl-mesa0", "libgl1-mesa-dri", "fonts-noto-cjk", "cage", "xwayland", "adduser"} {
		if !deps[want] {
			t.Errorf("Depends lacks %s", want)
		}
	}
	var files []string
	for _, l := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(l)
		if name := f[len(f)-1]; !strings.HasSuffix(name, "/") {
			files = append(files, f[0]+" "+name)
		}
	}
	want := []string{
		"-rw-r--r-- ./etc/cardless-atm/atm.json",
		"-rw-r--r-- ./lib/systemd/system/cardless-atm-alarm.service",
		"-rw-r--r-- ./lib/systemd/system/cardless-atm.service",
		"-rwxr-xr-x ./usr/bin/atm",
		"-rwxr-xr-x ./usr/bin/atmctl",
		"-rwxr-xr-x ./usr/lib/cardless-atm/kiosk-cage.sh",
		"-rw-r--r-- ./usr/share/doc/cardless-atm/changelog.gz",
		"-rw-r--r-- ./usr/share/doc/cardless-atm/copyright",
	}
	if !slices.Equal(files, want) {
		t.Errorf("files\n%s\nwant\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}
	ctl := filepath.Join(dir, "ctl")
	run(t, "dpkg-deb", "-e", deb, ctl)
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); string(b) != "/etc/cardless-atm/atm.json\n" {
		t.Errorf("conffiles %q", b)
	}
	post, _ := os.ReadFile(filepath.Join(ctl, "postinst"))
	for _, want := range []string{"adduser --system --group", `for g in video input render; do`, `getent group "$g"`} {
		if !strings.Contains(string(post), want) {
			t.Errorf("postinst lacks %q", want)
		}
	}
	if strings.Contains(string(post), "systemctl enable") && !strings.Contains(string(post), "echo") {
		t.Error("postinst enables the service before the key ceremony")
	}
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Log("lintian not installed: the package was not checked by it")
		return
	}
	// Errors fail; warnings (no manual pages) are listed.
	lint := exec.Command("lintian", "--fail-on", "error", deb)
	lout, err := lint.CombinedOutput()
	if err != nil {
		t.Fatalf("lintian: %v\n%s", err, lout)
	}
	t.Logf("lintian:\n%s", lout)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}
