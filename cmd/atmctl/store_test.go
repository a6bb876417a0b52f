package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardless-atm/cardless/atm/store"
)

// TestStoreInit: a new terminal's store is created once, after the key
// ceremony, with its journal authenticated under the terminal's journal
// key; a second init refuses and leaves the store as it was.
func TestStoreInit(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile("../../configs/atm.json")
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	cfg := writeFile(t, dir, "atm.json", strings.Replace(string(b), `"dataDir": "var/atm"`, `"dataDir": "`+data+`"`, 1))
	init := func() (int, string, string) {
		var o, e bytes.Buffer
		code := storeCmd([]string{"init", "--config", cfg}, &o, &e)
		return code, o.String(), e.String()
	}
	dbPath := filepath.Join(data, "atm.db")
	if code, o, e := init(); code != 0 || o != "store created: "+dbPath+"\n" || e != "" {
		t.Fatalf("init: %d %q %q", code, o, e)
	}
	k, err := readKeyFile(writeFile(t, dir, "journal.key", journalKeyHex)) // configs/atm.json's journalMac
	if err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		db, err := store.Open(dbPath, store.Options{JournalAuth: k})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.VerifyJournal(); err != nil {
			t.Fatalf("the new store's journal: %v", err)
		}
		var kinds []string
		db.View(func(tx *store.Tx) error {
			return tx.JournalRange(0, func(e store.Entry) error { kinds = append(kinds, e.Kind); return nil })
		})
		if len(kinds) != 1 || kinds[0] != "STORE CREATED" {
			t.Fatalf("journal %q, want [STORE CREATED]", kinds)
		}
	}
	check()
	if code, o, e := init(); code != 1 || o != "" || e != "atmctl store init: appliance: the store already exists: "+dbPath+" (a store is created once, on a new terminal)\n" {
		t.Fatalf("second init: %d %q %q", code, o, e)
	}
	check()
	var o, e bytes.Buffer
	if code := storeCmd([]string{"init"}, &o, &e); code != 2 || !strings.HasPrefix(e.String(), "usage: atmctl store init --config FILE") {
		t.Fatalf("init without --config: %d %q", code, e.String())
	}
}
