//go:build linux

package appliance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/store"
)

// BenchmarkStartToInService is an aged ATM's restart, the whole of it: from
// appliance.New (keys, store open, journal since the checkpoint, the
// core's recovery) to the appliance in service with both links up (the
// proxy's sign-on with its key exchange, the host link), against the host
// and proxy simulators on loopback. The store is aged the way the core
// writes it (per withdrawal the session record and its open-index mark at
// each of eight states, and eight journal entries, under the terminal's
// journal key), then started once so that its checkpoint is at the head.
//
// "warm" starts with the file in the page cache (a restart of the
// process); "cold" first drops the copied file's pages from the cache
// (posix_fadvise DONTNEED), as after a reboot. ns/op is the time to in
// service; new-ms is appliance.New alone.
func BenchmarkStartToInService(b *testing.B) {
	// The simulators, and the aged data directories, serve every case.
	sims := &system{t: b, dir: b.TempDir(), logs: &lockedWriter{w: new(bytes.Buffer)}}
	sims.startSimulators(slog.New(slog.DiscardHandler), systemOptions{})
	aged := map[int]*appliance.Config{}
	for _, n := range []int{0, 100_000, 1_000_000} {
		for _, cache := range []string{"warm", "cold"} {
			b.Run(fmt.Sprintf("entries=%d/%s", n, cache), func(b *testing.B) {
				src := aged[n]
				if src == nil {
					src = agedATM(b, sims, n)
					aged[n] = src
				}
				b.ResetTimer()
				var newTotal time.Duration
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					cfg := *src
					cfg.DataDir = filepath.Join(b.TempDir(), "atm")
					copyDataDir(b, src.DataDir, cfg.DataDir, cache == "cold")
					b.StartTimer()
					start := time.Now()
					app, err := appliance.New(&cfg, benchLog())
					if err != nil {
						b.Fatal(err)
					}
					newTotal += time.Since(start)
					runToService(b, app) // the timer stops in it, once in service
				}
				b.ReportMetric(float64(newTotal.Microseconds())/1000/float64(b.N), "new-ms")
			})
		}
	}
}

func inService(app *appliance.Appliance) bool {
	st := app.Status()
	return st.InService && st.ProxyUp && st.HostUp
}

// agedATM creates an ATM's data directory under sims' directory (a first
// start with --new-store), ages its store to entries journal entries and
// starts it once on the aged store, as the appliance would run after the
// aging: the checkpoint is then at the head. It returns the ATM's
// configuration, pointed at sims.
func agedATM(b *testing.B, sims *system, entries int) *appliance.Config {
	b.Helper()
	cfg := sims.atmConfig()
	cfg.DataDir = filepath.Join(sims.dir, fmt.Sprintf("atm-%d", entries))
	cfg.Screen = appliance.Screen{Mode: "headless"}
	cfg.NewStore = true
	app, err := appliance.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	app.Close()
	cfg.NewStore = false
	if err := ageStore(cfg, entries); err != nil {
		b.Fatal(err)
	}
	if app, err = appliance.New(cfg, slog.New(slog.DiscardHandler)); err != nil {
		b.Fatal(err)
	}
	runToService(b, app)
	return cfg
}

// runToService runs app until it is in service, then stops and closes it.
func runToService(b *testing.B, app *appliance.Appliance) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { app.Run(ctx); close(done) }()
	defer func() { b.StopTimer(); cancel(); <-done; app.Close() }()
	for start := time.Now(); !inService(app); time.Sleep(200 * time.Microsecond) {
		if time.Since(start) > time.Minute {
			b.Fatalf("not in service after a minute: %+v", app.Status())
		}
	}
}

// ageStore writes entries journal entries, eight per withdrawal, with their
// session records, into cfg's store, in transactions of 2000 withdrawals
// (the same keys, values and page layout as one commit per state change;
// one fsync at a time would take hours).
func ageStore(cfg *appliance.Config, entries int) error {
	if entries == 0 {
		return nil
	}
	app, err := appliance.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer app.Close()
	states := []atm.State{atm.StateAwaitingPhone, atm.StateAuthorizing, atm.StateDispensing, atm.StatePresenting,
		atm.StateAwaitingTake, atm.StateCompleted, atm.StateCompleted, atm.StateCompleted}
	kinds := []string{"SESSION CREATED", "COMMAND ACCEPTED", "AUTHORIZED", "DISPENSED", "PRESENTED", "TAKEN", "ADVICE SENT", "ADVICE ACKNOWLEDGED"}
	t0 := time.Date(2025, 10, 1, 8, 0, 0, 0, time.UTC)
	const batch = 2000
	for w := 0; w*len(states) < entries; w += batch {
		err := app.Store.Update(func(tx *store.Tx) error {
			for i := w; i < w+batch && i*len(states) < entries; i++ {
				at := t0.Add(time.Duration(i) * 30 * time.Second)
				s := atm.Session{ID: fmt.Sprintf("%032X", i), TerminalID: cfg.TerminalID, Amount: 35000, Currency: cfg.Currency,
					Created: at, Expires: at.Add(2 * time.Minute), Updated: at,
					QR:          fmt.Sprintf("CLW1|%s|35000|156|%032X|0123456789ABCDEF", cfg.TerminalID, i),
					CommandSTAN: fmt.Sprintf("%06d", i%1000000), Customer: "*******0001", Requester: "9F86D081884C7D65",
					HostSTAN: fmt.Sprintf("%06d", i%1000000), HostTime: at, ResponseCode: "00", AuthCode: "A12345",
					RRN: fmt.Sprintf("52741234%04d", i%10000), DispenseNonce: fmt.Sprintf("%032X", i),
					Mix: dispenser.Mix{"unit1": 3, "unit2": 1}, Dispensed: 35000, DispensedMix: dispenser.Mix{"unit1": 3, "unit2": 1}, Paid: 35000}
				for k, st := range states {
					s.State = st
					rec, err := json.Marshal(s)
					if err != nil {
						return err
					}
					if err := tx.PutSession(s.ID, rec); err != nil {
						return err
					}
					if err := tx.MarkSession(s.ID, false); err != nil {
						return err
					}
					if _, err := tx.AppendJournal(store.Entry{Kind: kinds[k], SessionID: s.ID, Text: "amount 350.00 CNY, customer *******0001",
						Data: map[string]string{"state": st.String(), "amount": "35000", "stan": s.HostSTAN, "rrn": s.RRN}}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// copyDataDir copies the data directory src to dst; cold drops the copy's
// pages from the page cache once it is on disk.
func copyDataDir(b *testing.B, src, dst string, cold bool) {
	b.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		b.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.OpenFile(filepath.Join(dst, e.Name()), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			b.Fatal(err)
		}
		in.Close()
		if err := out.Sync(); err != nil {
			b.Fatal(err)
		}
		if cold {
			if err := unix.Fadvise(int(out.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
				b.Fatal(err)
			}
		}
		if err := out.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func benchLog() *slog.Logger {
	if os.Getenv("BENCH_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
