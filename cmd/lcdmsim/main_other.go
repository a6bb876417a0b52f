//go:build !unix

// Command lcdmsim needs a Unix pseudo-terminal; on other systems it only
// says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "lcdmsim: the LCDM simulator needs a Unix pseudo-terminal; it does not run on this system")
	os.Exit(1)
}
