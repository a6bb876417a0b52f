// Package hostsim is a bank host simulator for the ATM's host link
// (package hostlink), in the net/http/httptest tradition: NewServer listens
// on 127.0.0.1:0 and Close stops it; cmd/hostsim runs it as a program
// (NewUnstartedServer and Start). StartBind adds the bank's phone binding
// endpoint (docs/binding.md).
//
// # State
//
// Customers, accounts, authorizations and settlement totals live in the
// simulator's own bbolt file (Config.DBPath). Customers are seeded from
// the configuration on the first start only; afterwards the file is the
// truth, so balances survive restarts. PINs are stored only as salted
// SHA-256 hashes and never logged; customer IDs are masked in the log.
// Every state change is one bbolt Update.
//
// # Admission
//
// Only configured terminals are admitted. The first message on a
// connection (normally the 0800 sign-on) must name a terminal of
// Config.Terminals in field 41 and carry a MAC made with that terminal's
// MAC key; otherwise the refusal is logged with its reason ("terminal not
// admitted", "message does not verify with the terminal's keys") and the
// connection is closed. The connection is then bound to that terminal: a
// later message naming another terminal closes it, and a later message
// whose MAC fails is dropped unanswered.
//
// # Authorization (0200 -> 0210)
//
// The host decrypts field 52 with the app PIN key (hsm.AppPINKey, 3DES-CBC,
// zero IV), reads the ISO 9564-1 format 1 block (package pinblock) and
// compares the PIN with the stored hash. Checks, in order:
//
//	12  unsupported currency, or field 121 is not a 32-digit hex nonce
//	30  field 123 present but not a device ID (wire.ValidDeviceID)
//	14  unknown customer
//	05  account blocked
//	57  the phone (field 123) is not bound to the customer, or sent no
//	    device ID (unless Binding.Optional); before the PIN, so a phone
//	    that is not bound cannot try PINs
//	75  PIN tries exceeded (3 wrong PINs in a row; the third answers 75)
//	55  wrong PIN
//	13  amount <= 0
//	61  over the per-transaction or the daily limit
//	51  insufficient funds
//	00  approved: the account is debited, an auth code (6 digits), an RRN
//	    and the XFS4IoT dispense token over field 121's nonce and the
//	    amount (dispenser.BuildToken, HMAC-SHA256 under hsm.TokenKey)
//
// The decision and the debit are recorded in one Update keyed by terminal
// and STAN. A duplicate 0200 (same terminal, STAN, customer, amount and
// nonce) gets the original answer again and is never debited twice; the
// same STAN with other content gets 94.
//
// # Phone binding
//
// A customer binds a phone to their account with BindStart (their PIN
// block, checked and counted as in a withdrawal; then a six-digit code
// from crypto/rand, valid Binding.CodeTTL on Config.Now's clock, void
// after Binding.MaxTries wrong codes, at most Binding.MaxCodesPerDay a
// day) and BindConfirm (the code). StartBind serves both as JSON over HTTP
// on a loopback address (bindapi's paths; no TLS, so loopback only, with
// the control endpoint's guards against browsers). Bindings and pending
// codes are in the database, keyed by the customer and a hash of the
// device ID; a code is kept only as a salted hash. Binding.Devices are
// bound when the bindings bucket is created.
//
// The simulator has no SMS gateway: it "delivers" each code to an
// in-memory inbox per number (SMS, and GET /sim/sms on the bind
// endpoint), the stand-in for the customer's phone. That inbox is the one
// place a code exists in clear; the log never shows a code or a device ID.
//
// # Completion (0220) and reversal (0420)
//
// Both are applied exactly once per terminal and original STAN (field 90);
// a resend is acknowledged with 00 again and changes nothing. A reversal
// credits back the authorized amount minus the amount dispensed (the first
// 12 digits of field 95; absent or zero means a full reversal). A reversal
// whose original is unknown is acknowledged and logged, and leaves a
// marker so that the 0200, should it arrive late, is declined (12). An
// advice or reversal whose original is not a 0200 is answered 12.
//
// # Settlement
//
// Totals(day, terminal) gives the day's Count (approvals), Approved,
// Reversed and Net amounts of one terminal; the day is the date, in
// Config.DayZone (UTC when empty), of the authorization's field 7, and a
// reversal counts on its original's day. ReadTotals reads them from a
// database file that no server holds open ("hostsim totals --db FILE --day
// YYYY-MM-DD").
//
// A terminal asks for its own totals over the link with a reconciliation
// request (0500 -> 0510, reconcile.go): DayTotals computes them from the
// host's recorded authorizations (approved, reversals with what they
// credited, completion advices, net debit) for the day of field 15.
//
// # Faults
//
// Config.Faults (or SetFaults at run time) injects failures for every
// message: SlowAnswer delays each answer (after processing), NoAnswer drops
// financial messages unprocessed, Decline answers every 0200 with the
// given code, DropAfterApprove closes the connection instead of sending an
// approving 0210 (the debit stands until a reversal arrives).
//
// Tests can choose a fault per message, without reconfiguring, with a
// magic customer ID in field 120 of the 0200:
//
//	FAULT-SLOW        processed normally, answered after Faults.SlowAnswer
//	                  (DefaultSlowAnswer, 5 s, when zero)
//	FAULT-NOANSWER    dropped unprocessed, never answered
//	FAULT-DROP        processed; if approved, the connection is closed
//	                  instead of answering
//	FAULT-DECLINE-NN  answered with response code NN, no account touched
//
// FAULT-SLOW and FAULT-DROP are ordinary customers otherwise: seed them
// with a PIN and a balance (configs/hostsim.json does).
package hostsim
