package wire

import "testing"

func TestNewDeviceID(t *testing.T) {
	a, err := NewDeviceID()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewDeviceID()
	if err != nil {
		t.Fatal(err)
	}
	if !ValidDeviceID(a) || !ValidDeviceID(b) {
		t.Fatalf("NewDeviceID gave %q and %q, not %d upper-case hex digits", a, b, DeviceIDLength)
	}
	if a == b {
		t.Fatalf("two device IDs are both %s", a)
	}
}

func TestValidDeviceID(t *testing.T) {
	for s, want := range map[string]bool{
		"5E1F0C2A9B7D4E3F8A6B1C0D2E4F6A8B":  true,
		"00000000000000000000000000000000":  true,
		"5e1f0c2a9b7d4e3f8a6b1c0d2e4f6a8b":  false, // lower case
		"5E1F0C2A9B7D4E3F8A6B1C0D2E4F6A8":   false, // 31
		"5E1F0C2A9B7D4E3F8A6B1C0D2E4F6A8B0": false, // 33
		"5E1F0C2A9B7D4E3F8A6B1C0D2E4F6A8G":  false,
		"5E1F0C2A-9B7D-4E3F-8A6B-1C0D2E4F":  false,
		"":                                  false,
	} {
		if got := ValidDeviceID(s); got != want {
			t.Errorf("ValidDeviceID(%q) = %v, want %v", s, got, want)
		}
	}
}
