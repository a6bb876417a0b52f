package atm_test

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
	"github.com/cardless-atm/cardless/atm/store"
	"github.com/cardless-atm/cardless/atm/store/storetest"
)

// TestStorageProblemsHoldOutOfService: a store that cannot be written
// (here a disk reporting ENOSPC) takes the terminal out of service at the
// first failed write and keeps it there, whatever the customer does, until
// a write succeeds again; free space below the minimum does the same
// before any write fails. (The penetration test saw the ATM back "in
// service" 0.7 s after a write failed on a full disk.)
func TestStorageProblemsHoldOutOfService(t *testing.T) {
	fake := clock.NewFake(defaultStart)
	r := newRigOn(t, dispensersim.Faults{}, fake, fake)
	stopRig(r)
	var full atomic.Bool
	var free atomic.Uint64
	free.Store(1 << 30)
	db := storetest.OpenOptions(t, store.Options{Now: fake.Now, WriteFault: func(string) error {
		if full.Load() {
			return syscall.ENOSPC
		}
		return nil
	}})
	cfg := r.core.Config()
	cfg.Store, cfg.Dispenser = db, r.sim
	cfg.MinFreeBytes = 64 << 20
	cfg.FreeSpace = func() (uint64, error) { return free.Load(), nil }
	core, err := atm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = core.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	want := func(in bool, reason string) {
		t.Helper()
		for range 400 {
			if v := core.View(); v.InService == in && v.Reason == reason {
				return
			}
			fake.Advance(atm.StatusInterval)
			time.Sleep(5 * time.Millisecond)
		}
		v := core.View()
		t.Fatalf("in service %v (%q), want %v (%q)", v.InService, v.Reason, in, reason)
	}
	want(true, "")

	full.Store(true)
	if _, err := core.RequestWithdrawal(context.Background(), 10000); err == nil {
		t.Fatal("a session was created on a full disk")
	}
	want(false, "storage")
	for range 5 { // status reads and probes go on; the disk is still full
		fake.Advance(atm.StatusInterval)
		time.Sleep(5 * time.Millisecond)
	}
	if v := core.View(); v.InService {
		t.Fatal("back in service while the store still cannot be written")
	}
	full.Store(false)
	want(true, "")

	free.Store(1 << 20)
	want(false, "disk_low")
	free.Store(1 << 30)
	want(true, "")
}
