package atm

import (
	"errors"
	"path/filepath"

	"github.com/cardless-atm/cardless/atm/diskspace"
	"github.com/cardless-atm/cardless/atm/store"
)

// DefaultMinFreeBytes is Config.MinFreeBytes's default: the terminal goes
// out of service ("disk_low") when the store's file system has less free
// space than this, well before a commit could fail.
const DefaultMinFreeBytes = 64 << 20

// A store that cannot be written (a full or failing disk) keeps the
// terminal out of service ("storage") with an ALARM, from the first failed
// write until a probe write succeeds again (statusLoop, every
// StatusInterval); nothing a customer does can bring it back in between. A
// failed commit of a session step stops the core as before (ErrStorage):
// recovery settles the session after the restart.

// storageFailed records that a write failed.
func (a *ATM) storageFailed(err error) {
	if !a.storageBad.Swap(true) {
		a.log.Error("ALARM the store cannot be written; out of service until a write succeeds", "err", err)
	}
}

// checkStorage runs on the status loop: while the store is failing it
// tries a small write, and it compares the free space with MinFreeBytes.
func (a *ATM) checkStorage() {
	if a.storageBad.Load() {
		err := a.db.UpdateLabeled("storage-probe", func(tx *store.Tx) error {
			_, err := tx.AddCounter("storage_probe", 1)
			return err
		})
		if err == nil {
			a.storageBad.Store(false)
			a.log.Warn("the store can be written again")
		}
	}
	if a.cfg.MinFreeBytes < 0 {
		return
	}
	free, err := a.cfg.FreeSpace()
	switch {
	case errors.Is(err, diskspace.ErrUnsupported):
		if !a.freeUnknownLogged {
			a.freeUnknownLogged = true
			a.log.Warn("free disk space cannot be checked on this platform; the terminal relies on failed writes alone")
		}
		return
	case err != nil:
		a.log.Warn("free disk space", "err", err)
		return
	}
	low := free < uint64(a.cfg.MinFreeBytes)
	if was := a.diskLow.Swap(low); low && !was {
		a.log.Error("ALARM free disk space below the minimum; out of service", "free", free, "minimum", a.cfg.MinFreeBytes)
	} else if !low && was {
		a.log.Warn("free disk space back above the minimum", "free", free)
	}
}

// defaultFreeSpace measures the file system of the store.
func defaultFreeSpace(db *store.DB) func() (uint64, error) {
	return func() (uint64, error) { return diskspace.Free(filepath.Dir(db.Path())) }
}
