package ceremony_test

import (
	"os"

	"github.com/cardless-atm/cardless/hsm/ceremony"
)

// The vendor debug command for a key check value, as "atmctl crypto kcv".
func ExampleRun() {
	code := ceremony.Run([]string{"crypto", "kcv", "--key", "0123456789ABCDEFFEDCBA9876543210"}, os.Stdin, os.Stdout, os.Stderr)
	if code != ceremony.ExitOK {
		return
	}
	// Output: 08D7B4
}
