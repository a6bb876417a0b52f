// Package atm is the appliance core: the cardless withdrawal as an explicit
// state machine, from the amount the customer picks to the cash taken (or
// not), with the money never lost and never paid twice.
//
// # The transaction
//
// A session is created by RequestWithdrawal after the fault check (dispenser
// healthy, limits, notes in the cassettes can make the amount); it holds a
// 128-bit random nonce and is committed to bbolt before its QR code (package
// atm/qr) reaches the screen. The proxy link delivers the phone's request
// as a Command; HandleCommand ties it to the session (QR MAC, nonce, terminal,
// amount, currency, expiry) or refuses it with a response code, and answers
// with the session's outcome once it is finished. A repeated command gets the
// same outcome again, never a second dispense.
//
// States and events are enums with String(); Next is the pure transition
// function:
//
//	None --SessionCreated--> AwaitingPhone --CommandAccepted--> Authorizing
//	AwaitingPhone --Cancel--> Cancelled
//	AwaitingPhone --Expire--> Expired
//	Authorizing --Approved--> Dispensing --Dispensed--> Presenting --Presented--> AwaitingTake
//	Authorizing --Declined--> Declined
//	Authorizing --HostUnknown--> Failed             (reversal 0420 queued)
//	Authorizing --HostUnavailable--> Failed         (nothing was sent: no reversal)
//	Dispensing --PartialDispense--> Presenting      (short dispense: less is presented)
//	Dispensing --DispenseFailed--> Failed           (reversal)
//	Dispensing --CountUnknown--> InDoubt            (operator)
//	Presenting --PresentFailed--> Retracting        (notes purged to the reject bin; reversal)
//	AwaitingTake --Taken--> Completed               (completion advice 0220 queued, or reversal if short)
//	AwaitingTake --TakeTimeout--> Retracting --Retracted--> Retracted (reversal)
//	Retracting --Taken--> Completed                 (the customer took the notes as the retract began)
//	Retracting --RetractFailed--> InDoubt           (operator)
//	InDoubt --OperatorPaid--> Completed             (Settle: the operator's count)
//	InDoubt --OperatorNotPaid--> Failed
//
// # Durability
//
// One goroutine (Run) owns the session. Every state change is one bbolt
// transaction (session, journal entry, queued advice or reversal, cassette
// counters, daily total) labelled with the new state, committed before the
// action the state stands for starts (write-ahead): the 0200 is sent only
// after Authorizing is on disk, notes are counted only after Dispensing is.
//
// # Time and devices
//
// The core reads the time and runs its timers (session expiry, the
// take-cash timer, the store-and-forward backoff, the status poll) on
// Config.Clock, the appliance's one clock (package atm/clock); tests move a
// fake clock instead of sleeping. A withdrawal counts for the calendar day
// (Config.DayZone) of its authorization request, as the host books it.
//
// The owner goroutine never waits for a device: dispense, present, the
// take-cash wait, retract and reset run in goroutines that post their
// outcome back (step); the dispenser's status is read every second by
// statusLoop and cached for the fault check and the service state; the
// command nonce is fetched in a goroutine while the session stays
// cancellable; recovery's retries (while the dispenser could not answer at
// start-up) run in the background too, each device request bounded by
// RecoveryTimeout. Run waits for all of them before it returns. Only the
// first recovery pass, before Run serves anything, runs on the owner.
//
// Advices and reversals wait in a store-and-forward queue until the host
// acknowledges them; each keeps the STAN it was queued with, so the host
// applies it once however often it is resent, across restarts.
//
// # Recovery
//
// At start, Recover settles every session a crash left unfinished: a
// session found mid-dispense is in doubt; the core asks the dispenser what
// its last dispense really did (PresentStatuser), retracts notes still at
// the exit, reverses what was not paid, flags the session for the operator
// and journals it. Resolve is that decision as a pure function. The
// device's word alone never reverses a withdrawal whose counted notes the
// ATM committed: a dispenser without a record of them (its memory lost, or
// swapped) leaves the session in doubt for the operator's count.
//
// The cassette counters stay equal to the device's through any crash. Notes
// the device took back in before the ATM could record it (its retract, a
// purge of the stacker, a jam's notes, for which the reset at start purges)
// are counted by the recovery commit of their session, from the device's
// last present status (movedBeforeCrash). Notes no session owns any more
// are cleared at the end of recovery (clearLeftovers) with the intent
// committed first (the device's dispense sequence number), so that a crash
// between the device's action and the commit that counts it is recognised
// at the next start and counted then.
//
// # Refused commands
//
// Every refused dispense command is answered, but the journal records them
// in bounded form (refusals.go): the first refusal with a response code in
// Config.RefusalWindow (default a minute) in full, the others with that
// code counted and journaled as one "COMMAND REFUSED (REPEATED)" entry with
// their number when the window ends (or when Run stops), so a flood of
// forged commands cannot fill the disk one entry per command.
//
// # Storage trouble
//
// A write that fails (a full or failing disk) takes the terminal out of
// service ("storage") with an ALARM until a probe write succeeds (the
// status loop tries one every StatusInterval), and free space below
// Config.MinFreeBytes (default 64 MiB) does the same ("disk_low") before
// any write fails (storage.go, package atm/diskspace).
//
// # Operators
//
// The supervisor's operations (issue 13 §1), each journaled with the
// operator, are the same for the kiosk's supervisor screens and the
// control endpoint's /operator routes: InDoubt and Settle (an operator's
// count of a session in doubt), ResetDispenser and AdoptDeviceCounters,
// TakeOutOfService and PutInService (operatorservice.go: reason
// "operator", committed to the store before the service changes, kept
// across restarts), Replenish (replenish.go: the cassettes' counts
// against the counters, every difference journaled, the counters reset to
// the new cassettes in one commit before the device is told them through
// the optional UnitExchanger, then the counters compared with the
// device's again; CheckRemoved previews the comparison), and Balance
// (balance.go: the terminal's figures for a business day beside the
// host's totals, fetched with a 0500 through the optional Reconciler,
// every difference listed), and SearchJournal (the journal entries of a
// session and a day). The reports print in English or Chinese (Lines) and
// export as JSON. Device and host calls, and the journal scans (in read
// transactions of a few thousand entries, so commits are not held back),
// run on the caller's goroutine, never the owner's.
//
// # Boundaries
//
// The core defines the small interfaces it uses: Dispenser (with the
// optional PresentStatuser, Resetter and UnitExchanger), Host (with the
// optional Reconciler) and Links. Host is stated
// in the types of package atm/host, the contract with the bank host, so
// the core does not import the network link. The simulators
// (atm/dispenser/dispensersim, atm/hostlink/hostsim), the in-process fake
// atm/host/hostfake and the real links satisfy them; package atm/appliance
// wires them together.
//
// Host errors follow package host's contract: host.ErrUnavailable means
// nothing was sent (decline, nothing to undo); any other failure means the
// outcome is unknown, and the core reverses and never retries the
// authorization.
package atm
