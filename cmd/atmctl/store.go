package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/cardless-atm/cardless/atm/appliance"
	"github.com/cardless-atm/cardless/atm/store"
)

const storeUsage = `usage: atmctl store init --config FILE          (a new terminal, after the key ceremony)
       atmctl store compact --data-dir DIR      (stop the appliance first)`

// storeCmd: atmctl store init --config FILE creates a new terminal's store
// (appliance.InitStore); atmctl store compact --data-dir DIR (the
// appliance stopped) gives the space of pruned journal entries and old
// records back to the disk (docs/control.md, journal retention).
func storeCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "init" {
		return storeInit(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "compact" {
		fmt.Fprintln(stderr, storeUsage)
		return 2
	}
	fs := flags("store compact")
	dir := fs.String("data-dir", "", "the appliance's dataDir (holding atm.db)")
	if err := fs.Parse(args[1:]); err != nil || *dir == "" {
		fmt.Fprintln(stderr, storeUsage)
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

func storeInit(args []string, stdout, stderr io.Writer) int {
	fs := flags("store init")
	cfgPath := fs.String("config", "", "the appliance's atm.json")
	if err := fs.Parse(args); err != nil || *cfgPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, storeUsage)
		return 2
	}
	cfg, err := appliance.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "atmctl store init:", err)
		return 2
	}
	path, err := appliance.InitStore(cfg, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		fmt.Fprintln(stderr, "atmctl store init:", err)
		return 1
	}
	fmt.Fprintf(stdout, "store created: %s\n", path)
	return 0
}
