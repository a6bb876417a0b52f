package dispensersim_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/dispensersim"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "dispensersim")
	defer os.RemoveAll(dir)
	key := []byte("example token key, never log it!") // shared with the host

	sim, err := dispensersim.New(dispensersim.Config{
		Units: []dispenser.CashUnit{
			{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 100},
			{ID: "CST2", Denomination: 5000, Currency: "CNY", Count: 100},
		},
		MaxNotes:  40,
		TokenKey:  key,
		Exponent:  2, // CNY: 1 yuan = 100 fen
		StateFile: filepath.Join(dir, "dispenser.json"),
	})
	if err != nil {
		panic(err)
	}

	// The ATM picks the notes, gets the device's nonce, the host signs a token.
	st, _ := sim.Status(ctx)
	mix, _ := dispenser.Denominate(25000, st.Units, st.MaxNotes)
	nonce, _ := sim.CommandNonce(ctx)
	token, _ := dispenser.BuildToken(nonce, 25000, "CNY", 2, dispenser.HMACSHA256(key))

	res, err := sim.Dispense(ctx, mix, token)
	fmt.Println(res.Mix, res.Amount, err)
	fmt.Println(sim.Present(ctx))
	fmt.Println(sim.WaitTaken(ctx, 30*time.Second))

	// The same token never works twice.
	_, err = sim.Dispense(ctx, mix, token)
	fmt.Println(errors.Is(err, dispenser.ErrNoCommandNonce))

	// After a restart the device still knows what it paid.
	again, _ := dispensersim.New(dispensersim.Config{TokenKey: key, Exponent: 2, StateFile: filepath.Join(dir, "dispenser.json")})
	ps, _ := again.PresentStatus(ctx)
	fmt.Println(ps.State, ps.PaidAmount(), ps.Nonce == nonce)
	// Output:
	// CST1:2 CST2:1 25000 <nil>
	// <nil>
	// true <nil>
	// true
	// taken 25000 true
}
