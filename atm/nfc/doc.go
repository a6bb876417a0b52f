// Package nfc hands the cardless-withdrawal session to a phone over NFC: the
// phone, running the bank's app in host card emulation, is held to the
// ATM's contactless reader; the ATM selects the app by its AID and sends it
// the session payload (the QR text, MAC included) in one command APDU.
// docs/nfc.md describes the APDUs for a bank's app team.
//
// The ATM side is Tap over a Card that a Reader hands out (PC/SC through
// pcscd in production, NewPCSC; FakeReader and FakeCard in tests). The
// phone side, for the phone simulator, is ServeVPCD: a virtual card
// attached to a vsmartcard vpcd virtual reader over its TCP socket,
// answering APDUs through an App.
package nfc
