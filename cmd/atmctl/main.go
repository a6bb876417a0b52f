// Command atmctl is the operator and vendor tool for the appliance's keys:
// key ceremony (load-tmk), key listing, storage key creation, crypto debug
// commands (the logic lives in package
// github.com/cardless-atm/cardless/hsm/ceremony), operator credentials
// (atmctl operator add) and the electronic journal: atmctl journal verify
// --control ADDR (the live journal), atmctl journal verify [--key-file F]
// SEGMENT... (exported segments, offline, in order), atmctl journal export
// --control ADDR --out FILE, atmctl journal find (--control ADDR |
// SEGMENT...) --session ID | --rrn RRN | --customer ID, and atmctl store
// compact --data-dir DIR (appliance stopped). Run "atmctl help".
package main

import (
	"os"

	"github.com/cardless-atm/cardless/hsm/ceremony"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "operator" {
		os.Exit(operatorCmd(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "store" {
		os.Exit(storeCmd(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "journal" {
		if handled, code := journalCmd(os.Args[2:], os.Stdout, os.Stderr); handled {
			os.Exit(code)
		}
	}
	os.Exit(ceremony.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
