//go:build cgo

package p11

import (
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/cardless-atm/cardless/hsm"
	"github.com/miekg/pkcs11"
)

func mech(m uint) []*pkcs11.Mechanism {
	switch m {
	case pkcs11.CKM_DES3_CBC, pkcs11.CKM_DES_CBC:
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(m, make([]byte, 8))} // zero IV
	}
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(m, nil)}
}

func encrypt(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, h pkcs11.ObjectHandle, m uint, data []byte) ([]byte, error) {
	if err := ctx.EncryptInit(s, mech(m), h); err != nil {
		return nil, fmt.Errorf("p11: C_EncryptInit: %w", err)
	}
	out, err := ctx.Encrypt(s, data)
	if err != nil {
		return nil, fmt.Errorf("p11: C_Encrypt: %w", err)
	}
	return out, nil
}

func decrypt(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, h pkcs11.ObjectHandle, m uint, data []byte) ([]byte, error) {
	if err := ctx.DecryptInit(s, mech(m), h); err != nil {
		return nil, fmt.Errorf("p11: C_DecryptInit: %w", err)
	}
	out, err := ctx.Decrypt(s, data)
	if err != nil {
		return nil, fmt.Errorf("p11: C_Decrypt: %w", err)
	}
	return out, nil
}

// kcv encrypts a zero block under the key object inside the token.
func kcv(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, h pkcs11.ObjectHandle) (string, error) {
	out, err := encrypt(ctx, s, h, pkcs11.CKM_DES3_ECB, zeroBlock)
	if err != nil {
		return "", err
	}
	return strings.ToUpper(hex.EncodeToString(out[:3])), nil
}

// KCV implements hsm.Module.
func (m *Module) KCV(name hsm.KeyName) (out string, err error) {
	err = m.session(func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error {
		h, err := m.tdes(ctx, s, name, roleKey)
		if err == nil {
			out, err = kcv(ctx, s, h)
		}
		return err
	})
	return out, err
}

func checkClearTDES(key []byte) error {
	if len(key) != 16 && len(key) != 24 {
		return fmt.Errorf("%w: 3DES keys are 16 or 24 bytes, got %d", hsm.ErrKeyLength, len(key))
	}
	if !hsm.HasOddParity(key) {
		return hsm.ErrKeyParity
	}
	return nil
}

// ImportClearKey implements hsm.ClearKeyImporter: the key ceremony and
// development keys, whose clear value the caller already holds.
func (m *Module) ImportClearKey(name hsm.KeyName, key []byte) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if err := checkClearTDES(key); err != nil {
		return "", err
	}
	var out string
	err := m.session(func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error {
		return m.replace(ctx, s, name, func(label string) (map[string]pkcs11.ObjectHandle, error) {
			set, err := m.createTDES(ctx, s, label, key)
			if err == nil {
				out, err = kcv(ctx, s, set[roleKey])
			}
			return set, err
		})
	})
	return out, err
}

// FormKey implements hsm.ClearKeyImporter, with the rules of hsm.Soft: two
// or three odd-parity components of one length, XORed, adjusted to odd
// parity.
func (m *Module) FormKey(name hsm.KeyName, components ...[]byte) ([]string, string, error) {
	if err := checkName(name); err != nil {
		return nil, "", err
	}
	if len(components) < 2 || len(components) > 3 {
		return nil, "", fmt.Errorf("hsm: a key is formed from 2 or 3 components, got %d", len(components))
	}
	n := len(components[0])
	kcvs := make([]string, len(components))
	for i, c := range components {
		if len(c) != n {
			return nil, "", fmt.Errorf("%w: component %d is %d bytes, component 1 is %d", hsm.ErrKeyLength, i+1, len(c), n)
		}
		if err := checkClearTDES(c); err != nil {
			return nil, "", fmt.Errorf("component %d: %w", i+1, err)
		}
		k, err := hsm.KCVOf(c)
		if err != nil {
			return nil, "", err
		}
		kcvs[i] = k
	}
	k := make([]byte, n)
	defer zero(k)
	for _, c := range components {
		subtle.XORBytes(k, k, c)
	}
	hsm.AdjustParity(k)
	kcv, err := m.ImportClearKey(name, k)
	if err != nil {
		return nil, "", err
	}
	return kcvs, kcv, nil
}

// ImportKey implements hsm.Module. Where the token unwraps with
// CKM_DES3_ECB and extracts the first DES part with
// CKM_EXTRACT_KEY_FROM_KEY, the key never leaves it; otherwise, with
// clearKeyFallback, it is decrypted under the KEK inside the token and
// created from its clear value, which is zeroed after.
func (m *Module) ImportKey(kek, name hsm.KeyName, encrypted []byte, wantKCV string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if len(encrypted) != 16 && len(encrypted) != 24 {
		return fmt.Errorf("%w: 3DES keys are 16 or 24 bytes, got %d", hsm.ErrKeyLength, len(encrypted))
	}
	return m.session(func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error {
		kh, err := m.tdesFor(ctx, s, kek, hsm.OpWrap)
		if err != nil {
			return err
		}
		return m.replace(ctx, s, name, func(label string) (map[string]pkcs11.ObjectHandle, error) {
			var set map[string]pkcs11.ObjectHandle
			switch {
			case m.caps.UnwrapDES3 && m.caps.ExtractKey:
				set, err = unwrapTDES(ctx, s, kh, label, encrypted)
			case m.cfg.ClearKeyFallback:
				clear, err := decrypt(ctx, s, kh, pkcs11.CKM_DES3_ECB, encrypted)
				if err != nil {
					return nil, err
				}
				defer zero(clear)
				set, err = m.createTDES(ctx, s, label, clear)
				if err != nil {
					return set, err
				}
			default:
				return nil, fmt.Errorf("%w: import of %s under %s needs CKM_DES3_ECB unwrap and CKM_EXTRACT_KEY_FROM_KEY: %v", ErrMechanism, name, kek, errNoClear)
			}
			if err != nil {
				return set, err
			}
			got, err := kcv(ctx, s, set[roleKey])
			if err != nil {
				return set, err
			}
			if !strings.EqualFold(got, wantKCV) {
				return set, fmt.Errorf("%w: %s: expected %s, got %s", hsm.ErrKCVMismatch, name, strings.ToUpper(wantKCV), got)
			}
			return set, nil
		})
	})
}

// unwrapTDES unwraps a 3DES key under the KEK and derives its first DES
// part, both inside the token. (Not available on SoftHSM2 2.6: see doc.)
func unwrapTDES(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, kek pkcs11.ObjectHandle, label string, encrypted []byte) (map[string]pkcs11.ObjectHandle, error) {
	set := map[string]pkcs11.ObjectHandle{}
	h, err := ctx.UnwrapKey(s, mech(pkcs11.CKM_DES3_ECB), kek, encrypted, secret(label, roleKey, tdesType(len(encrypted)), tdesUse...))
	if err != nil {
		return set, fmt.Errorf("p11: C_UnwrapKey: %w", err)
	}
	set[roleKey] = h
	return set, extractMAC1(ctx, s, h, label, set)
}

// extractMAC1 derives the first eight bytes of a 3DES key object as a DES
// key (CKM_EXTRACT_KEY_FROM_KEY from bit 0).
func extractMAC1(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, h pkcs11.ObjectHandle, label string, set map[string]pkcs11.ObjectHandle) error {
	t := append(secret(label, roleMAC1, pkcs11.CKK_DES, pkcs11.CKA_ENCRYPT), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 8))
	d, err := ctx.DeriveKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EXTRACT_KEY_FROM_KEY, make([]byte, 8))}, h, t)
	if err != nil {
		return fmt.Errorf("p11: C_DeriveKey(CKM_EXTRACT_KEY_FROM_KEY): %w", err)
	}
	set[roleMAC1] = d
	return nil
}

// GenerateKey implements hsm.Module: a random double-length key, returned
// under the KEK. Inside the token where it wraps with CKM_DES3_ECB and
// extracts the first DES part; otherwise, with clearKeyFallback, from the
// token's random numbers through the key's clear value.
func (m *Module) GenerateKey(kek, name hsm.KeyName) (encrypted []byte, kcvOut string, err error) {
	if err := checkName(name); err != nil {
		return nil, "", err
	}
	err = m.session(func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error {
		kh, err := m.tdesFor(ctx, s, kek, hsm.OpWrap)
		if err != nil {
			return err
		}
		return m.replace(ctx, s, name, func(label string) (map[string]pkcs11.ObjectHandle, error) {
			set := map[string]pkcs11.ObjectHandle{}
			switch {
			case m.caps.WrapDES3 && m.caps.ExtractKey:
				h, err := ctx.GenerateKey(s, mech(pkcs11.CKM_DES2_KEY_GEN), secret(label, roleKey, pkcs11.CKK_DES2, tdesUse...))
				if err != nil {
					return set, fmt.Errorf("p11: C_GenerateKey: %w", err)
				}
				set[roleKey] = h
				if encrypted, err = ctx.WrapKey(s, mech(pkcs11.CKM_DES3_ECB), kh, h); err != nil {
					return set, fmt.Errorf("p11: C_WrapKey: %w", err)
				}
				if err := extractMAC1(ctx, s, h, label, set); err != nil {
					return set, err
				}
			case m.cfg.ClearKeyFallback:
				k, err := ctx.GenerateRandom(s, 16)
				if err != nil {
					return set, fmt.Errorf("p11: C_GenerateRandom: %w", err)
				}
				defer zero(k)
				hsm.AdjustParity(k)
				if encrypted, err = encrypt(ctx, s, kh, pkcs11.CKM_DES3_ECB, k); err != nil {
					return set, err
				}
				if set, err = m.createTDES(ctx, s, label, k); err != nil {
					return set, err
				}
			default:
				return nil, fmt.Errorf("%w: generating %s under %s needs CKM_DES3_ECB wrap and CKM_EXTRACT_KEY_FROM_KEY: %v", ErrMechanism, name, kek, errNoClear)
			}
			kcvOut, err = kcv(ctx, s, set[roleKey])
			return set, err
		})
	})
	if err != nil {
		return nil, "", err
	}
	return encrypted, kcvOut, nil
}

// pad applies ISO 9797-1 padding method 1 (zeros; empty data gives one
// zero block) or 2 (0x80 then zeros).
func pad(data []byte, p hsm.Padding) ([]byte, error) {
	switch p {
	case hsm.PaddingMethod1:
		n := (len(data) + 7) &^ 7
		if n == 0 {
			n = 8
		}
		out := make([]byte, n)
		copy(out, data)
		return out, nil
	case hsm.PaddingMethod2:
		out := make([]byte, (len(data)+8)&^7)
		copy(out, data)
		out[len(data)] = 0x80
		return out, nil
	}
	return nil, fmt.Errorf("hsm: unknown MAC padding method %d (want 1 or 2)", int(p))
}

// GenerateMAC implements hsm.Module: ISO 9797-1 MAC algorithm 3 inside
// the token. All blocks but the last are chained with single DES under the
// key's first part (object "mac1": CKM_DES3_CBC under K1|K1, or
// CKM_DES_CBC under an extracted DES key); the last block XORed with
// that chain value goes through 3DES-EDE under the whole key
// (CKM_DES3_ECB), which is algorithm 3's final E(K1) D(K2) E(K1).
func (m *Module) GenerateMAC(name hsm.KeyName, data []byte, p hsm.Padding) ([]byte, error) {
	return m.mac(name, data, p, hsm.OpMACGenerate)
}

func (m *Module) mac(name hsm.KeyName, data []byte, p hsm.Padding, o hsm.Op) (out []byte, err error) {
	padded, err := pad(data, p)
	if err != nil {
		return nil, err
	}
	defer zero(padded)
	err = m.session(func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error {
		kh, err := m.tdesFor(ctx, s, name, o)
		if err != nil {
			return err
		}
		last := append([]byte(nil), padded[len(padded)-8:]...)
		if len(padded) > 8 {
			h1, kt, err := m.lookup(ctx, s, name, roleMAC1)
			if err != nil {
				return err
			}
			cbc := uint(pkcs11.CKM_DES3_CBC) // K1|K1
			if kt == pkcs11.CKK_DES {
				cbc = pkcs11.CKM_DES_CBC // extracted inside the token
			}
			chain, err := encrypt(ctx, s, h1, cbc, padded[:len(padded)-8])
			if err != nil {
				return err
			}
			subtle.XORBytes(last, last, chain[len(chain)-8:])
			zero(chain)
		}
		out, err = encrypt(ctx, s, kh, pkcs11.CKM_DES3_ECB, last)
		zero(last)
		return err
	})
	return out, err
}

// VerifyMAC implements hsm.Module.
func (m *Module) VerifyMAC(name hsm.KeyName, data, mac []byte, p hsm.Padding) error {
	got, err := m.mac(name, data, p, hsm.OpMACVerify)
	if err != nil {
		return err
	}
	if !equalMAC(got, mac) {
		return hsm.ErrMACMismatch
	}
	return nil
}

// Encrypt implements hsm.Module (3DES-CBC, zero IV, inside the token).
func (m *Module) Encrypt(name hsm.KeyName, data []byte) ([]byte, error) {
	return m.crypt(name, data, true)
}

// Decrypt implements hsm.Module.
func (m *Module) Decrypt(name hsm.KeyName, data []byte) ([]byte, error) {
	return m.crypt(name, data, false)
}

func (m *Module) crypt(name hsm.KeyName, data []byte, enc bool) (out []byte, err error) {
	if len(data)%8 != 0 {
		return nil, fmt.Errorf("%w: %d bytes", hsm.ErrDataLength, len(data))
	}
	o := hsm.OpDecrypt
	if enc {
		o = hsm.OpEncrypt
	}
	err = m.session(func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error {
		h, err := m.tdesFor(ctx, s, name, o)
		if err != nil {
			return err
		}
		if len(data) == 0 {
			out = []byte{}
			return nil
		}
		if enc {
			out, err = encrypt(ctx, s, h, pkcs11.CKM_DES3_CBC, data)
		} else {
			out, err = decrypt(ctx, s, h, pkcs11.CKM_DES3_CBC, data)
		}
		return err
	})
	return out, err
}

// DeriveVariant implements hsm.Module by copying, inside the token, the
// variant prepared when src was loaded (Config.Variants).
func (m *Module) DeriveVariant(src, dst hsm.KeyName, variant byte) error {
	if err := checkName(dst); err != nil {
		return err
	}
	if variant&0xFE == 0 {
		return fmt.Errorf("hsm: variant 0x%02X leaves the DES key bits unchanged", variant)
	}
	return m.session(func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error {
		if _, err := m.tdesFor(ctx, s, src, hsm.OpDerive); err != nil {
			return err
		}
		set, err := m.keyObjects(ctx, s, src)
		if err != nil {
			return err
		}
		v, ok1 := set[variantRole(variant)]
		v1, ok2 := set[variantRole(variant)+roleMAC1]
		if !ok1 || !ok2 {
			return fmt.Errorf("%w: variant 0x%02X of %s was not prepared when it was loaded (keys.pkcs11.variants), and CKM_XOR_BASE_AND_DATA cannot be used", ErrMechanism, variant, src)
		}
		return m.replace(ctx, s, dst, func(label string) (map[string]pkcs11.ObjectHandle, error) {
			out := map[string]pkcs11.ObjectHandle{}
			for role, h := range map[string]pkcs11.ObjectHandle{roleKey: v, roleMAC1: v1} {
				c, err := ctx.CopyObject(s, h, []*pkcs11.Attribute{
					pkcs11.NewAttribute(pkcs11.CKA_LABEL, label), pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(role))})
				if err != nil {
					return out, fmt.Errorf("p11: C_CopyObject: %w", err)
				}
				out[role] = c
			}
			return out, nil
		})
	})
}

// DeleteKey implements hsm.Module.
func (m *Module) DeleteKey(name hsm.KeyName) error {
	if err := checkName(name); err != nil {
		return err
	}
	return m.session(func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error {
		delete(m.sets, name)
		for _, label := range []string{string(name), string(name) + pending, string(name) + building} {
			set, err := objects(ctx, s, label, m.usages)
			if err != nil {
				return err
			}
			if err := m.destroy(ctx, s, set); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportClearHMACKey implements hsm.HMACer (CKK_GENERIC_SECRET; SoftHSM2
// takes HMAC-SHA256 keys of 32 bytes or more).
func (m *Module) ImportClearHMACKey(name hsm.KeyName, key []byte) error {
	if err := checkName(name); err != nil {
		return err
	}
	if len(key) < 16 {
		return fmt.Errorf("%w: HMAC keys are at least 16 bytes, got %d", hsm.ErrKeyLength, len(key))
	}
	return m.session(func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error {
		return m.replace(ctx, s, name, func(label string) (map[string]pkcs11.ObjectHandle, error) {
			h, err := ctx.CreateObject(s, append(secret(label, roleKey, pkcs11.CKK_GENERIC_SECRET, pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE, key)))
			if err != nil {
				return nil, fmt.Errorf("p11: C_CreateObject: %w", err)
			}
			return map[string]pkcs11.ObjectHandle{roleKey: h}, nil
		})
	})
}

// GenerateHMACKey creates a 32-byte HMAC-SHA256 key inside the token.
func (m *Module) GenerateHMACKey(name hsm.KeyName) error {
	if err := checkName(name); err != nil {
		return err
	}
	return m.session(func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error {
		return m.replace(ctx, s, name, func(label string) (map[string]pkcs11.ObjectHandle, error) {
			h, err := ctx.GenerateKey(s, mech(pkcs11.CKM_GENERIC_SECRET_KEY_GEN),
				append(secret(label, roleKey, pkcs11.CKK_GENERIC_SECRET, pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32)))
			if err != nil {
				return nil, fmt.Errorf("p11: C_GenerateKey(CKM_GENERIC_SECRET_KEY_GEN): %w", err)
			}
			return map[string]pkcs11.ObjectHandle{roleKey: h}, nil
		})
	})
}

// HMACSHA256 implements hsm.HMACer (CKM_SHA256_HMAC inside the token).
func (m *Module) HMACSHA256(name hsm.KeyName, data []byte) (out []byte, err error) {
	err = m.session(func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error {
		h, kt, err := m.lookup(ctx, s, name, roleKey)
		if err != nil {
			return err
		}
		if kt != pkcs11.CKK_GENERIC_SECRET {
			return fmt.Errorf("%w: %s is not an HMAC key", hsm.ErrKeyType, name)
		}
		if err := ctx.SignInit(s, mech(pkcs11.CKM_SHA256_HMAC), h); err != nil {
			return fmt.Errorf("p11: C_SignInit: %w", err)
		}
		if out, err = ctx.Sign(s, data); err != nil {
			return fmt.Errorf("p11: C_Sign: %w", err)
		}
		return nil
	})
	return out, err
}

// VerifyHMACSHA256 implements hsm.HMACer.
func (m *Module) VerifyHMACSHA256(name hsm.KeyName, data, mac []byte) error {
	got, err := m.HMACSHA256(name, data)
	if err != nil {
		return err
	}
	if !equalMAC(got, mac) {
		return hsm.ErrMACMismatch
	}
	return nil
}

// Keys lists the keys in the token: name, type and (3DES) KCV.
func (m *Module) Keys() (out []hsm.KeyInfo, err error) {
	err = m.session(func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error {
		if err := ctx.FindObjectsInit(s, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY)}); err != nil {
			return fmt.Errorf("p11: C_FindObjectsInit: %w", err)
		}
		var hs []pkcs11.ObjectHandle
		for {
			got, _, err := ctx.FindObjects(s, 32)
			if err != nil || len(got) == 0 {
				ctx.FindObjectsFinal(s)
				if err != nil {
					return fmt.Errorf("p11: C_FindObjects: %w", err)
				}
				break
			}
			hs = append(hs, got...)
		}
		for _, h := range hs {
			a, err := ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil), pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
			if err != nil {
				return fmt.Errorf("p11: C_GetAttributeValue: %w", err)
			}
			label := string(a[0].Value)
			role, use, _ := strings.Cut(string(a[2].Value), ":")
			if strings.HasSuffix(label, pending) || strings.HasSuffix(label, building) || role != roleKey {
				continue
			}
			ki := hsm.KeyInfo{Name: hsm.KeyName(label), Usage: use}
			switch bytesToUint(a[1].Value) {
			case pkcs11.CKK_DES2:
				ki.Type = "3DES-2"
			case pkcs11.CKK_DES3:
				ki.Type = "3DES-3"
			case pkcs11.CKK_GENERIC_SECRET:
				ki.Type = "HMAC-SHA256"
			default:
				ki.Type = "other"
			}
			if ki.Type == "3DES-2" || ki.Type == "3DES-3" {
				if ki.KCV, err = kcv(ctx, s, h); err != nil {
					return err
				}
			}
			out = append(out, ki)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b hsm.KeyInfo) int { return strings.Compare(string(a.Name), string(b.Name)) })
	return out, err
}
