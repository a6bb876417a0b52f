package wire

import (
	"testing"

	"github.com/cardless-atm/cardless/hsm"
)

func BenchmarkSealOpen0200(b *testing.B) {
	atm, proxy := pair(b)
	m := mustBuild(b, sampleWithdrawal())
	b.ReportAllocs()
	for b.Loop() {
		raw, err := atm.Seal(m)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := proxy.Open(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncrypt3DES1K(b *testing.B) {
	s := newModule(b)
	data := make([]byte, 1024)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := s.Encrypt("tek.1", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMAC1K(b *testing.B) {
	s := newModule(b)
	data := make([]byte, 1024)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := s.GenerateMAC("tak.1", data, hsm.PaddingMethod2); err != nil {
			b.Fatal(err)
		}
	}
}
