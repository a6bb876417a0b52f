package wire

import (
	"bytes"
	"testing"
	"time"

	"github.com/moov-io/iso8583"

	"github.com/cardless-atm/cardless/hsm"
)

// oddParity sets the low bit of each byte so that it has odd parity.
func oddParity(b []byte) []byte {
	out := bytes.Clone(b)
	for i, c := range out {
		n := 0
		for x := c >> 1; x != 0; x >>= 1 {
			n += int(x & 1)
		}
		out[i] = c&0xFE | byte((n+1)%2)
	}
	return out
}

// testKey returns a fixed double-length key derived from seed.
func testKey(seed byte) []byte {
	k := make([]byte, 16)
	for i := range k {
		k[i] = seed*31 + byte(i)*17 + 5
	}
	return oddParity(k)
}

const netMAC hsm.KeyName = "tmk.mac"

var (
	gen1 = KeySet{NetMgmtMAC: netMAC, MAC: "tak.1", Data: "tek.1"}
	gen2 = KeySet{NetMgmtMAC: netMAC, MAC: "tak.2", Data: "tek.2"}
)

// newModule returns a software module holding the TMK, its network
// management variant and two generations of working keys; every call
// returns a module with the same keys (the two ends of a link).
func newModule(tb testing.TB) *hsm.Soft {
	tb.Helper()
	s := hsm.NewSoft()
	tb.Cleanup(func() { s.Close() })
	for name, seed := range map[hsm.KeyName]byte{hsm.TMK: 1, "tak.1": 2, "tek.1": 3, "tak.2": 4, "tek.2": 5} {
		if _, err := s.ImportClearKey(name, testKey(seed)); err != nil {
			tb.Fatalf("import %s: %v", name, err)
		}
	}
	if err := s.DeriveVariant(hsm.TMK, netMAC, NetMgmtVariant); err != nil {
		tb.Fatal(err)
	}
	return s
}

// pair returns the two ends of a link with separate modules holding the
// same keys.
func pair(tb testing.TB) (a, b *Protector) {
	return NewProtector(newModule(tb), gen1), NewProtector(newModule(tb), gen1)
}

var testTime = time.Date(2025, 11, 21, 6, 30, 15, 0, time.UTC)

func sampleWithdrawal() *Withdrawal {
	return &Withdrawal{
		MTI:                  MTIFinancialRequest,
		ProcessingCode:       ProcCashWithdrawal,
		Amount:               FormatAmount(50000),
		TransmissionDateTime: FormatTransmissionDT(testTime),
		STAN:                 FormatSTAN(123),
		LocalTime:            FormatLocalTime(testTime),
		LocalDate:            FormatLocalDate(testTime),
		AcquirerID:           "12345678",
		RRN:                  "532506000123",
		TerminalID:           "ATM00001",
		TerminalLocation:     "Main St 1, Shanghai",
		Currency:             "156",
		PINBlock:             []byte{0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0},
		QRPayload:            "CQR1|ATM00001|50000|156|NONCE-7f3a9c|EXP=20251121063500|MAC=AB12CD34",
		CustomerID:           "CUST-0042-SECRET",
		DispenseNonce:        "254611E63B2531576314E86527338D61",
	}
}

// withDevice is sampleWithdrawal from a phone that sends its device ID
// (field 123).
func withDevice() *Withdrawal {
	w := sampleWithdrawal()
	w.DeviceID = "5E1F0C2A9B7D4E3F8A6B1C0D2E4F6A8B"
	return w
}

func mustBuild(tb testing.TB, v any) *iso8583.Message {
	tb.Helper()
	m, err := Build(v)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustSeal(tb testing.TB, p *Protector, v any) []byte {
	tb.Helper()
	raw, err := p.Seal(mustBuild(tb, v))
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}
