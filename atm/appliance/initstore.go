package appliance

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cardless-atm/cardless/atm/store"
)

// ErrStoreExists: InitStore found a store in the data directory already.
var ErrStoreExists = errors.New("appliance: the store already exists")

// InitStore creates a new terminal's store (dataDir/atm.db), its journal
// authenticated under the configured keys, and journals its creation. It is
// the commissioning step after the key ceremony (atmctl store init): it
// refuses a store that exists, so that it can never start a terminal over
// with empty daily totals, STANs and cassette counters. It returns the
// store's path.
func InitStore(cfg *Config, log *slog.Logger) (string, error) {
	dbPath := filepath.Join(cfg.DataDir, "atm.db")
	if _, err := os.Stat(dbPath); err == nil {
		return dbPath, fmt.Errorf("%w: %s (a store is created once, on a new terminal)", ErrStoreExists, dbPath)
	} else if !errors.Is(err, os.ErrNotExist) {
		return dbPath, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return dbPath, fmt.Errorf("dataDir: %w", err)
	}
	keys, err := openKeys(cfg.Keys, log)
	if err != nil {
		return dbPath, err
	}
	defer keys.Close()
	db, err := store.Open(dbPath, store.Options{JournalAuth: JournalAuth(keys)})
	if err != nil {
		return dbPath, err
	}
	err = db.Update(func(tx *store.Tx) error {
		_, err := tx.AppendJournal(store.Entry{Kind: "STORE CREATED", Text: "new terminal " + cfg.TerminalID + ": store created by atmctl store init"})
		return err
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dbPath)
		return dbPath, fmt.Errorf("store %s: %w", dbPath, err)
	}
	return dbPath, nil
}
