// Package proxysim is a proxy server simulator in the net/http/httptest
// tradition: NewServer listens on 127.0.0.1:0 (Start on chosen addresses),
// Close stops it.
//
// It has two listeners speaking the same protocol (atm/wire: ISO 8583 with
// MAC and field encryption, framed by a 2-byte length and an optional TPDU):
//
//   - ATMs: only configured terminals are admitted. The first message of a
//     connection must be a sign-on (0800/001) whose field 41 names a
//     configured terminal and whose MAC verifies under that terminal's TMK
//     variant; anything else is refused, logged with the reason, counted in
//     Stats.Refused, and the connection closed. The sign-on is answered with
//     fresh working keys generated under the terminal's TMK (field 48); a
//     161 gets new keys too, and PushKeys sends them unasked (162). An ATM
//     that signs on again replaces its older connection.
//   - Phones: one key set for every phone (KeySet{NetMgmtMAC: PhoneMAC,
//     MAC: PhoneMAC, Data: PhoneData}). A phone 0200 is routed to the ATM
//     named in field 41, with a new STAN on the ATM link, and the ATM's
//     answer (39, 38, 37, 95) goes back to the phone. When the ATM is not
//     connected, or does not answer within ATMTimeout, the phone gets 91
//     (issuer or switch inoperative). 68 (response received too late) would
//     be an alternative for the timeout; 91 is used for both because for the
//     phone both mean "try again later", and the ATM's own outcome is
//     settled between the ATM and the host.
//
// Faults (Config.Faults or SetFaults at run time): DropLinkAfter closes an
// ATM link after N received messages; Delay holds dispense commands;
// DuplicateCommand sends each command twice with the same STAN (the ATM
// must answer 94); CorruptMAC corrupts the MAC of dispense commands (the ATM
// must refuse them); BadKCV puts a wrong KCV in a pushed key block (the ATM
// must refuse it and keep its keys).
//
// Keys live in an in-memory hsm.Soft. Configuration keys are clear hex and
// for development only.
package proxysim
