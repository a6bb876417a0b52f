//go:build cgo

package proxyclient_test

import (
	"testing"

	"github.com/cardless-atm/cardless/hsm/p11"
	"github.com/cardless-atm/cardless/hsm/p11/softhsm"
)

// The protected round trip with the link keys in a SoftHSM2 token: every
// MAC, verification, encryption and decryption is a PKCS#11 call.
func init() {
	benchModules = append(benchModules, struct {
		name string
		open func(b *testing.B) benchModule
	}{"softhsm2", func(b *testing.B) benchModule {
		softhsm.Token(b, "bench")
		m, err := p11.Open(p11.Config{Library: softhsm.Library, TokenLabel: "bench", PIN: softhsm.PIN})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close() })
		return m
	}})
}
