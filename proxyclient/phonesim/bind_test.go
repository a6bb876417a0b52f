package phonesim_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardless-atm/cardless/atm/host/bindapi"
	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
)

// bindHost starts the host simulator of the shipped configuration on a
// fresh database with its bind endpoint, and returns it with the phone
// configuration of a new phone that talks to it.
func bindHost(t *testing.T) (*hostsim.Server, phonesim.Config) {
	t.Helper()
	hcfg, err := hostsim.LoadConfig("../../configs/hostsim.json")
	if err != nil {
		t.Fatal(err)
	}
	hcfg.DBPath = filepath.Join(t.TempDir(), "host.db")
	h, err := hostsim.NewServer(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.StartBind("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	cfg, err := phonesim.LoadConfig("../../configs/phonesim.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg.BindURL = "http://" + h.BindAddr()
	if cfg.DeviceID, err = wire.NewDeviceID(); err != nil {
		t.Fatal(err)
	}
	return h, cfg
}

// Bind with the code read from the simulated SMS inbox binds the new
// phone; binding it again sends nothing.
func TestBind(t *testing.T) {
	h, cfg := bindHost(t)
	ctx := context.Background()
	var sent bindapi.Answer
	a, err := phonesim.Bind(ctx, cfg, "13800000002", "654321", func(ctx context.Context, a bindapi.Answer) (string, error) {
		sent = a
		return phonesim.ReadSMSCode(ctx, cfg, "13800000002")
	})
	if err != nil || a.Result != bindapi.Bound {
		t.Fatalf("Bind = %+v, %v", a, err)
	}
	if sent.Result != bindapi.CodeSent || sent.SentTo != "*******0002" || sent.TriesLeft != 3 {
		t.Fatalf("start answered %+v", sent)
	}
	if ok, err := h.Bound("13800000002", cfg.DeviceID); err != nil || !ok {
		t.Fatalf("host: bound %v, %v", ok, err)
	}
	a, err = phonesim.Bind(ctx, cfg, "13800000002", "654321", func(context.Context, bindapi.Answer) (string, error) {
		t.Fatal("a code was asked for a bound phone")
		return "", nil
	})
	if err != nil || a.Result != bindapi.AlreadyBound {
		t.Fatalf("second Bind = %+v, %v", a, err)
	}
	if n := len(h.SMS("13800000002")); n != 1 {
		t.Fatalf("%d SMS, want 1", n)
	}
}

// The bank's refusals come back as answers, not errors.
func TestBindRefusals(t *testing.T) {
	_, cfg := bindHost(t)
	ctx := context.Background()
	a, err := phonesim.BindStart(ctx, cfg, "13800000001", "000000")
	if err != nil || a.Result != bindapi.Refused || a.ResponseCode != "55" || a.Meaning != wire.ResponseText("55") {
		t.Fatalf("wrong PIN: %+v, %v", a, err)
	}
	a, err = phonesim.BindConfirm(ctx, cfg, "13800000001", "123456")
	if err != nil || a.Result != bindapi.NoCode {
		t.Fatalf("confirm without a code: %+v, %v", a, err)
	}
	if _, err := phonesim.BindStart(ctx, cfg, "13800000001", "123456"); err != nil {
		t.Fatal(err)
	}
	code, err := phonesim.ReadSMSCode(ctx, cfg, "13800000001")
	if err != nil {
		t.Fatal(err)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	a, err = phonesim.BindConfirm(ctx, cfg, "13800000001", wrong)
	if err != nil || a.Result != bindapi.WrongCode || a.TriesLeft != 2 {
		t.Fatalf("wrong code: %+v, %v", a, err)
	}
	// Bad input never leaves the phone.
	bad := cfg
	bad.DeviceID = strings.ToLower(cfg.DeviceID)
	if _, err := phonesim.BindStart(ctx, bad, "13800000001", "123456"); err == nil {
		t.Fatal("lower-case device ID sent")
	}
	if _, err := phonesim.BindConfirm(ctx, cfg, "13800000001", "12345"); err == nil {
		t.Fatal("5-digit code sent")
	}
	bad = cfg
	bad.BindURL = "http://bank.example:6101"
	if _, err := phonesim.BindStart(ctx, bad, "13800000001", "123456"); !errors.Is(err, phonesim.ErrBind) {
		t.Fatalf("plain http to a remote bank: %v, want ErrBind", err)
	}
}

// An answer whose result does not go with its HTTP status, or that is no
// answer at all, is an error.
func TestBindBadAnswers(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
	}{
		{http.StatusOK, `{"result":"wrong_code","triesLeft":2}`},
		{http.StatusForbidden, `{"result":"bound"}`},
		{http.StatusOK, `{"result":"maybe"}`},
		{http.StatusOK, `<html>`},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			_, _ = w.Write([]byte(tc.body))
		}))
		cfg := phonesim.Config{BindURL: srv.URL, DeviceID: "A5DF01FC21E4290E59699A870ABD8CEF"}
		if a, err := phonesim.BindConfirm(context.Background(), cfg, "13800000001", "123456"); !errors.Is(err, phonesim.ErrBind) {
			t.Errorf("HTTP %d %s: %+v, %v; want ErrBind", tc.status, tc.body, a, err)
		}
		srv.Close()
	}
}
