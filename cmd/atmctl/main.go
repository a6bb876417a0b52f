// Command atmctl is the operator and vendor tool for the appliance's keys:
// key ceremony (load-tmk), key listing, storage key creation, crypto debug
// commands, and operator credentials (atmctl operator add). Run "atmctl help" for usage; the logic lives in package
// github.com/cardless-atm/cardless/hsm/ceremony.
package main

import (
	"os"

	"github.com/cardless-atm/cardless/hsm/ceremony"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "operator" {
		os.Exit(operatorCmd(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(ceremony.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
