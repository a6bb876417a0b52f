package wire

import (
	"maps"

	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/padding"
	"github.com/moov-io/iso8583/prefix"
)

// Maximum lengths that follow from the spec.
const (
	// MaxVarLen is the largest value of an LLLVAR field (fields 48, 62,
	// 63, 120, 121, 122, 123).
	MaxVarLen = 999
	// MaxEncryptedPlain is the largest clear value of an encrypted field:
	// 991 bytes pad (ISO 9797-1 method 2) to 992 bytes of cipher text, the
	// largest multiple of the 8-byte block that fits MaxVarLen.
	MaxEncryptedPlain = 991
)

// Spec is the ISO 8583:1987 ASCII message spec of every link in the system
// (ATM <-> proxy and ATM <-> host). It starts from a copy of the fields of
// iso8583.Spec87, the library's ISO 8583:1987 ASCII spec (the same field
// definitions as specs.Spec87ASCII, whose package would pull in a YAML
// dependency), and redefines every field the system uses (see
// docs/protocol.md for the table):
//
//   - field 1: a standard 8-byte primary bitmap as 16 hex digits, followed by
//     a secondary bitmap (16 more hex digits) when any field 65-128 is set;
//   - fixed-length fields carry their value exactly (no implicit padding),
//     except 41 and 43, which are space-padded on the right;
//   - 52, 64 and 128 are 8 binary bytes carried as 16 upper-case hex digits;
//   - 48, 63, 121 and 122 are LLLVAR ans up to 999 characters;
//   - 62, 120 and 123, the encrypted fields, are LLLVAR binary up to 999 bytes:
//     a three-digit ASCII length, then the cipher text as it is (not as
//     hex, which would double both the bytes on the wire and the MAC work);
//     in a message that has been opened they hold the clear value;
//   - 53 (an16: the sign-on challenge, 16 hex digits), 70 (n3), 90 (n42),
//     95 (an42), 96 (an6: KCV of the MAC key) are added;
//   - the reconciliation fields (0500/0510) 15 (n4), 50 (n3), 76 and 77
//     (n10), 88 and 89 (n16), 97 (x+n16) and 124 (n26, private use:
//     completion advices) are fixed-length, never padded implicitly.
//
// Use NewMessage to create messages on it.
var Spec = newSpec()

func newSpec() *iso8583.MessageSpec {
	f := maps.Clone(iso8583.Spec87.Fields)

	f[0] = fixed(4, "Message Type Indicator")
	f[1] = field.NewBitmap(&field.Spec{
		Length:      8,
		Description: "Bitmap",
		Enc:         encoding.BytesToASCIIHex,
		Pref:        prefix.Hex.Fixed,
	})
	f[FieldProcessingCode] = fixed(6, "Processing Code")
	f[FieldAmount] = fixed(12, "Transaction Amount")
	f[FieldTransmissionDT] = fixed(10, "Transmission Date & Time")
	f[FieldSTAN] = fixed(6, "Systems Trace Audit Number (STAN)")
	f[FieldLocalTime] = fixed(6, "Local Transaction Time")
	f[FieldLocalDate] = fixed(4, "Local Transaction Date")
	f[FieldSettlementDate] = fixed(4, "Settlement Date")
	f[FieldAcquirerID] = llvar(11, "Acquiring Institution Identification Code")
	f[FieldRRN] = fixed(12, "Retrieval Reference Number")
	f[FieldAuthCode] = fixed(6, "Authorization Identification Response")
	f[FieldResponseCode] = fixed(2, "Response Code")
	f[FieldTerminalID] = spaced(8, "Card Acceptor Terminal Identification")
	f[FieldTerminalLoc] = spaced(40, "Card Acceptor Name/Location")
	f[FieldAdditionalData] = lllvar("Additional Data (key exchange)")
	f[FieldSignOnChallenge] = fixed(16, "Security Related Control Information (sign-on challenge)")
	f[FieldCurrency] = fixed(3, "Transaction Currency Code")
	f[FieldSettlementCurr] = fixed(3, "Settlement Currency Code")
	f[FieldPINBlock] = binHex8("PIN Data (end-to-end credential)")
	f[FieldQRPayload] = lllvarBinary("QR Payload (encrypted)")
	f[FieldReceipt] = lllvar("Receipt Data")
	f[FieldMAC64] = binHex8("Message Authentication Code (MAC)")
	f[FieldNetMgmtCode] = fixed(3, "Network Management Information Code")
	f[FieldDebitsNumber] = fixed(10, "Debits, Number")
	f[FieldDebitsRevNumber] = fixed(10, "Debits, Reversal Number")
	f[FieldDebitsAmount] = fixed(16, "Debits, Amount")
	f[FieldDebitsRevAmount] = fixed(16, "Debits, Reversal Amount")
	f[FieldOriginalData] = fixed(42, "Original Data Elements")
	f[FieldReplacementAmts] = fixed(42, "Replacement Amounts")
	f[FieldMACKeyKCV] = fixed(6, "Message Security Code (MAC key KCV)")
	f[FieldNetSettlement] = fixed(17, "Amount, Net Settlement")
	f[FieldCustomerID] = lllvarBinary("Customer Identifier (encrypted)")
	f[FieldDispenseNonce] = lllvar("Dispenser Command Nonce")
	f[FieldDispenseToken] = lllvar("Dispense Token")
	f[FieldDeviceID] = lllvarBinary("Device Identifier (encrypted)")
	f[FieldAdviceTotals] = fixed(26, "Completion Advices, Number and Amount (private use)")
	f[FieldMAC128] = binHex8("Message Authentication Code (MAC)")

	return &iso8583.MessageSpec{Name: "cardless ISO 8583:1987 ASCII", Fields: f}
}

func fixed(n int, desc string) field.Field {
	return field.NewString(&field.Spec{
		Length: n, Description: desc,
		Enc: encoding.ASCII, Pref: prefix.ASCII.Fixed,
	})
}

func spaced(n int, desc string) field.Field {
	return field.NewString(&field.Spec{
		Length: n, Description: desc,
		Enc: encoding.ASCII, Pref: prefix.ASCII.Fixed,
		Pad: padding.Right(' '),
	})
}

func llvar(max int, desc string) field.Field {
	return field.NewString(&field.Spec{
		Length: max, Description: desc,
		Enc: encoding.ASCII, Pref: prefix.ASCII.LL,
	})
}

func lllvar(desc string) field.Field {
	return field.NewString(&field.Spec{
		Length: MaxVarLen, Description: desc,
		Enc: encoding.ASCII, Pref: prefix.ASCII.LLL,
	})
}

// lllvarBinary is a String field whose bytes go on the wire as they are,
// after a three-digit ASCII length (the encrypted fields).
func lllvarBinary(desc string) field.Field {
	return field.NewString(&field.Spec{
		Length: MaxVarLen, Description: desc,
		Enc: encoding.Binary, Pref: prefix.ASCII.LLL,
	})
}

// binHex8 is 8 binary bytes carried as 16 upper-case hex digits.
func binHex8(desc string) field.Field {
	return field.NewBinary(&field.Spec{
		Length: 8, Description: desc,
		Enc: encoding.BytesToASCIIHex, Pref: prefix.ASCII.Fixed,
	})
}

// NewMessage returns an empty message on Spec with the given MTI.
func NewMessage(mti string) *iso8583.Message {
	m := iso8583.NewMessage(Spec)
	m.MTI(mti)
	return m
}
