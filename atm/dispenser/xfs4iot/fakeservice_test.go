package xfs4iot_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/xfs4iot"
)

// fakeService is a scripted XFS4IoT endpoint: for each command name it
// answers with the given messages ({{id}} is replaced by the command's
// request ID). It records the commands it received, in order, and fails
// the test on a command it has no script for.
type fakeService struct {
	t       *testing.T
	srv     *httptest.Server
	scripts map[string]map[string][]string // path -> command -> answers
	// respond, when set, answers a command from its payload first (ok
	// false: use the script).
	respond func(name string, payload json.RawMessage) (answers []string, ok bool)
	mu      sync.Mutex
	got     []string // "path command"
}

func newFakeService(t *testing.T, scripts map[string]map[string][]string) *fakeService {
	f := &fakeService{t: t, scripts: scripts}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeService) url(path string) string {
	return "ws" + strings.TrimPrefix(f.srv.URL, "http") + path
}

func (f *fakeService) serve(w http.ResponseWriter, r *http.Request) {
	script, ok := f.scripts[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ctx := r.Context()
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return
		}
		var m struct {
			Header struct {
				Name      string `json:"name"`
				RequestID int64  `json:"requestId"`
				Type      string `json:"type"`
				Version   string `json:"version"`
			} `json:"header"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(b, &m); err != nil || m.Header.Type != "command" || m.Header.Version != "2.0" || m.Header.RequestID <= 0 {
			f.t.Errorf("client sent a bad command: %s", b)
			return
		}
		f.mu.Lock()
		f.got = append(f.got, r.URL.Path+" "+m.Header.Name)
		f.mu.Unlock()
		answers, ok := script[m.Header.Name]
		if f.respond != nil {
			if a, dyn := f.respond(m.Header.Name, m.Payload); dyn {
				answers, ok = a, true
			}
		}
		if !ok {
			f.t.Errorf("unexpected command %s on %s", m.Header.Name, r.URL.Path)
			return
		}
		for _, a := range answers {
			a = strings.ReplaceAll(a, "{{id}}", fmt.Sprint(m.Header.RequestID))
			a = strings.ReplaceAll(a, "{{base}}", f.url(""))
			if err := ws.Write(ctx, websocket.MessageText, []byte(a)); err != nil {
				return
			}
		}
	}
}

func (f *fakeService) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

func ack(name string) string {
	return `{"header":{"name":"` + name + `","requestId":{{id}},"type":"acknowledge","version":"2.0"},"payload":null}`
}

func done(name, code, payload string) string {
	return `{"header":{"name":"` + name + `","requestId":{{id}},"type":"completion","version":"2.0","completionCode":"` + code + `"},"payload":` + payload + `}`
}

const (
	publisherPath = "/xfs4iot/v1.0"
	cashCaps      = `{"common":{"endToEndSecurity":{"required":"always","responseSecurityEnabled":"always"}},"cashDispenser":{"type":"selfServiceBill","maxDispenseItems":30}}`
	storage       = `{"storage":{"unit1":{"id":"CST1","status":"ok","cash":{"configuration":{"currency":"CNY","value":100.00},"status":{"initial":{"unrecognized":0,"typeCNY100":{"fit":10}},"out":{"presented":{"typeCNY100":{"fit":3}},"rejected":{},"stacked":{}},"accuracy":"accurate","replenishmentStatus":"ok"}}}}}`
)

func services(paths ...string) string {
	var s []string
	for _, p := range paths {
		s = append(s, `{"serviceURI":"{{base}}`+publisherPath+p+`"}`)
	}
	return `{"vendorName":"fake","services":[` + strings.Join(s, ",") + `]}`
}

func newDriver(t *testing.T, f *fakeService) *xfs4iot.Driver {
	t.Helper()
	d, err := xfs4iot.New(xfs4iot.Config{Publisher: f.url(publisherPath), Exponent: 2, CommandTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// TestDiscoveryPicksTheCashDispenser: the publisher lists a printer first;
// the driver asks each service what it is and opens the cash dispenser.
func TestDiscoveryPicksTheCashDispenser(t *testing.T) {
	f := newFakeService(t, map[string]map[string][]string{
		publisherPath:               {"ServicePublisher.GetServices": {ack("ServicePublisher.GetServices"), done("ServicePublisher.GetServices", "success", services("/Printer1", "/CashDispenser1"))}},
		publisherPath + "/Printer1": {"Common.Capabilities": {ack("Common.Capabilities"), done("Common.Capabilities", "success", `{"common":{},"printer":{"type":"receipt"}}`)}},
		publisherPath + "/CashDispenser1": {
			"Common.Capabilities": {ack("Common.Capabilities"), done("Common.Capabilities", "success", cashCaps)},
			"Common.Status":       {ack("Common.Status"), done("Common.Status", "success", `{"common":{"device":"online"}}`)},
			"Storage.GetStorage":  {ack("Storage.GetStorage"), done("Storage.GetStorage", "success", storage)},
		},
	})
	d := newDriver(t, f)
	st, err := d.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := dispenser.Status{Device: dispenser.StateOnline, MaxNotes: 30, Units: []dispenser.CashUnit{{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 7, Status: dispenser.UnitOK}}}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("status %+v, want %+v", st, want)
	}
	wantCmds := []string{publisherPath + " ServicePublisher.GetServices", publisherPath + "/Printer1 Common.Capabilities",
		publisherPath + "/CashDispenser1 Common.Capabilities", publisherPath + "/CashDispenser1 Common.Status", publisherPath + "/CashDispenser1 Storage.GetStorage"}
	if got := f.commands(); strings.Join(got, "\n") != strings.Join(wantCmds, "\n") {
		t.Fatalf("commands\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantCmds, "\n"))
	}
}

// TestProtocolViolations: a service that breaks the message sequence is
// not trusted: the command fails and the connection is dropped.
func TestProtocolViolations(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []string
		want    error
	}{
		{"completion before acknowledge", []string{done("Common.Status", "success", `{"common":{"device":"online"}}`)}, dispenser.ErrDeviceNotReady},
		{"answer for another request", []string{strings.Replace(ack("Common.Status"), "{{id}}", "999", 1)}, dispenser.ErrDeviceNotReady},
		{"answer under another name", []string{ack("Common.Capabilities")}, dispenser.ErrDeviceNotReady},
		{"not JSON", []string{`hello`}, dispenser.ErrDeviceNotReady},
		{"refused", []string{`{"header":{"name":"Common.Status","requestId":{{id}},"type":"acknowledge","version":"2.0","status":"tooManyRequests"},"payload":null}`}, dispenser.ErrDeviceNotReady},
		{"failed", []string{ack("Common.Status"), done("Common.Status", "internalError", "null")}, dispenser.ErrDeviceNotReady},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeService(t, map[string]map[string][]string{
				publisherPath: {"ServicePublisher.GetServices": {ack("ServicePublisher.GetServices"), done("ServicePublisher.GetServices", "success", services("/CashDispenser1"))}},
				publisherPath + "/CashDispenser1": {
					"Common.Capabilities": {ack("Common.Capabilities"), done("Common.Capabilities", "success", cashCaps)},
					"Common.Status":       tc.answers,
				},
			})
			d := newDriver(t, f)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := d.Status(ctx); !errors.Is(err, tc.want) {
				t.Fatalf("Status: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestTLSWithCAFile: a wss:// service whose certificate the configured CA
// file vouches for is used; without the CA file the driver refuses it.
func TestTLSWithCAFile(t *testing.T) {
	f := &fakeService{t: t, scripts: map[string]map[string][]string{
		publisherPath: {"ServicePublisher.GetServices": {ack("ServicePublisher.GetServices"), done("ServicePublisher.GetServices", "success", services("/CashDispenser1"))}},
		publisherPath + "/CashDispenser1": {
			"Common.Capabilities": {ack("Common.Capabilities"), done("Common.Capabilities", "success", cashCaps)},
			"Common.Status":       {ack("Common.Status"), done("Common.Status", "success", `{"common":{"device":"online"}}`)},
			"Storage.GetStorage":  {ack("Storage.GetStorage"), done("Storage.GetStorage", "success", storage)},
		},
	}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	publisher := f.url(publisherPath) // wss://127.0.0.1:PORT/...
	if !strings.HasPrefix(publisher, "wss://") {
		t.Fatalf("publisher %s", publisher)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	untrusted, err := xfs4iot.New(xfs4iot.Config{Publisher: publisher, Exponent: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer untrusted.Close()
	if _, err := untrusted.Status(ctx); !errors.Is(err, dispenser.ErrDeviceNotReady) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Status without the CA: %v, want a certificate error", err)
	}
	if got := f.commands(); len(got) != 0 {
		t.Fatalf("commands reached an untrusted service: %q", got)
	}

	d, err := xfs4iot.New(xfs4iot.Config{Publisher: publisher, CAFile: caFile, Exponent: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st, err := d.Status(ctx)
	if err != nil || st.Device != dispenser.StateOnline || len(st.Units) != 1 {
		t.Fatalf("Status over wss with the CA: %+v, %v", st, err)
	}
}
