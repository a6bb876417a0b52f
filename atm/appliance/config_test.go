package appliance

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/hsm"
)

func TestShippedConfigLoads(t *testing.T) {
	if _, err := Load("../../configs/atm.json"); err != nil {
		t.Fatal(err)
	}
}

func TestValidateNamesEveryBadValue(t *testing.T) {
	b, err := os.ReadFile("../../configs/atm.json")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, r := range [][2]string{
		{`"terminalId": "ATM00001"`, `"terminalId": "atm-1"`},
		{`"currency": "156"`, `"currency": "CNY"`},
		{`"sessionTtl": "120s"`, `"sessionTtl": "2s"`},
		{`"maxNotes": 40`, `"maxNotes": 0`},
		{`"mode": "headless"`, `"mode": "fancy"`},
		{`"addr": "127.0.0.1:6200"`, `"addr": "nowhere"`},
		{`"logLevel": "info"`, `"logLevel": "chatty"`},
		{`"journalMac": "f594`, `"journalMac": "zz94`},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("config lacks %s", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	_, err = Parse([]byte(s))
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, field := range []string{"terminalId", "currency:", "sessionTtl", "dispenser.sim.maxNotes", "screen.mode", "proxy.addr", "logLevel", "keys.development.journalMac"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s:\n%v", field, err)
		}
	}
	if _, err := Parse([]byte(`{"terminalId":"A","bogus":1}`)); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown field: %v", err)
	}
}

// A production key store: TMK and host keys from the ceremony, the QR key
// generated inside the module at first start and kept across restarts.
func TestProductionKeyStore(t *testing.T) {
	dir := t.TempDir()
	skf := dir + "/storage.key"
	if err := hsm.NewStorageKeyFile(skf); err != nil {
		t.Fatal(err)
	}
	sk, _ := hsm.ReadStorageKeyFile(skf)
	s, err := hsm.OpenStore(dir+"/keys.db", sk)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []hsm.KeyName{hsm.TMK, hsm.HostMAC, hsm.HostData} {
		if _, err := s.ImportClearKey(n, []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	keys := Keys{Store: dir + "/keys.db", StorageKeyFile: skf}
	m, err := openKeys(keys, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	kcv1, err := m.KCV(hsm.QRMAC)
	if err != nil {
		t.Fatal(err)
	}
	jmac1, err := JournalAuth(m).JournalMAC([]byte("head"))
	m.Close()
	if err != nil {
		t.Fatalf("journal key not generated: %v", err)
	}
	m, err = openKeys(keys, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	kcv2, _ := m.KCV(hsm.QRMAC)
	jmac2, _ := JournalAuth(m).JournalMAC([]byte("head"))
	m.Close() // the store is locked while open
	if kcv2 != kcv1 {
		t.Fatalf("QR key changed across restarts: %s then %s", kcv1, kcv2)
	}
	if !bytes.Equal(jmac1, jmac2) {
		t.Fatal("journal key changed across restarts")
	}
	// Without the host keys the appliance refuses to start, naming the key.
	os.Remove(dir + "/keys.db")
	if s, err = hsm.OpenStore(dir+"/keys.db", sk); err != nil {
		t.Fatal(err)
	}
	s.ImportClearKey(hsm.TMK, []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10})
	s.Close()
	if _, err := openKeys(keys, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "host.mac") {
		t.Fatalf("missing host key: %v", err)
	}
}

// Development keys: the journal key comes from keys.development.journalMac,
// and the appliance's store authenticates its journal with it, so a store
// checked with another key fails.
func TestDevJournalKey(t *testing.T) {
	cfg, err := Load("../../configs/atm.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := openKeys(cfg.Keys, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	key, _ := hex.DecodeString(cfg.Keys.Dev.JournalMAC)
	want := hmac.New(sha256.New, key)
	want.Write([]byte("head"))
	got, err := JournalAuth(m).JournalMAC([]byte("head"))
	if err != nil || !hmac.Equal(got, want.Sum(nil)) {
		t.Fatalf("journal MAC is not HMAC-SHA256 under keys.development.journalMac (%v)", err)
	}

	path := filepath.Join(t.TempDir(), "atm.db")
	db, err := store.Open(path, store.Options{JournalAuth: JournalAuth(m)})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *store.Tx) error { _, err := tx.AppendJournal(store.Entry{Kind: "NOTE"}); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	other := hsm.NewSoft()
	defer other.Close()
	if err := other.ImportClearHMACKey(hsm.JournalKey, bytes.Repeat([]byte{0x42}, 32)); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(path, store.Options{JournalAuth: JournalAuth(other)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.VerifyJournal(); !errors.Is(err, store.ErrJournalBroken) {
		t.Fatalf("journal verified under another key: %v", err)
	}

	// Without a journal key (and no key store) the appliance does not start.
	k := cfg.Keys
	dev := *k.Dev
	dev.JournalMAC = ""
	k.Dev = &dev
	if m, err := openKeys(k, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "journal.hmac") {
		if err == nil {
			m.Close()
		}
		t.Fatalf("missing journal key: %v", err)
	}
}

// The appliance verifies the journal before it starts, from its
// checkpoint: an entry edited in the file at or after the checkpoint stops
// New with ErrJournalBroken and leaves the file as it was; the untouched
// journal starts. (An entry before the checkpoint is found by the whole
// chain's verification in the background: journalcheck_test.go.)
func TestNewRefusesBrokenJournal(t *testing.T) {
	cfg, err := Load("../../configs/atm.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	cfg.Screen = Screen{Mode: "headless", PNG: filepath.Join(cfg.DataDir, "screen.png")}
	m, err := openKeys(cfg.Keys, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, "atm.db")
	db, err := store.Open(path, store.Options{JournalAuth: JournalAuth(m)})
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"first", "second"} {
		if err := db.Update(func(tx *store.Tx) error {
			_, err := tx.AppendJournal(store.Entry{Kind: "NOTE", Text: text})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	m.Close()

	a, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("untouched journal: %v", err)
	}
	a.Close()

	// Edit the last entry's text (the checkpoint New set) in the bbolt
	// file itself.
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("journal"))
		k, v := b.Cursor().Last()
		if k == nil || !bytes.Contains(v, []byte(`"second"`)) {
			return errors.New("last journal entry not found")
		}
		return b.Put(k, bytes.Replace(v, []byte(`"second"`), []byte(`"forged"`), 1))
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if a, err := New(cfg, slog.New(slog.DiscardHandler)); !errors.Is(err, store.ErrJournalBroken) {
		if a != nil {
			a.Close()
		}
		t.Fatalf("edited journal: New = %v, want ErrJournalBroken", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("New changed the store file of a broken journal")
	}
}

// TestConfigErrorsNameTheField: every bad value is reported with its
// field in the file's own spelling, bad durations all at once, syntax and
// type errors with their line and column.
func TestConfigErrorsNameTheField(t *testing.T) {
	good, err := os.ReadFile("../../configs/atm.json")
	if err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("%q not in configs/atm.json", old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"two bad durations", edit(`"takeTimeout": "30s"`, `"takeTimeout": "2 minutes"`),
			`config: takeTimeout: "2 minutes" is not a duration: write it like "30s", "2m" or "1m30s"`},
		{"port out of range", edit(`"addr": "127.0.0.1:6200"`, `"addr": "127.0.0.1:99999"`),
			`config: proxy.addr: "127.0.0.1:99999": the port must be a number from 1 to 65535`},
		{"number for terminalId", edit(`"terminalId": "ATM00001"`, `"terminalId": 1`),
			"config: line 3, column 18: terminalId: a JSON number where a string is expected"},
		{"syntax", edit(`"terminalId": "ATM00001",`, `"terminalId": "ATM00001"`),
			"config: line 4, column 3: JSON syntax: invalid character '\"' after object key:value pair"},
		{"truncated", good[:len(good)/2], "config: the file ends in the middle of the JSON (a missing } or ])"},
	} {
		_, err := Parse(tc.file)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v\nwant %s", tc.name, err, tc.want)
		}
	}
	// Both durations at once.
	two := bytes.Replace(edit(`"takeTimeout": "30s"`, `"takeTimeout": "2 minutes"`), []byte(`"sessionTtl": "120s"`), []byte(`"sessionTtl": 120`), 1)
	if _, err := Parse(two); err == nil || err.Error() != "config: sessionTtl: 120 is not a duration: write it like \"30s\", \"2m\" or \"1m30s\"\ntakeTimeout: \"2 minutes\" is not a duration: write it like \"30s\", \"2m\" or \"1m30s\"" {
		t.Errorf("two durations: %v", err)
	}
	// A missing development key says so.
	var m map[string]any
	json.Unmarshal(good, &m)
	delete(m["keys"].(map[string]any)["development"].(map[string]any), "hostMac")
	b, _ := json.Marshal(m)
	if _, err := Parse(b); err == nil || !strings.Contains(err.Error(), "keys.development.hostMac: missing (32 or 48 hex digits)") {
		t.Errorf("missing hostMac: %v", err)
	}
}

// TestDispenserDriverConfig: each driver's section is required and checked,
// and every error names its field.
func TestDispenserDriverConfig(t *testing.T) {
	b, err := os.ReadFile("../../configs/atm.json")
	if err != nil {
		t.Fatal(err)
	}
	var base map[string]any
	if err := json.Unmarshal(b, &base); err != nil {
		t.Fatal(err)
	}
	unit := map[string]any{"id": "CST1", "denomination": 10000, "currency": "CNY", "count": 10}
	for _, tc := range []struct {
		name      string
		dispenser map[string]any
		want      []string // the errors, in order; none: valid
	}{
		{"xfs4iot ok", map[string]any{"driver": "xfs4iot", "xfs4iot": map[string]any{"publisher": "ws://127.0.0.1:5846/xfs4iot/v1.0"}}, nil},
		{"xfs4iot wss with CA", map[string]any{"driver": "xfs4iot", "xfs4iot": map[string]any{"publisher": "wss://atm.local:5847/xfs4iot/v1.0", "caFile": "/etc/ca.pem", "commandTimeout": "90s"}}, nil},
		{"xfs4iot missing", map[string]any{"driver": "xfs4iot"}, []string{`config: dispenser.xfs4iot: required with driver "xfs4iot"`}},
		{"xfs4iot http", map[string]any{"driver": "xfs4iot", "xfs4iot": map[string]any{"publisher": "http://127.0.0.1:5846/xfs4iot/v1.0"}},
			[]string{`config: dispenser.xfs4iot.publisher: "http://127.0.0.1:5846/xfs4iot/v1.0" must be ws://HOST:PORT/xfs4iot/v1.0 or wss://...`}},
		{"xfs4iot path", map[string]any{"driver": "xfs4iot", "xfs4iot": map[string]any{"publisher": "ws://127.0.0.1:5846/"}},
			[]string{`config: dispenser.xfs4iot.publisher: "ws://127.0.0.1:5846/": the path must end in /xfs4iot/v1.0`}},
		{"xfs4iot CA on ws", map[string]any{"driver": "xfs4iot", "xfs4iot": map[string]any{"publisher": "ws://h:1/xfs4iot/v1.0", "caFile": "ca.pem", "commandTimeout": "11m"}},
			[]string{"config: dispenser.xfs4iot.caFile: only for a wss:// publisher", "config: dispenser.xfs4iot.commandTimeout: 11m0s must be between 0 (default 60s) and 10m"}},
		{"lcdm ok", map[string]any{"driver": "lcdm", "lcdm": map[string]any{"port": "/dev/ttyUSB0", "model": "lcdm2000", "units": []any{unit}, "maxNotes": 40, "tokenKeyFile": "/etc/k"}}, nil},
		{"lcdm bad", map[string]any{"driver": "lcdm", "lcdm": map[string]any{"model": "lcdm4000", "units": []any{unit, unit, unit}}},
			[]string{"config: dispenser.lcdm.port: required (e.g. /dev/ttyUSB0)", `config: dispenser.lcdm.model: "lcdm4000": only "lcdm2000" is supported`,
				"config: dispenser.lcdm.units: one or two cassettes (upper, lower)", "config: dispenser.lcdm.maxNotes: must be positive",
				"config: dispenser.lcdm.tokenKeyFile: required: the driver checks the host's token itself"}},
		{"unknown", map[string]any{"driver": "cdm"}, []string{`config: dispenser.driver: "cdm" is not a known driver (known: sim, xfs4iot, lcdm)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base["dispenser"] = tc.dispenser
			b, err := json.Marshal(base)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(b)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("errors\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestKioskRefusesLaptopSettings: the shipped laptop configuration does not
// start in kiosk mode, and the error says what to change.
func TestKioskRefusesLaptopSettings(t *testing.T) {
	cfg, err := Load("../../configs/atm.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Screen.Mode = "kiosk"
	cfg.DataDir = t.TempDir()
	_, err = New(cfg, slog.New(slog.DiscardHandler))
	want := "kiosk mode refused:\n" +
		"config: not for a kiosk: keys.development holds development keys; run the key ceremony (atmctl key load-tmk) and configure keys.store or keys.pkcs11 instead\n" +
		"config: not for a kiosk: control.customerInput lets any program on this PC withdraw through the control endpoint; set it to false (the customer uses the screen and keypad)\n" +
		`config: not for a kiosk: dispenser.driver "sim" is the simulated dispenser; configure the real one (xfs4iot or lcdm)`
	if !errors.Is(err, ErrNotForKiosk) || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
	if entries, _ := os.ReadDir(cfg.DataDir); len(entries) != 0 {
		t.Fatalf("a refused start wrote %d files", len(entries))
	}
	cfg.Keys.Dev, cfg.Control.CustomerInput = nil, false
	cfg.Keys.Store, cfg.Keys.StorageKeyFile = "keys.enc", "storage.key"
	cfg.Dispenser = Dispenser{Driver: "xfs4iot", XFS4IoT: &DispenserXFS4IoT{Publisher: "ws://127.0.0.1:5846/xfs4iot/v1.0"}}
	if err := cfg.CheckKiosk(); err != nil {
		t.Fatalf("a production configuration: %v", err)
	}
}

// TestProductionTemplate: the configuration the Debian package installs
// loads, is fit for a kiosk and keeps everything under absolute paths.
func TestProductionTemplate(t *testing.T) {
	cfg, err := Load("../../configs/atm.production.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.CheckKiosk(); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]string{"dataDir": cfg.DataDir, "keys.store": cfg.Keys.Store, "keys.storageKeyFile": cfg.Keys.StorageKeyFile,
		"journal.exportDir": cfg.Journal.ExportDir, "dispenser.xfs4iot.responseKeyFile": cfg.Dispenser.XFS4IoT.ResponseKeyFile} {
		if !filepath.IsAbs(p) {
			t.Errorf("%s %q is not absolute", name, p)
		}
	}
	if cfg.Screen.Mode != "kiosk" || cfg.Control.CustomerInput {
		t.Errorf("screen %q, customer input %v", cfg.Screen.Mode, cfg.Control.CustomerInput)
	}
}
