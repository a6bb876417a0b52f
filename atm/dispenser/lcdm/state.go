package lcdm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

const stateVersion = 1

// unitState is one cassette as the driver counts it: the device itself
// does not count cassettes.
type unitState struct {
	ID           string `json:"id"`
	Denomination int64  `json:"denomination"`
	Currency     string `json:"currency"`
	Count        int    `json:"count"`
	Inoperative  bool   `json:"inoperative,omitempty"`
	// BillEnd: the device reported this cassette empty (0x38/0x40) while
	// the count says notes are left; the unit is reported empty until a
	// Reset (after the operator looked at it).
	BillEnd  bool `json:"billEnd,omitempty"`
	Loaded   int  `json:"loaded"`
	Picked   int  `json:"picked"`   // left the cassette
	Rejected int  `json:"rejected"` // of those, diverted or purged to the reject tray
}

// state is the driver's persistent memory, written atomically (temporary
// file, fsync, rename, directory fsync) before a method that changed it
// returns.
type state struct {
	Version int         `json:"version"`
	Units   []unitState `json:"units"`
	// NonceCounter is the end of the reserved block of nonce counters.
	NonceCounter uint64 `json:"nonceCounter"`
	// PurgeNeeded: a fault (or a dispense whose end the driver did not
	// see) may have left notes in the transport; Dispense is refused until
	// a purge (Reset, or the purge at start).
	PurgeNeeded bool `json:"purgeNeeded,omitempty"`
	// Fault is the device error of the fault, for Status and logs.
	Fault string                  `json:"fault,omitempty"`
	Last  dispenser.PresentStatus `json:"last"`
}

func (s *state) clone() *state {
	c := *s
	c.Units = append([]unitState(nil), s.Units...)
	c.Last = s.last()
	return &c
}

func (s *state) last() dispenser.PresentStatus {
	l := s.Last
	l.Requested, l.Dispensed, l.Presented, l.Retracted = l.Requested.Clone(), l.Dispensed.Clone(), l.Presented.Clone(), l.Retracted.Clone()
	return l
}

func (s *state) unit(id string) *unitState {
	for i := range s.Units {
		if s.Units[i].ID == id {
			return &s.Units[i]
		}
	}
	return nil
}

func (s *state) cashUnits() []dispenser.CashUnit {
	out := make([]dispenser.CashUnit, len(s.Units))
	for i, u := range s.Units {
		out[i] = dispenser.CashUnit{ID: u.ID, Denomination: u.Denomination, Currency: u.Currency, Count: u.Count}
	}
	return out
}

func (s *state) amount(m dispenser.Mix) int64 {
	a, _ := m.Amount(s.cashUnits())
	return a
}

func loadState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lcdm: read state: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("lcdm: state file %s is corrupt: %w", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("lcdm: state file %s has version %d, want %d", path, st.Version, stateVersion)
	}
	return &st, nil
}

// saveState writes v to path atomically: a reader, or a process restarted
// after SIGKILL, sees the old or the new content, never a mix.
func saveState(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("lcdm: encode state: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("lcdm: save state: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("lcdm: save state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("lcdm: save state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("lcdm: save state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("lcdm: save state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("lcdm: sync state dir: %w", err)
		}
	}
	return nil
}

// SaveFile writes v as JSON to path atomically (temporary file, fsync,
// rename, directory fsync). The simulator uses it for its own memory.
func SaveFile(path string, v any) error { return saveState(path, v) }
