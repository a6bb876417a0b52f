package store

import (
	"strconv"
	"testing"
)

// BenchmarkUpdateSessionJournalQueue is the "bbolt commit floor": one
// fsynced Update writing a session, a journal entry and a queue item.
func BenchmarkUpdateSessionJournalQueue(b *testing.B) {
	db, err := Open(b.TempDir()+"/bench.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	session := []byte(`{"id":"s","state":"AUTHORIZED","amount":10000,"currency":"EUR","stan":"000123"}`)
	i := 0
	for b.Loop() {
		i++
		id := "s" + strconv.Itoa(i)
		if err := db.Update(func(tx *Tx) error {
			if err := tx.PutSession(id, session); err != nil {
				return err
			}
			if _, err := tx.AppendJournal(Entry{Kind: "AUTHORIZED", SessionID: id, Text: "amount 100.00 EUR"}); err != nil {
				return err
			}
			_, err := tx.Enqueue("advice", id+"/advice", session)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyJournal1000 measures a full chain check of 1000 entries.
func BenchmarkVerifyJournal1000(b *testing.B) {
	db, err := Open(b.TempDir()+"/bench.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *Tx) error {
		for i := 0; i < 1000; i++ {
			if _, err := tx.AppendJournal(Entry{Kind: "NOTE", Text: "entry " + strconv.Itoa(i)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := db.VerifyJournal(); err != nil {
			b.Fatal(err)
		}
	}
}
