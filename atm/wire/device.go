package wire

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// DeviceIDLength is the length of a phone's device ID (field 123): 32
// upper-case hex digits, 128 random bits the app draws once, at its first
// start, and keeps in its private storage (docs/binding.md).
const DeviceIDLength = 32

// NewDeviceID returns a new random device ID, as a phone app makes one at
// its first start.
func NewDeviceID() (string, error) {
	var b [DeviceIDLength / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("wire: device ID: %w", err)
	}
	return strings.ToUpper(hex.EncodeToString(b[:])), nil
}

// ValidDeviceID reports whether s has the form of a device ID: exactly
// DeviceIDLength upper-case hex digits.
func ValidDeviceID(s string) bool {
	if len(s) != DeviceIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if upperHexVal(s[i]) > 15 {
			return false
		}
	}
	return true
}
