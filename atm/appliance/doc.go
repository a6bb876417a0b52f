// Package appliance assembles the ATM-resident application from its
// configuration file: the key module (hsm), the bbolt store, the dispenser
// driver, the host and proxy links, the core (package atm), the screens
// (package ui) through an adapter, a headless screen writer and a
// localhost-only control and status endpoint. cmd/atm is its thin main.
//
// Configuration (configs/atm.json) is validated at start: Load names every
// bad value in one error. Keys come from an encrypted key store loaded by
// the key ceremony (atmctl key load-tmk), or, for development only, from
// clear keys in the file.
//
// For crash tests, a binary built with the build tag failpoint
// (go build -tags failpoint ./cmd/atm) reads the environment variable
// CARDLESS_CRASH_AFTER: it names a failure point, and the process kills
// itself right after the bbolt commit with that label (the new session
// state, e.g. "Dispensing"). Production builds compile the hook out, as
// etcd and bbolt compile out their failpoints, and only log that the
// variable is ignored.
package appliance
