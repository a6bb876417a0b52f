// Package pinblock builds and parses ISO 9564-1 format 1 PIN blocks.
//
// A format 1 block is eight bytes, sixteen nibbles:
//
//	C N P P P P P/F P/F P/F P/F P/F P/F P/F P/F F F
//
// C is the control field, 0x1 for format 1; N is the PIN length (4 to 12);
// P are the PIN digits (0-9); F is the fill, a transaction-unique value
// (here random nibbles 0x0-0xF). Format 1 does not use the card number, which
// suits a cardless withdrawal: there is no PAN to bind the PIN to.
//
// The block is the clear form. In this system the phone app encrypts it
// with the app PIN key (hsm.AppPINKey, 3DES via hsm.Module.Encrypt) and sends
// the eight encrypted bytes in ISO 8583 field 52. The proxy and the ATM pass
// field 52 through untouched; only the host decrypts it and calls Parse.
//
// Nothing in this package logs or formats a PIN: errors name the position
// and kind of a fault, never the digits.
package pinblock
