package dispenser_test

import (
	"errors"
	"fmt"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

func ExampleDenominate() {
	units := []dispenser.CashUnit{
		{ID: "CST1", Denomination: 10000, Currency: "CNY", Count: 100, Status: dispenser.UnitOK}, // 100 yuan
		{ID: "CST2", Denomination: 5000, Currency: "CNY", Count: 0, Status: dispenser.UnitEmpty}, // 50 yuan
		{ID: "CST3", Denomination: 2000, Currency: "CNY", Count: 100, Status: dispenser.UnitOK},  // 20 yuan
	}
	mix, err := dispenser.Denominate(16000, units, 40) // 160 yuan
	if err != nil {
		panic(err)
	}
	amount, _ := mix.Amount(units)
	fmt.Println(mix, amount)

	_, err = dispenser.Denominate(15000, units, 40) // 150 yuan: no 50s left
	fmt.Println(errors.Is(err, dispenser.ErrNotDispensable), dispenser.Nearest(15000, units, 40, 2))
	// Output:
	// CST1:1 CST3:3 16000
	// true [12000 14000 16000 18000]
}

func ExampleBuildToken() {
	key := []byte("example token key, never log it!") // shared by host and device
	nonce := "254611E63B2531576314E86527338D61"       // from Common.GetCommandNonce

	// Host side: sign a token allowing at most 50.00 EUR.
	token, err := dispenser.BuildToken(nonce, 5000, "EUR", 2, dispenser.HMACSHA256(key))
	if err != nil {
		panic(err)
	}
	fmt.Println(token[:100])
	fmt.Println(len(token))

	// Device side: check it before moving any cash.
	fmt.Println(dispenser.VerifyToken(token, nonce, key, 5000, "EUR", 2))
	fmt.Println(dispenser.VerifyToken(token, nonce, key, 6000, "EUR", 2) != nil)
	fmt.Println(errors.Is(dispenser.VerifyToken(token, "00000000000000000000000000000000", key, 5000, "EUR", 2), dispenser.ErrInvalidTokenNonce))
	// Output:
	// NONCE=254611E63B2531576314E86527338D61,TOKENFORMAT=1,TOKENLENGTH=0164,DISPENSE1=50.00EUR,HMACSHA256=
	// 164
	// <nil>
	// true
	// true
}
