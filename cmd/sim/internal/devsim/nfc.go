package devsim

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cardless-atm/cardless/atm/nfc"
)

// withNFC writes a copy of the ATM's configuration at path with an nfc
// section for the virtual reader (startReader) and the development AID,
// and returns the copy's path.
func (r *run) withNFC(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	cfg["nfc"] = map[string]any{"reader": r.reader, "aid": strings.ToUpper(hex.EncodeToString(nfc.DefaultAID))}
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", err
	}
	copyPath := filepath.Join(r.o.Var, strings.TrimSuffix(filepath.Base(path), ".json")+"-nfc.json")
	return copyPath, os.WriteFile(copyPath, out, 0o600)
}
