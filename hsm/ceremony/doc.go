// Package ceremony is the logic of the atmctl command: the key ceremony
// that loads the terminal master key (TMK) from two or three components
// into the encrypted key store, key listing (names, types and check values
// only), storage key creation, and vendor debug commands that compute KCVs,
// retail MACs and 3DES-CBC on clear test keys.
//
// Run takes the arguments and the three standard streams, so the whole
// command is testable without a process: cmd/atmctl only calls Run.
//
// During the ceremony each custodian types a component as hex (spaces
// allowed). On a terminal nothing is echoed; otherwise one component is
// read per line. Each component must have odd parity, so most typing
// errors are caught at once; each component's KCV is shown for the
// custodian to compare with the KCV on the component's mailer, then the
// final KCV. The components are XORed and the result adjusted to odd
// parity (see hsm.Soft.FormKey). With --expect-kcv the key is stored only
// if the final KCV matches. The store and storage key are opened before
// anyone types, so a ceremony never fails after the components are in.
//
// If SIGINT, SIGTERM, SIGHUP or SIGQUIT arrives while a component is being
// typed on a terminal, the terminal's saved state (echo on) is restored, the
// components held are zeroed, "interrupted ... nothing was stored" is
// printed on stderr and the process exits with status 128+signal (130 for
// Ctrl-C); the key store is only written at the end of the ceremony.
//
// Results go to stdout, prompts and errors to stderr; errors are one line.
// Exit status 0 on success, 1 when an operation fails, 2 for usage errors
// and bad input.
package ceremony
