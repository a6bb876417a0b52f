package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/cardless-atm/cardless/atm/store"
)

// storeCmd: atmctl store compact --data-dir DIR (the appliance stopped):
// gives the space of pruned journal entries and old records back to the
// disk (docs/control.md, journal retention).
func storeCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "compact" {
		fmt.Fprintln(stderr, "usage: atmctl store compact --data-dir DIR   (stop the appliance first)")
		return 2
	}
	fs := flags("store compact")
	dir := fs.String("data-dir", "", "the appliance's dataDir (holding atm.db)")
	if err := fs.Parse(args[1:]); err != nil || *dir == "" {
		fmt.Fprintln(stderr, "usage: atmctl store compact --data-dir DIR   (stop the appliance first)")
		return 2
	}
	before, after, err := store.CompactFile(filepath.Join(*dir, "atm.db"), nil)
	if err != nil {
		fmt.Fprintln(stderr, "atmctl store compact:", err)
		return 1
	}
	fmt.Fprintf(stdout, "store compacted: %d bytes -> %d bytes\n", before, after)
	return 0
}
