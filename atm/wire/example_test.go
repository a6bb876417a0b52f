package wire_test

import (
	"fmt"
	"strings"

	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
)

// Two ends of a link share keys; one seals a withdrawal request, the other
// opens it. Field 120 is encrypted on the wire and clear after Open.
func Example() {
	keys := wire.KeySet{NetMgmtMAC: "tmk.mac", MAC: hsm.TAK, Data: hsm.TEK}
	end := func() *wire.Protector {
		s := hsm.NewSoft()
		s.ImportClearKey(hsm.TMK, []byte("\x01\x23\x45\x67\x89\xAB\xCD\xEF\xFE\xDC\xBA\x98\x76\x54\x32\x10"))
		s.DeriveVariant(hsm.TMK, "tmk.mac", wire.NetMgmtVariant)
		s.ImportClearKey(hsm.TAK, []byte("\x01\x01\x01\x01\x01\x01\x01\x01\x02\x02\x02\x02\x02\x02\x02\x02"))
		s.ImportClearKey(hsm.TEK, []byte("\x04\x04\x04\x04\x04\x04\x04\x04\x07\x07\x07\x07\x07\x07\x07\x07"))
		return wire.NewProtector(s, keys)
	}
	atm, proxy := end(), end()

	req, err := wire.Build(&wire.Withdrawal{
		MTI:            wire.MTIFinancialRequest,
		ProcessingCode: wire.ProcCashWithdrawal,
		Amount:         wire.FormatAmount(50000),
		STAN:           "000123",
		TerminalID:     "ATM00001",
		CustomerID:     "customer-42",
	})
	if err != nil {
		panic(err)
	}
	raw, err := atm.Seal(req)
	if err != nil {
		panic(err)
	}
	// wire.Framer{}.WriteFrame(conn, raw) would put it on the wire.

	got, err := proxy.Open(raw)
	if err != nil {
		panic(err)
	}
	var w wire.Withdrawal
	wire.Parse(got, &w)
	fmt.Println(w.MTI, w.Amount, w.STAN, w.TerminalID, w.CustomerID)

	i := strings.Index(string(raw), "000000050000")
	raw[i+6] = '9' // 500.00 becomes 900.00 in transit
	_, err = proxy.Open(raw)
	fmt.Println(err)
	// Output:
	// 0200 000000050000 000123 ATM00001 customer-42
	// wire: message 0200 stan 000123: MAC verification failed (field 128)
}
