//go:build cgo

package p11

import (
	"crypto/subtle"
	"fmt"

	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/tr31"
	"github.com/miekg/pkcs11"
)

var (
	_ hsm.KeyBlockImporter  = (*Module)(nil)
	_ hsm.KeyBlockGenerator = (*Module)(nil)
)

// PKCS#11 has no TR-31 mechanism. The KBPK stays in the token: the CMACs
// that derive the key block encryption and MAC keys are computed with
// CKM_DES3_ECB under it (a one-block CMAC is E(K)(data XOR K1), K1 the
// doubled encryption of a zero block). The derived keys and the key the
// block carries pass through memory, so key blocks need
// clearKeyFallback; the key is then created in the token bound to the
// block's usage.

// derived returns the key block encryption and MAC keys of the KBPK
// object kh (version B).
func (m *Module) derived(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, kh pkcs11.ObjectHandle) (kbek, kbmk []byte, err error) {
	l, err := encrypt(ctx, s, kh, pkcs11.CKM_DES3_ECB, zeroBlock)
	if err != nil {
		return nil, nil, err
	}
	k1 := double(l)
	a, err := ctx.GetAttributeValue(s, kh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
	if err != nil {
		return nil, nil, fmt.Errorf("p11: C_GetAttributeValue(CKA_KEY_TYPE): %w", err)
	}
	n := 16
	if bytesToUint(a[0].Value) == pkcs11.CKK_DES3 {
		n = 24
	}
	encData, macData, err := tr31.DerivationB(n)
	if err != nil {
		return nil, nil, err
	}
	cmac := func(data [][]byte) ([]byte, error) {
		var out []byte
		for _, d := range data {
			x := make([]byte, 8)
			subtle.XORBytes(x, d, k1)
			c, err := encrypt(ctx, s, kh, pkcs11.CKM_DES3_ECB, x)
			if err != nil {
				return nil, err
			}
			out = append(out, c...)
		}
		return out[:n], nil
	}
	if kbek, err = cmac(encData); err != nil {
		return nil, nil, err
	}
	if kbmk, err = cmac(macData); err != nil {
		zero(kbek)
		return nil, nil, err
	}
	return kbek, kbmk, nil
}

// derivedOf returns the key block encryption and MAC keys of the key
// block protection key named kbpk, whose usage must allow wrapping.
func (m *Module) derivedOf(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, kbpk hsm.KeyName) (kbek, kbmk []byte, err error) {
	kh, err := m.tdesFor(ctx, s, kbpk, hsm.OpWrap)
	if err != nil {
		return nil, nil, fmt.Errorf("key block protection key: %w", err)
	}
	return m.derived(ctx, s, kh)
}

// double is the SP 800-38B doubling in GF(2^64).
func double(b []byte) []byte {
	out := make([]byte, len(b))
	var carry byte
	for i := len(b) - 1; i >= 0; i-- {
		out[i] = b[i]<<1 | carry
		carry = b[i] >> 7
	}
	if carry == 1 {
		out[len(out)-1] ^= 0x1B
	}
	return out
}

func (m *Module) needFallback(what string) error {
	if m.cfg.ClearKeyFallback {
		return nil
	}
	return fmt.Errorf("%w: %s: PKCS#11 has no TR-31 mechanism, and opening a key block in memory needs clearKeyFallback", ErrMechanism, what)
}

// ImportKeyBlock implements hsm.KeyBlockImporter (version B; see above).
func (m *Module) ImportKeyBlock(kbpk, name hsm.KeyName, block string) (h tr31.Header, kcvOut string, err error) {
	if err := checkName(name); err != nil {
		return h, "", err
	}
	if err := m.needFallback("import of key block " + string(name)); err != nil {
		return h, "", err
	}
	err = m.session(func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error {
		kbek, kbmk, err := m.derivedOf(ctx, s, kbpk)
		if err != nil {
			return err
		}
		defer zero(kbek)
		defer zero(kbmk)
		hdr, key, err := tr31.UnwrapDerived(kbek, kbmk, block)
		if err != nil {
			return err
		}
		defer zero(key)
		u, err := hsm.UsageOf(hdr)
		if err != nil {
			return err
		}
		if len(key) != 16 && len(key) != 24 {
			return fmt.Errorf("%w: the key block holds a %d-byte key", hsm.ErrKeyLength, len(key))
		}
		return m.replace(ctx, s, name, func(label string) (map[string]pkcs11.ObjectHandle, error) {
			set, err := m.createTDESUsage(ctx, s, label, key, u)
			if err == nil {
				kcvOut, err = kcv(ctx, s, set[roleKey])
			}
			h = hdr
			return set, err
		})
	})
	return h, kcvOut, err
}

// GenerateKeyBlock implements hsm.KeyBlockGenerator (version B; see
// above): a random key from the token, created in it with the usage of h
// and returned in a key block under kbpk.
func (m *Module) GenerateKeyBlock(kbpk, name hsm.KeyName, h tr31.Header) (block, kcvOut string, err error) {
	if err := checkName(name); err != nil {
		return "", "", err
	}
	u, err := hsm.UsageOf(h)
	if err != nil {
		return "", "", err
	}
	if h.Version != 'B' {
		return "", "", fmt.Errorf("%w %q: this module issues version B", tr31.ErrVersion, h.Version)
	}
	if err := m.needFallback("key block for " + string(name)); err != nil {
		return "", "", err
	}
	err = m.session(func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error {
		kbek, kbmk, err := m.derivedOf(ctx, s, kbpk)
		if err != nil {
			return err
		}
		defer zero(kbek)
		defer zero(kbmk)
		key, err := ctx.GenerateRandom(s, 16)
		if err != nil {
			return fmt.Errorf("p11: C_GenerateRandom: %w", err)
		}
		defer zero(key)
		hsm.AdjustParity(key)
		if block, err = tr31.WrapDerived(kbek, kbmk, h, key, nil); err != nil {
			return err
		}
		return m.replace(ctx, s, name, func(label string) (map[string]pkcs11.ObjectHandle, error) {
			set, err := m.createTDESUsage(ctx, s, label, key, u)
			if err == nil {
				kcvOut, err = kcv(ctx, s, set[roleKey])
			}
			return set, err
		})
	})
	if err != nil {
		return "", "", err
	}
	return block, kcvOut, nil
}
