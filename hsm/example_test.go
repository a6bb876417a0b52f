package hsm_test

import (
	"encoding/hex"
	"fmt"

	"github.com/cardless-atm/cardless/hsm"
)

// The key check value of the published test key.
func ExampleKCVOf() {
	key, _ := hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	kcv, _ := hsm.KCVOf(key)
	fmt.Println(kcv)
	// Output: 08D7B4
}

// Load a key into a software module and compute the ISO/IEC 9797-1
// Annex B retail MAC (algorithm 3, padding method 1) of its sample text.
func ExampleSoft() {
	s := hsm.NewSoft()
	defer s.Close()
	key, _ := hex.DecodeString("0123456789ABCDEFFEDCBA9876543210")
	kcv, err := s.ImportClearKey(hsm.TAK, key)
	if err != nil {
		fmt.Println(err)
		return
	}
	mac, _ := s.GenerateMAC(hsm.TAK, []byte("Now is the time for all "), hsm.PaddingMethod1)
	fmt.Println("KCV", kcv)
	fmt.Printf("MAC %X\n", mac)
	// Output:
	// KCV 08D7B4
	// MAC A1C72E74EA3FA9B6
}
