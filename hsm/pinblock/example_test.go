package pinblock_test

import (
	"bytes"
	"fmt"

	"github.com/cardless-atm/cardless/hsm/pinblock"
)

func Example() {
	// crypto/rand.Reader in production; a fixed fill here for a stable output.
	fill := bytes.NewReader([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	block, err := pinblock.Format1("1234", fill)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%X\n", block)
	pin, err := pinblock.Parse(block)
	fmt.Println(len(pin), err)
	// Output:
	// 141234FFFFFFFFFF
	// 4 <nil>
}
