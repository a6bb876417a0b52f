package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpenDamagedPages keeps a real store's meta pages and overwrites its
// data pages with the fuzz input. Open must refuse with ErrCorrupt (or
// ErrForeign when the meta bucket itself is gone) or open a file whose
// contents can all be read and verified; it must never crash or hang.
func FuzzOpenDamagedPages(f *testing.F) {
	dir := f.TempDir()
	tmpl := filepath.Join(dir, "tmpl.db")
	db, err := Open(tmpl, Options{})
	if err != nil {
		f.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error {
		for _, id := range []string{"a", "b", "c"} {
			if err := tx.PutSession(id, []byte(`{"state":"created"}`)); err != nil {
				return err
			}
			if _, err := tx.AppendJournal(Entry{Kind: "NOTE", SessionID: id}); err != nil {
				return err
			}
			if _, err := tx.Enqueue("advice", id, []byte("x")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		f.Fatal(err)
	}
	db.Close()
	base, err := os.ReadFile(tmpl)
	if err != nil {
		f.Fatal(err)
	}
	const dataStart = 2 * 4096
	f.Add(base[dataStart:])
	f.Add(base[dataStart : dataStart+4096])
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		file := append([]byte(nil), base...)
		copy(file[dataStart:], data)
		path := filepath.Join(t.TempDir(), "atm.db")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := Open(path, Options{})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrForeign) && !errors.Is(err, ErrSchemaVersion) {
				t.Fatalf("Open = %v", err)
			}
			return
		}
		defer db.Close()
		if err := db.VerifyJournal(); err != nil && !errors.Is(err, ErrJournalBroken) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("VerifyJournal = %v", err)
		}
		_ = db.View(func(tx *Tx) error {
			_, _ = tx.QueueItems()
			_, _ = tx.UnitCounters()
			_, _ = tx.JournalTail(10)
			return tx.ForEachSession(func(string, []byte) error { return nil })
		})
		// Writing to an accepted file must not crash either.
		_ = db.Update(func(tx *Tx) error {
			_, err := tx.AppendJournal(Entry{Kind: "NOTE"})
			return err
		})
	})
}
