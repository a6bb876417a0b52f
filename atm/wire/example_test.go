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

// A host answers a terminal's reconciliation request (0500) with its
// totals of the business day; the terminal reads them back from the 0510.
func ExampleReconTotals() {
	req := wire.Reconciliation{MTI: wire.MTIReconRequest, STAN: "000126", SettlementDate: "1121",
		TerminalID: "ATM00001", SettlementCurrency: "156"}
	ans := req.Response()
	ans.ResponseCode = wire.RCApproved
	host := wire.ReconTotals{Approved: wire.Total{Count: 3, Amount: 90000}, Reversals: wire.Total{Count: 1, Amount: 20000},
		Advices: wire.Total{Count: 2, Amount: 70000}, NetDebit: 70000}
	if err := host.Put(&ans); err != nil {
		panic(err)
	}
	fmt.Println(ans.DebitsNumber, ans.DebitsAmount, ans.NetSettlement, ans.AdviceTotals)
	got, err := wire.ParseReconTotals(ans)
	fmt.Printf("%+v %v\n", got, err)
	// Output:
	// 0000000003 0000000000090000 D0000000000070000 00000000020000000000070000
	// {Approved:{Count:3 Amount:90000} Reversals:{Count:1 Amount:20000} Advices:{Count:2 Amount:70000} NetDebit:70000} <nil>
}
