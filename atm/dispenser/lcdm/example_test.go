//go:build unix

package lcdm_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cardless-atm/cardless/atm/dispenser"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm"
	"github.com/cardless-atm/cardless/atm/dispenser/lcdm/lcdmsim"
)

// Example drives the simulator on a pseudo-terminal with the real clock:
// a nonce, a host-signed token, a dispense into the tray.
func Example() {
	dir, _ := os.MkdirTemp("", "lcdm-example")
	defer os.RemoveAll(dir)
	units := []dispenser.CashUnit{
		{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 100},
		{ID: "CST2", Denomination: 5000, Currency: "CNY", Count: 100},
	}
	sim, err := lcdmsim.Start(lcdmsim.Config{Units: units, StateFile: filepath.Join(dir, "device.json")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	key := []byte("host and dispenser share this key")
	ctx := context.Background()
	d, err := lcdm.Open(ctx, lcdm.Config{Port: sim.Path(), Units: units, TokenKey: key, Exponent: 2,
		StateFile: filepath.Join(dir, "driver.json")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()

	nonce, _ := d.CommandNonce(ctx)
	token, _ := dispenser.BuildToken(nonce, 25000, "CNY", 2, dispenser.HMACSHA256(key)) // the host signs
	res, err := d.Dispense(ctx, dispenser.Mix{"CST1": 2, "CST2": 1}, token)
	fmt.Println(res.Mix, res.Amount, err)
	fmt.Println(d.Present(ctx))      // no shutter: nothing to do
	fmt.Println(d.WaitTaken(ctx, 0)) // cannot sense taking: taken
	_, err = d.Retract(ctx)          // cannot retract
	fmt.Println(err)
	fmt.Println(sim.Remaining())
	// Output:
	// CST1:2 CST2:1 25000 <nil>
	// <nil>
	// true <nil>
	// dispenser: no items to retract: the LCDM cannot retract; delivered notes are in the customer's tray
	// map[CST1:98 CST2:99]
}
