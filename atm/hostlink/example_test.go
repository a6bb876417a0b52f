package hostlink_test

import (
	"context"
	"fmt"
	"github.com/cardless-atm/cardless/atm/host"
	"os"
	"time"

	"github.com/cardless-atm/cardless/atm/hostlink"
	"github.com/cardless-atm/cardless/atm/hostlink/hostsim"
	"github.com/cardless-atm/cardless/atm/hostlink/internal/linktest"
	"github.com/cardless-atm/cardless/atm/wire"
)

// Example authorizes a withdrawal of 100.00 CNY against the host simulator,
// then sends the completion advice.
func Example() {
	t := exampleTB{}
	dir, _ := os.MkdirTemp("", "hostlink-example")
	defer os.RemoveAll(dir)
	keys := linktest.NewKeys(t)

	sim, err := hostsim.NewServer(linktest.Config(keys, dir, nil))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()

	client, err := hostlink.New(hostlink.Config{
		Addr:       sim.Addr(),
		TerminalID: linktest.TerminalID,
		HSM:        linktest.ATMModule(t, keys),                               // holds hsm.HostMAC and hsm.HostData
		Anchor:     func() (wire.Anchor, error) { return wire.Anchor{}, nil }, // the store's journal head and last STAN
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go client.Run(ctx)
	defer client.Close()
	for i := 0; i < 1000 && !client.Connected(); i++ {
		time.Sleep(10 * time.Millisecond)
	}

	req := host.AuthRequest{
		STAN: "000001", Amount: 10000, Currency: "156", CustomerID: "C-ALICE",
		PINBlock:      linktest.PINBlock(t, keys, "1234"), // from the phone, encrypted
		DeviceID:      linktest.Device,                    // the phone's, bound to C-ALICE
		DispenseNonce: linktest.Nonce(t),                  // from the dispenser
		Time:          time.Now(),
	}
	resp, err := client.Authorize(ctx, req)
	switch {
	case err != nil:
		fmt.Println("error:", err) // ErrOutcomeUnknown would mean: reverse
		return
	case !resp.Approved():
		fmt.Println("declined:", resp.ResponseCode)
		return
	}
	fmt.Println("approved, token present:", resp.Token != "")

	// ... dispense with resp.Token, then:
	err = client.Advise(ctx, host.Advice{STAN: "000002",
		Original: host.OriginalData{MTI: wire.MTIFinancialRequest, STAN: req.STAN, Time: req.Time},
		Amount:   req.Amount, Currency: "156"})
	fmt.Println("completion acknowledged:", err == nil)
	balance, _ := sim.Balance("C-ALICE")
	fmt.Println("balance:", balance)
	// Output:
	// approved, token present: true
	// completion acknowledged: true
	// balance: 490000
}

// exampleTB lets the test fixture helpers run in an Example.
// Fatal panics and Cleanup runs nothing: good enough for an Example.
type exampleTB struct{}

func (exampleTB) Helper()                   {}
func (exampleTB) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (exampleTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (exampleTB) Cleanup(func())            {}
