package hsm_test

import (
	"testing"

	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/hsmtest"
)

// TestConformance runs the module conformance suite on the software
// module.
func TestConformance(t *testing.T) {
	hsmtest.Run(t, func(t *testing.T) hsmtest.Module {
		s := hsm.NewSoft()
		t.Cleanup(func() { s.Close() })
		return s
	})
}
