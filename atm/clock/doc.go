// Package clock is the appliance's one time source: Now, timers, callbacks
// and tickers behind the small Clock interface (after tailscale's
// tstime.Clock). Everything that reads the time or waits for it takes a
// Clock: the core (session expiry, take-cash timer, store-and-forward
// backoff), the store (journal and queue timestamps), the links (echo,
// reconnect) and the control endpoint. Production passes Real; tests pass a
// Fake, which stands still until the test moves it, so no test sleeps to
// let time pass and none depends on today's date.
package clock
