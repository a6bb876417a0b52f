//go:build unix

package lcdm_test

import (
	"testing"

	"github.com/cardless-atm/cardless/atm/dispenser/dispensertest"
)

// TestConformance runs the dispenser conformance suite against the driver
// on a pseudo-terminal with lcdmsim on the other end.
func TestConformance(t *testing.T) {
	dispensertest.Run(t, Harness)
}
