package dispensersim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cardless-atm/cardless/atm/dispenser"
)

const stateVersion = 1

// UnitCounters are one cash unit's supply counters. Loaded = Count +
// Dispensed always holds; Rejected and Retracted count, among the dispensed
// notes, those purged to the reject bin and those taken back from the exit.
type UnitCounters struct {
	ID           string `json:"id"`
	Denomination int64  `json:"denomination"`
	Currency     string `json:"currency"`
	Count        int    `json:"count"`
	Inoperative  bool   `json:"inoperative,omitempty"`
	Loaded       int    `json:"loaded"`
	Dispensed    int    `json:"dispensed"`
	Rejected     int    `json:"rejected"`
	Retracted    int    `json:"retracted"`
}

// state is the device's persistent memory, saved whole to Config.StateFile
// after every change and before the command that made it returns.
type state struct {
	Version      int                     `json:"version"`
	Units        []UnitCounters          `json:"units"`
	NonceCounter uint64                  `json:"nonceCounter"`
	Fault        string                  `json:"fault,omitempty"`   // latched hardware fault, cleared by Reset
	Stacker      dispenser.Mix           `json:"stacker,omitempty"` // notes picked, inside the device (true count)
	Exit         dispenser.Mix           `json:"exit,omitempty"`    // notes presented at the exit slot
	Last         dispenser.PresentStatus `json:"last"`
	// DispenseID is the HMACSHA256 value (64 upper-case hex digits) of the
	// token that authorised the last dispense (Last), "" before the first.
	DispenseID string `json:"dispenseID,omitempty"`
}

func (s *state) clone() *state {
	c := *s
	c.Units = append([]UnitCounters(nil), s.Units...)
	c.Stacker = s.Stacker.Clone()
	c.Exit = s.Exit.Clone()
	c.Last = s.last()
	return &c
}

// last returns a copy of Last that shares no Mix with s.
func (s *state) last() dispenser.PresentStatus {
	l := s.Last
	l.Requested, l.Dispensed, l.Presented, l.Retracted = l.Requested.Clone(), l.Dispensed.Clone(), l.Presented.Clone(), l.Retracted.Clone()
	return l
}

func (s *state) unit(id string) *UnitCounters {
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

// loadState reads path; it returns (nil, nil) if the file does not exist.
func loadState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dispensersim: read state: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("dispensersim: state file %s is corrupt: %w", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("dispensersim: state file %s has version %d, want %d", path, st.Version, stateVersion)
	}
	return &st, nil
}

// saveState writes st to path atomically: a temporary file in the same
// directory, fsync, rename over path, fsync of the directory. A reader (or a
// process restarted after SIGKILL) sees either the old or the new state.
func saveState(path string, st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("dispensersim: encode state: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("dispensersim: save state: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("dispensersim: save state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("dispensersim: save state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("dispensersim: save state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("dispensersim: save state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("dispensersim: sync state dir: %w", err)
		}
	}
	return nil
}
