package appliance

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/hostlink"
	"github.com/cardless-atm/cardless/atm/nfc"
	"github.com/cardless-atm/cardless/atm/operators"
	"github.com/cardless-atm/cardless/atm/receipt"
	"github.com/cardless-atm/cardless/atm/receipt/escpos"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/p11"
	"github.com/cardless-atm/cardless/proxyclient"
)

// CrashEnv names the environment variable that selects a failure point for
// crash tests: the process kills itself right after the bbolt commit whose
// label (the new session state, e.g. "Dispensing") matches, or, for a
// point "device:ACTION", right after the dispenser simulator has recorded
// ACTION ("Dispense", "Present", "Taken", "Retract", "Reset"; see
// dispensersim.Config.AfterSave) and before the core hears of it. Only a binary
// built with the build tag failpoint reads it (crashhook_failpoint.go); a
// production build logs that it ignores it.
const CrashEnv = "CARDLESS_CRASH_AFTER"

// Appliance is the ATM-resident application: the core and everything it is
// wired to.
type Appliance struct {
	Config *Config
	Log    *slog.Logger
	HSM    KeyModule
	Store  *store.DB
	// Dispenser is the cash dispenser driver the configuration chose;
	// DispenserSim is the in-process simulator when that is the driver.
	Dispenser    atm.Dispenser
	DispenserSim *dispensersim.Sim
	Host         *hostlink.Client
	Proxy        *proxyclient.Client
	Core         *atm.ATM
	Backend      *Backend
	// Operators are the credentials of the operator routes of the control
	// endpoint (dataDir/operators.json; atmctl operator add).
	Operators *operators.File
	// NFCReader is the contactless reader the phone taps (nil: none; the
	// nfc section of the configuration); set before Run to use another.
	NFCReader nfc.Reader
	// Clock is the appliance's one time source, given to the core, the
	// store, both links and the control endpoint.
	Clock clock.Clock

	journal *journalChecker // background verification of the journal
	metrics *metrics
	alarms  *alarmer
	printer *receiptPrinter // nil: no receipt printer

	screen *screenWriter
}

// OperatorsFile is the operator credential file in the data directory.
const OperatorsFile = "operators.json"

// ErrNoStore: the data directory has no atm.db and Config.NewStore is not
// set (a store moved away, or a new terminal started without --new-store).
var ErrNoStore = errors.New("appliance: no store")

// New builds the appliance from cfg. Nothing runs until Run.
func New(cfg *Config, log *slog.Logger) (*Appliance, error) {
	if cfg.Screen.Mode == "kiosk" {
		if err := cfg.CheckKiosk(); err != nil {
			return nil, fmt.Errorf("kiosk mode refused:\n%w", err)
		}
	}
	a := &Appliance{Config: cfg, Log: log, Clock: clock.Real{}}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	var err error
	if a.HSM, err = openKeys(cfg.Keys, log); err != nil {
		return nil, err
	}
	crash := crashHook(os.Getenv(CrashEnv), log)
	// DeferFileCheck: the start checks the pages it reads; the whole file
	// is checked in the background (journalChecker.file), with an ALARM
	// on failure, so a large store does not delay going in service.
	opts := store.Options{Now: a.Clock.Now, AfterCommit: crash, JournalAuth: JournalAuth(a.HSM), DeferFileCheck: true}
	dbPath := filepath.Join(cfg.DataDir, "atm.db")
	if _, err := os.Stat(dbPath); errors.Is(err, os.ErrNotExist) && !cfg.NewStore {
		return nil, fmt.Errorf("%w: %s does not exist; an ATM never starts over with an empty store (daily totals, STANs and cassette counters from zero) unless told to: on a new terminal's first start run atm with --new-store", ErrNoStore, dbPath)
	}
	if a.Store, err = store.Open(dbPath, opts); err != nil {
		return nil, err
	}
	if from := a.Store.MigratedFrom(); from != 0 {
		log.Info("store file upgraded", "path", dbPath, "from_schema", from, "to_schema", store.SchemaVersion)
	}
	if a.Operators, err = operators.Open(filepath.Join(cfg.DataDir, OperatorsFile), a.Clock.Now); err != nil {
		return nil, err
	}
	// A journal that does not verify (an entry edited or removed, or the
	// file rewritten without the journal key) is a security incident: the
	// ATM does not start, and the file is left as it is for investigation.
	//
	// Only what follows the journal's checkpoint is verified here, so the
	// start takes the same time whatever the journal's age; the whole chain
	// is verified in the background (journalChecker) and on demand (GET
	// /journal/verify).
	head, err := a.Store.VerifyJournalSince()
	if err != nil {
		return nil, fmt.Errorf("electronic journal in %s: %w (keep the file for investigation)", dbPath, err)
	}
	if err := a.Store.SetCheckpoint(head); err != nil {
		return nil, fmt.Errorf("electronic journal in %s: checkpoint: %w", dbPath, err)
	}
	a.journal = newJournalChecker(a.Store, a.Clock, log.With("part", "journal"))
	if a.Dispenser, err = a.newDispenser(cfg, log.With("part", "dispenser"), crash); err != nil {
		return nil, err
	}
	hostTPDU := decodeTPDU(cfg.Host.TPDU)
	a.Host, err = hostlink.New(hostlink.Config{Addr: cfg.Host.Addr, TerminalID: cfg.TerminalID, AcquirerID: cfg.Host.AcquirerID,
		TPDU: hostTPDU, HSM: a.HSM, Clock: a.Clock, SendTimeout: cfg.Host.SendTimeout.D(), EchoInterval: cfg.Host.EchoInterval.D(),
		Anchor: func() (an wire.Anchor, err error) {
			err = a.Store.View(func(tx *store.Tx) error {
				if an.JournalSeq, err = tx.JournalSeq(); err != nil {
					return err
				}
				an.STAN, err = tx.LastSTAN()
				return err
			})
			return an, err
		},
		Logger: log.With("part", "hostlink"), OnChange: a.linksChanged})
	if err != nil {
		return nil, err
	}
	zone, err := cfg.Zone()
	if err != nil {
		return nil, fmt.Errorf("dayZone: %w", err)
	}
	a.Core, err = atm.New(atm.Config{
		TerminalID: cfg.TerminalID, Location: cfg.Location, Currency: cfg.Currency, CurrencyAlpha: cfg.CurrencyAlpha,
		Exponent: cfg.Exponent, SessionTTL: cfg.SessionTTL.D(), TakeTimeout: cfg.TakeTimeout.D(),
		Limits:  atm.Limits{Min: cfg.Limits.Min, Max: cfg.Limits.Max, Multiple: cfg.Limits.Multiple, Daily: cfg.Limits.Daily},
		Presets: cfg.Presets, Store: a.Store, HSM: a.HSM, Dispenser: a.Dispenser, Host: a.Host,
		Links: a.Links(), Logger: log.With("part", "core"), Clock: a.Clock, DayZone: zone, Observer: a.observe,
	})
	if err != nil {
		return nil, err
	}
	proxyTPDU := decodeTPDU(cfg.Proxy.TPDU)
	a.Proxy, err = proxyclient.New(proxyclient.Config{Addr: cfg.Proxy.Addr, TerminalID: cfg.TerminalID, TPDU: proxyTPDU,
		HSM: a.HSM, KeyFormat: wire.KeyFormat(cfg.Proxy.KeyBlocks), Clock: a.Clock, EchoInterval: cfg.Proxy.EchoInterval.D(), SendTimeout: cfg.Proxy.SendTimeout.D(),
		Handler: proxyclient.HandlerFunc(a.handle), Logger: log.With("part", "proxyclient"), OnChange: a.linksChanged})
	if err != nil {
		return nil, err
	}
	a.Backend = NewBackend(a.Core)
	a.Backend.Operators = a.Operators
	a.Backend.store, a.Backend.zone, a.Backend.exportDir = a.Store, zone, cfg.Journal.ExportDir
	if p := cfg.Printer; p != nil {
		pr, err := escpos.Open(p.Port, p.Baud, log.With("part", "printer"))
		if err != nil {
			return nil, fmt.Errorf("printer: %w", err)
		}
		a.printer = &receiptPrinter{p: pr, clk: a.Clock, log: log.With("part", "printer")}
		a.Backend.printer = a.printer
	}
	if cfg.NFC != nil {
		r, err := nfc.NewPCSC(cfg.NFC.Reader)
		if err != nil {
			return nil, fmt.Errorf("nfc: %w", err)
		}
		a.NFCReader = r
	}
	a.metrics = newMetrics(a)
	a.alarms = newAlarmer(a)
	a.Backend.alarms = a.alarms
	ok = true
	return a, nil
}

// handle passes a dispense command from the proxy link to the core.
func (a *Appliance) handle(ctx context.Context, c proxyclient.Command) proxyclient.Result {
	r := a.Core.HandleCommand(ctx, atm.Command{STAN: c.STAN, TerminalID: c.TerminalID, Amount: c.Amount, Currency: c.Currency,
		QRPayload: c.QRPayload, CustomerID: c.CustomerID, PINBlock: c.PINBlock, DeviceID: c.DeviceID})
	out := proxyclient.Result{ResponseCode: r.ResponseCode, AuthCode: r.AuthCode, RRN: r.RRN, Dispensed: r.Dispensed}
	if r.ResponseCode == wire.RCApproved && r.Dispensed > 0 {
		// The phone's receipt (docs/phone.md, field 63).
		zone, _ := a.Config.Zone()
		out.Receipt = receipt.Receipt{Terminal: a.Config.TerminalID, Location: a.Config.Location, Time: r.Time.In(zone),
			Amount: r.Dispensed, Currency: a.Config.CurrencyAlpha, Exponent: a.Config.Exponent, Customer: r.Customer,
			AuthCode: r.AuthCode, RRN: r.RRN, STAN: r.HostSTAN}.Encode()
	}
	return out
}

// linksChanged tells the core that a link went up or down (the links call
// it only once Run runs, after New has set Core).
func (a *Appliance) linksChanged() {
	if a.Core != nil {
		a.Core.LinksChanged()
	}
}

// Links reports the health of the appliance's proxy and host links.
func (a *Appliance) Links() atm.Links { return links{a} }

type links struct{ a *Appliance }

func (l links) ProxyUp() bool { return l.a.Proxy != nil && l.a.Proxy.Status().SignedOn }
func (l links) HostUp() bool  { return l.a.Host.Connected() }

// Run runs the links and the core until ctx is done or one of them fails.
func (a *Appliance) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1) // the first failure; it stops the rest
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				select {
				case errc <- fmt.Errorf("%s: %w", name, err):
				default:
				}
				cancel()
			}
		}()
	}
	run("host link", a.Host.Run)
	run("proxy link", a.Proxy.Run)
	run("core", a.Core.Run)
	a.journal.clk = a.Clock
	run("journal check", a.journal.run)
	a.alarms.clk = a.Clock
	if a.printer != nil {
		a.printer.clk = a.Clock
		run("printer", func(ctx context.Context) error { a.printer.run(ctx); return nil })
	}
	run("alarms", func(ctx context.Context) error { a.alarms.run(ctx); return nil })
	if a.NFCReader != nil {
		a.Backend.mu.Lock()
		a.Backend.contactless = true
		a.Backend.mu.Unlock()
		run("nfc", a.tapperWith(a.NFCReader).run)
	}
	if dir := a.Config.Journal.ExportDir; dir != "" {
		zone, _ := a.Config.Zone() // validated
		days := a.Config.Journal.RetentionDays
		if days == 0 {
			days = DefaultRetentionDays
		}
		x := &journalExporter{db: a.Store, dir: dir, terminal: a.Config.TerminalID, zone: zone, clk: a.Clock, log: a.Log.With("part", "journal"),
			retention: time.Duration(days) * 24 * time.Hour, ready: a.journal.FileOK()}
		run("journal export", func(ctx context.Context) error { x.run(ctx); return nil })
	}
	go a.Backend.fanOut(ctx)
	go a.tellProxy(ctx, a.Backend.Subscribe())
	// The headless screen writer renders what the customer sees to a PNG:
	// the screen itself in headless mode, and in window or kiosk mode a
	// "camera" copy that the phone simulator can photograph.
	if c := a.Config.Screen; c.PNG != "" || c.Mode == "headless" {
		a.screen = &screenWriter{b: a.Backend, clk: a.Clock, path: c.PNG, log: a.Log.With("part", "screen"), camera: c.Mode != "headless"}
		run("screen", a.screen.run)
	}
	if addr := a.Config.Control.Addr; addr != "" {
		run("control", func(ctx context.Context) error {
			return a.ServeControl(ctx, addr, func(ad net.Addr) { a.Log.Info("control endpoint", "addr", ad.String()) })
		})
	}
	<-ctx.Done()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// observe feeds the metrics from the core's commits (set up before the
// core exists: the core calls it only once running).
func (a *Appliance) observe(s atm.Session) {
	if a.metrics != nil {
		a.metrics.observe(s)
	}
}

// Close releases the store and the keys.
func (a *Appliance) Close() {
	if a.Host != nil {
		a.Host.Close()
	}
	if a.printer != nil {
		a.printer.p.Close()
	}
	if a.NFCReader != nil {
		a.NFCReader.Close()
	}
	if c, ok := a.Dispenser.(io.Closer); ok {
		c.Close() // a device link (XFS4IoT, serial)
	}
	if a.Store != nil {
		a.Store.Close()
	}
	if a.HSM != nil {
		a.HSM.Close()
	}
}

// KeyModule is what the appliance needs of its security module: hsm.Soft
// (memory or encrypted key store) or a PKCS#11 token (hsm/p11).
type KeyModule interface {
	hsm.Module
	hsm.ClearKeyImporter
	hsm.HMACer
	GenerateHMACKey(name hsm.KeyName) error
	Close() error
}

// openKeys opens the PKCS#11 token or the key store (production), or an
// in-memory module, and loads development keys if configured.
func openKeys(k Keys, log *slog.Logger) (KeyModule, error) {
	var m KeyModule
	persistent := k.Store != "" || k.PKCS11 != nil
	switch {
	case k.PKCS11 != nil:
		p, err := openPKCS11(*k.PKCS11, log)
		if err != nil {
			return nil, err
		}
		m = p
	case k.Store != "":
		sk, err := hsm.ReadStorageKeyFile(k.StorageKeyFile)
		if err != nil {
			return nil, err
		}
		s, err := hsm.OpenStore(k.Store, sk)
		if err != nil {
			return nil, err
		}
		m = s
	default:
		m = hsm.NewSoft()
	}
	if d := k.Dev; d != nil {
		for name, v := range map[hsm.KeyName]string{hsm.TMK: d.TMK, hsm.HostMAC: d.HostMAC, hsm.HostData: d.HostData, hsm.QRMAC: d.QRMAC} {
			if v == "" {
				continue
			}
			key, _ := hex.DecodeString(v)
			if _, err := m.ImportClearKey(name, key); err != nil {
				m.Close()
				return nil, fmt.Errorf("keys.development.%s: %w", name, err)
			}
		}
		if d.JournalMAC != "" {
			key, _ := hex.DecodeString(d.JournalMAC)
			if err := m.ImportClearHMACKey(hsm.JournalKey, key); err != nil {
				m.Close()
				return nil, fmt.Errorf("keys.development.journalMac: %w", err)
			}
		}
	}
	// The QR key never leaves the ATM: only the ATM makes and checks QR
	// MACs. A production key store gets one generated inside the module at
	// first start (persisted in the store; the export under the TMK is
	// discarded).
	if _, err := m.KCV(hsm.QRMAC); err != nil && persistent {
		if _, _, err := m.GenerateKey(hsm.TMK, hsm.QRMAC); err != nil {
			m.Close()
			return nil, fmt.Errorf("keys: generate %s: %w", hsm.QRMAC, err)
		}
	}
	// Likewise the journal key: it authenticates the electronic journal
	// (atm/store) and nothing outside the ATM needs it.
	if _, err := m.HMACSHA256(hsm.JournalKey, nil); errors.Is(err, hsm.ErrKeyNotFound) && persistent {
		if err := m.GenerateHMACKey(hsm.JournalKey); err != nil {
			m.Close()
			return nil, fmt.Errorf("keys: generate %s: %w", hsm.JournalKey, err)
		}
	}
	for _, need := range []hsm.KeyName{hsm.TMK, hsm.HostMAC, hsm.HostData, hsm.QRMAC} {
		if _, err := m.KCV(need); err != nil {
			m.Close()
			return nil, fmt.Errorf("keys: %s is not loaded (run the key ceremony: atmctl key load-tmk --name %s): %w", need, need, err)
		}
	}
	if _, err := m.HMACSHA256(hsm.JournalKey, nil); err != nil {
		m.Close()
		return nil, fmt.Errorf("keys: %s is not loaded (set keys.development.journalMac, or use a key store or token, which generates it): %w", hsm.JournalKey, err)
	}
	return m, nil
}

// JournalAuth returns the store's journal authenticator for m: HMAC-SHA256
// under hsm.JournalKey, computed inside the module (the key never leaves
// it). The appliance opens its store with it; tools and tests that open the
// store file themselves pass the same to check the journal head MAC.
func JournalAuth(m hsm.HMACer) store.JournalAuthenticator { return journalAuth{m} }

type journalAuth struct{ m hsm.HMACer }

func (j journalAuth) JournalMAC(data []byte) ([]byte, error) {
	return j.m.HMACSHA256(hsm.JournalKey, data)
}

// decodeTPDU returns nil for no TPDU (validated by Config.Validate).
func decodeTPDU(s string) []byte {
	b, _ := wire.ParseTPDU(s)
	return b
}

// tellProxy keeps the proxy told whether the terminal takes customers
// (proxyclient.SetService), so that it answers phones at once while the
// terminal is out of service instead of forwarding their requests.
func (a *Appliance) tellProxy(ctx context.Context, changed <-chan struct{}) {
	var told struct {
		set    bool
		in     bool
		reason string
	}
	check := func() {
		v := a.Core.View()
		if told.set && v.InService == told.in && v.Reason == told.reason {
			return
		}
		told.set, told.in, told.reason = true, v.InService, v.Reason
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := a.Proxy.SetService(sctx, v.InService, v.Reason); err != nil && !errors.Is(err, proxyclient.ErrNotSignedOn) {
			a.Log.Warn("the proxy was not told the service state; it will be after the next sign-on", "in_service", v.InService, "err", err)
		}
	}
	check()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			check()
		}
	}
}

// deviceCrashHook turns the crash hook into the dispenser simulator's
// AfterSave hook: the device's actions are the points "device:ACTION".
func deviceCrashHook(crash func(string)) func(string) {
	if crash == nil {
		return nil
	}
	return func(action string) { crash("device:" + action) }
}

// openPKCS11 opens the token of k: the PIN comes from k.PINFile, and the
// TMK's network-management variant is prepared beside keys loaded through
// their clear value, and so is its key block protection key (the token
// cannot derive them inside; see hsm/p11).
func openPKCS11(k PKCS11Keys, log *slog.Logger) (*p11.Module, error) {
	pin, err := os.ReadFile(k.PINFile)
	if err != nil {
		return nil, fmt.Errorf("keys.pkcs11.pinFile: %w", err)
	}
	m, err := p11.Open(p11.Config{Library: k.Module, TokenLabel: k.TokenLabel, PIN: strings.TrimSpace(string(pin)),
		ClearKeyFallback: k.ClearKeyFallback, Variants: []byte{wire.NetMgmtVariant, wire.KBPKVariant}, Logger: log.With("part", "keys")})
	if err != nil {
		return nil, fmt.Errorf("keys.pkcs11: %w", err)
	}
	return m, nil
}
