// Package phonesim is the phone app simulator: it reads the ATM's QR code
// (DecodePNG, from pixels, with gozxing), and Withdraw sends the withdrawal
// request to the proxy as a protected ISO 8583 0200 (atm/wire), with the QR
// payload (field 62) and customer ID (field 120) encrypted under the phone
// data key, and the PIN as an ISO 9564-1 format 1 PIN block (hsm/pinblock)
// encrypted with the app PIN key (field 52) so only the host can read it,
// and the phone's device ID (Config.DeviceID, field 123, encrypted). The
// PIN is never logged or printed. NewPhone and Phone.Request build the
// same request for a caller that keeps its own connection to the proxy.
//
// Bind binds the phone to a customer (docs/binding.md): BindStart sends
// the customer's PIN block and the device ID to the bank's bind endpoint
// (Config.BindURL), the bank sends a code by SMS, BindConfirm sends it
// back. ReadSMSCode reads the code from the host simulator's SMS inbox,
// the simulator's stand-in for the phone's SMS.
//
// The phone parses the QR text for the terminal, amount and currency, but
// does not verify its MAC: only the ATM holds that key.
package phonesim
