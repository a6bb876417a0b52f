package atm_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cardless-atm/cardless/atm"
	"github.com/cardless-atm/cardless/atm/clock"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
)

// links is the appliance's link health as the core sees it.
type links struct{ proxy, host atomic.Bool }

func (l *links) ProxyUp() bool { return l.proxy.Load() }
func (l *links) HostUp() bool  { return l.host.Load() }

// TestInServiceOnlyAfterRecoveryAndLinks: a new core is out of service
// ("recovery") until Run has settled what a crash left; then it stays out
// of service ("link") until both links are up, and goes back out when one
// drops. Monitoring and the screens read View (GET /status reports it).
func TestInServiceOnlyAfterRecoveryAndLinks(t *testing.T) {
	fake := clock.NewFake(defaultStart)
	r := newRigOn(t, dispensersim.Faults{}, fake, fake)
	stopRig(r)
	var l links
	cfg := r.core.Config()
	cfg.Links = &l
	core, err := atm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v := core.View(); v.InService || v.Reason != "recovery" {
		t.Fatalf("before Run: in service %v (%q), want out of service for recovery", v.InService, v.Reason)
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
	want(false, "link")
	l.proxy.Store(true)
	for range 3 { // the proxy alone is not enough
		fake.Advance(atm.StatusInterval)
		time.Sleep(5 * time.Millisecond)
	}
	if v := core.View(); v.InService {
		t.Fatal("in service with the host link down")
	}
	l.host.Store(true)
	want(true, "")
	l.host.Store(false)
	want(false, "link")
}

// TestInServiceWithoutWaitingForATick: the core goes in service as soon
// as it can, not at the next status tick (the clock never moves here): at
// start when the links are already up, and when it is told a link changed
// (LinksChanged), in both directions.
func TestInServiceWithoutWaitingForATick(t *testing.T) {
	fake := clock.NewFake(defaultStart)
	r := newRigOn(t, dispensersim.Faults{}, fake, fake)
	stopRig(r)
	var l links
	l.proxy.Store(true)
	l.host.Store(true)
	cfg := r.core.Config()
	cfg.Links = &l
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
			time.Sleep(5 * time.Millisecond)
		}
		v := core.View()
		t.Fatalf("in service %v (%q), want %v (%q) without a tick", v.InService, v.Reason, in, reason)
	}
	want(true, "")
	l.host.Store(false)
	core.LinksChanged()
	want(false, "link")
	l.host.Store(true)
	core.LinksChanged()
	want(true, "")
}
