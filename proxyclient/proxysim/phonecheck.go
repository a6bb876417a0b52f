package proxysim

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/cardless-atm/cardless/atm/wire"
)

// PhoneWindow is how far a phone request's transmission time (field 7) may
// be from the proxy's clock, and how long the proxy remembers a request to
// refuse it again.
const PhoneWindow = 10 * time.Minute

// RCFormatError (30) answers a phone request that lacks a mandatory field.
const RCFormatError = wire.RCFormatError

// phoneSeen remembers the phone requests of the last PhoneWindow by STAN,
// field 7 and customer field (as a hash): a request seen again is a replay.
type phoneSeen struct {
	mu   sync.Mutex
	seen map[[32]byte]time.Time
}

// check says why a phone 0200 must not be forwarded ("" and the code when
// it may): a missing mandatory field (30), a transmission time outside the
// window or a request already seen in it (94). A request that passes is
// remembered.
func (p *phoneSeen) check(req wire.Withdrawal, now time.Time) (rc, why string) {
	switch {
	case req.STAN == "" || req.TransmissionDateTime == "" || req.TerminalID == "" || req.Amount == "" || req.Currency == "":
		return RCFormatError, "a mandatory field (4, 7, 11, 41 or 49) is missing"
	case req.QRPayload == "":
		return RCFormatError, "field 62 (the QR) is missing"
	case req.CustomerID == "":
		return RCFormatError, "field 120 (the customer) is missing"
	case len(req.PINBlock) == 0:
		return RCFormatError, "field 52 (the credential) is missing"
	}
	t, err := wire.ParseTransmissionDT(req.TransmissionDateTime, now)
	if err != nil {
		return RCFormatError, "field 7 is not a transmission time"
	}
	if d := now.Sub(t); d > PhoneWindow || d < -PhoneWindow {
		return wire.RCDuplicate, "field 7 is outside the replay window (stale or from the future)"
	}
	key := sha256.Sum256([]byte(req.STAN + "|" + req.TransmissionDateTime + "|" + req.CustomerID + "|" + hex.EncodeToString(req.PINBlock)))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[[32]byte]time.Time{}
	}
	for k, at := range p.seen {
		if now.Sub(at) > PhoneWindow {
			delete(p.seen, k)
		}
	}
	if _, ok := p.seen[key]; ok {
		return wire.RCDuplicate, "the same request (STAN, field 7, customer) was seen within the window"
	}
	p.seen[key] = now
	return "", ""
}

// RCRateLimited (65, "exceeds frequency limit") answers a phone request
// from a source address that has had too many requests refused recently.
const RCRateLimited = "65"

// DefaultRefusalLimit is Config.PhoneRefusalLimit's default: refused phone
// requests a source address may have in PhoneWindow before the proxy stops
// forwarding its requests.
const DefaultRefusalLimit = 20

// refusalLimiter counts refused phone requests per source address.
type refusalLimiter struct {
	mu  sync.Mutex
	per map[string][]time.Time
}

// limited reports whether src has had max refusals in the window.
func (l *refusalLimiter) limited(src string, now time.Time, max int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := l.per[src][:0]
	for _, at := range l.per[src] {
		if now.Sub(at) < PhoneWindow {
			kept = append(kept, at)
		}
	}
	if len(kept) == 0 {
		delete(l.per, src)
		return false
	}
	l.per[src] = kept
	return len(kept) >= max
}

// refused records a refusal for src.
func (l *refusalLimiter) refused(src string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.per == nil {
		l.per = map[string][]time.Time{}
	}
	l.per[src] = append(l.per[src], now)
}
