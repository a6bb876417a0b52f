package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/operators"
)

const operatorUsage = `usage: atmctl operator add --data-dir DIR --id ID
  sets operator ID's PIN or passphrase (read from standard input, one line)
  in DIR/operators.json, stored only as a salted scrypt hash; the control
  endpoint's operator routes take them as HTTP Basic credentials`

// operatorCmd runs "atmctl operator ...": exit 0, or 2 with a message on
// stderr for bad input.
func operatorCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(stderr, operatorUsage)
		return 2
	}
	fs := flag.NewFlagSet("operator add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data-dir", "", "the appliance's data directory (dataDir of atm.json)")
	id := fs.String("id", "", "operator ID (1-16 letters, digits, '.', '_', '-')")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *dir == "" || *id == "" {
		fmt.Fprintln(stderr, operatorUsage)
		return 2
	}
	secret, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(stderr, "atmctl: reading the PIN or passphrase:", err)
		return 2
	}
	secret = strings.TrimRight(secret, "\r\n")
	path := filepath.Join(*dir, appliance.OperatorsFile)
	f, err := operators.Open(path, nil)
	if err == nil {
		err = f.Add(*id, secret)
	}
	if err != nil {
		fmt.Fprintln(stderr, "atmctl:", err)
		return 2
	}
	fmt.Fprintf(stdout, "operator %s set in %s\n", *id, path)
	return 0
}
