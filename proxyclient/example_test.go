package proxyclient_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/cardless-atm/cardless/atm/qr"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/proxyclient"
	"github.com/cardless-atm/cardless/proxyclient/phonesim"
	"github.com/cardless-atm/cardless/proxyclient/proxysim"
)

func exampleKey() []byte {
	k := make([]byte, 16)
	_, _ = rand.Read(k)
	hsm.AdjustParity(k)
	return k
}

// The whole path on loopback: a proxy simulator, an ATM link whose handler
// pays the amount, and a phone sending a withdrawal for the ATM's QR code.
func Example() {
	tmk, phoneMAC, phoneData, appPIN := exampleKey(), exampleKey(), exampleKey(), exampleKey()
	proxy, err := proxysim.NewServer(proxysim.Config{
		Terminals:    map[string]proxysim.Terminal{"ATM1": {TMK: hex.EncodeToString(tmk), Location: "Main Street"}},
		PhoneMACKey:  hex.EncodeToString(phoneMAC),
		PhoneDataKey: hex.EncodeToString(phoneData),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer proxy.Close()

	atmHSM := hsm.NewSoft()
	defer atmHSM.Close()
	if _, err := atmHSM.ImportClearKey(hsm.TMK, tmk); err != nil {
		fmt.Println(err)
		return
	}
	client, err := proxyclient.New(proxyclient.Config{
		Addr: proxy.ATMAddr(), TerminalID: "ATM1", HSM: atmHSM,
		Handler: proxyclient.HandlerFunc(func(ctx context.Context, cmd proxyclient.Command) proxyclient.Result {
			// The ATM core checks the session, asks the host, dispenses.
			return proxyclient.Result{ResponseCode: "00", AuthCode: "654321", Dispensed: cmd.Amount}
		}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go client.Run(ctx)
	for i := 0; i < 1000 && !client.Status().SignedOn; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("signed on:", client.Status().SignedOn)

	// What the ATM would show as a QR code (its MAC is checked by the ATM).
	p := qr.Payload{TerminalID: "ATM1", Amount: 10000, Currency: "156",
		Nonce: "00112233445566778899AABBCCDDEEFF", Expiry: time.Now().Add(time.Minute)}
	text, _ := qr.Sign(&p, func(d []byte) ([]byte, error) { return hsm.RetailMAC(exampleKey(), d, hsm.PaddingMethod2) })

	out, err := phonesim.Withdraw(ctx, phonesim.Config{
		ProxyAddr: proxy.PhoneAddr(),
		MACKey:    hex.EncodeToString(phoneMAC), DataKey: hex.EncodeToString(phoneData), AppPINKey: hex.EncodeToString(appPIN),
	}, text, "CUSTOMER-1", "1234")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.ResponseCode, out.AuthCode, out.Dispensed, out.PaidInFull())
	// Output:
	// signed on: true
	// 00 654321 10000 true
}
