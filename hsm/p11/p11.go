//go:build cgo

package p11

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/cardless-atm/cardless/hsm"
	"github.com/miekg/pkcs11"
)

// Module is an hsm.Module (with hsm.ClearKeyImporter and hsm.HMACer) whose
// keys are objects of a PKCS#11 token. It is safe for concurrent use: the
// calls share one logged-in session under a mutex.
type Module struct {
	cfg  Config
	log  *slog.Logger
	ctx  *pkcs11.Ctx
	slot uint
	caps Capabilities

	mu     sync.Mutex
	sess   pkcs11.SessionHandle
	closed bool
	sets   map[hsm.KeyName]map[string]pkcs11.ObjectHandle // objects by key name and role
	types  map[pkcs11.ObjectHandle]uint                   // CKA_KEY_TYPE by object
	usages map[pkcs11.ObjectHandle]hsm.Usage              // TR-31 usage of key objects from key blocks
}

var _ interface {
	hsm.Module
	hsm.ClearKeyImporter
	hsm.HMACer
} = (*Module)(nil)

// Open loads the PKCS#11 library, finds the token, logs in and checks the
// mechanisms this package needs. A missing library, token or mechanism, a
// wrong PIN and a locked PIN are errors that say which; nothing falls back
// to software keys.
func Open(cfg Config) (*Module, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx := pkcs11.New(cfg.Library)
	if ctx == nil {
		return nil, fmt.Errorf("%w: cannot load %s", ErrLibrary, cfg.Library)
	}
	m := &Module{cfg: cfg, log: log, ctx: ctx, sets: map[hsm.KeyName]map[string]pkcs11.ObjectHandle{}, types: map[pkcs11.ObjectHandle]uint{}, usages: map[pkcs11.ObjectHandle]hsm.Usage{}}
	ok := false
	defer func() {
		if !ok {
			m.shutdown()
		}
	}()
	if err := ctx.Initialize(); err != nil && !isRV(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return nil, fmt.Errorf("%w: %s: C_Initialize: %v", ErrLibrary, cfg.Library, err)
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: C_GetSlotList: %v", ErrLibrary, cfg.Library, err)
	}
	var labels []string
	found := false
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err != nil {
			continue
		}
		label := strings.TrimRight(ti.Label, " \x00")
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		labels = append(labels, fmt.Sprintf("%q", label))
		if label == cfg.TokenLabel {
			m.slot, found = s, true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: no token labelled %q in %s (tokens present: %s)", ErrNoToken, cfg.TokenLabel, cfg.Library, strings.Join(labels, ", "))
	}
	if m.caps, err = probe(ctx, m.slot); err != nil {
		return nil, err
	}
	if m.sess, err = ctx.OpenSession(m.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err != nil {
		return nil, fmt.Errorf("p11: token %q: C_OpenSession: %w", cfg.TokenLabel, err)
	}
	if err := ctx.Login(m.sess, pkcs11.CKU_USER, cfg.PIN); err != nil && !isRV(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		switch {
		case isRV(err, pkcs11.CKR_PIN_INCORRECT):
			return nil, fmt.Errorf("%w: token %q", ErrPIN, cfg.TokenLabel)
		case isRV(err, pkcs11.CKR_PIN_LOCKED):
			return nil, fmt.Errorf("%w: token %q", ErrPINLocked, cfg.TokenLabel)
		}
		return nil, fmt.Errorf("p11: token %q: C_Login: %w", cfg.TokenLabel, err)
	}
	ok = true
	m.log.Info("keys in a PKCS#11 token", "library", cfg.Library, "token", cfg.TokenLabel, "paths", m.Paths())
	if cfg.ClearKeyFallback {
		m.log.Warn("keys.pkcs11.clearKeyFallback is on: where the token lacks a mechanism, a key's clear value passes through the appliance's memory while it is loaded", "token", cfg.TokenLabel)
	}
	return m, nil
}

// Capabilities is what the token can do inside, from C_GetMechanismList
// and C_GetMechanismInfo.
type Capabilities struct {
	// UnwrapDES3: CKM_DES3_ECB can unwrap (a key under the KEK becomes a
	// token object without leaving the token).
	UnwrapDES3 bool
	// WrapDES3: CKM_DES3_ECB can wrap (a generated key is exported under
	// the KEK from inside the token).
	WrapDES3 bool
	// ExtractKey: CKM_EXTRACT_KEY_FROM_KEY derives the single-DES first
	// half of a 3DES key (the retail MAC's chaining key) inside the token.
	ExtractKey bool
	// XORDerive: the token lists CKM_XOR_BASE_AND_DATA (key variants
	// inside). Reported only: its parameter holds a pointer, which
	// miekg/pkcs11 cannot pass, so variants are prepared at load.
	XORDerive bool
}

// required are the mechanisms every operation needs.
var required = map[uint]string{
	pkcs11.CKM_DES3_ECB:    "CKM_DES3_ECB",
	pkcs11.CKM_DES3_CBC:    "CKM_DES3_CBC",
	pkcs11.CKM_SHA256_HMAC: "CKM_SHA256_HMAC",
}

func probe(ctx *pkcs11.Ctx, slot uint) (Capabilities, error) {
	var c Capabilities
	list, err := ctx.GetMechanismList(slot)
	if err != nil {
		return c, fmt.Errorf("p11: C_GetMechanismList: %w", err)
	}
	have := map[uint]bool{}
	for _, m := range list {
		have[m.Mechanism] = true
	}
	var missing []string
	for mech, name := range required {
		if !have[mech] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return c, fmt.Errorf("%w: %s", ErrMechanism, strings.Join(missing, ", "))
	}
	if info, err := ctx.GetMechanismInfo(slot, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_DES3_ECB, nil)}); err == nil {
		c.UnwrapDES3 = info.Flags&pkcs11.CKF_UNWRAP != 0
		c.WrapDES3 = info.Flags&pkcs11.CKF_WRAP != 0
	}
	c.ExtractKey = have[pkcs11.CKM_EXTRACT_KEY_FROM_KEY]
	c.XORDerive = have[pkcs11.CKM_XOR_BASE_AND_DATA]
	return c, nil
}

// Capabilities reports what the token does inside.
func (m *Module) Capabilities() Capabilities { return m.caps }

// Paths names, for the start-up log and atmctl, how each operation that
// may need the key's clear value is done with this token.
func (m *Module) Paths() map[string]string {
	c, fb := m.caps, m.cfg.ClearKeyFallback
	pick := func(inside bool, how, fallback string) string {
		switch {
		case inside:
			return how
		case fb:
			return fallback + " (clear value in memory: clearKeyFallback)"
		}
		return "unavailable (the token lacks the mechanism and clearKeyFallback is off)"
	}
	return map[string]string{
		"import":   pick(c.UnwrapDES3 && c.ExtractKey, "C_UnwrapKey(CKM_DES3_ECB) + C_DeriveKey(CKM_EXTRACT_KEY_FROM_KEY)", "C_Decrypt(CKM_DES3_ECB) + C_CreateObject"),
		"generate": pick(c.WrapDES3 && c.ExtractKey, "C_GenerateKey + C_WrapKey(CKM_DES3_ECB)", "C_GenerateRandom + C_CreateObject"),
		// CKM_XOR_BASE_AND_DATA takes a CK_KEY_DERIVATION_STRING_DATA
		// (a pointer), which miekg/pkcs11 cannot pass: variants are
		// prepared when a key is loaded through its clear value.
		"variant": "a copy (C_CopyObject) of the variant prepared when the key was loaded (keys.pkcs11.variants)",
	}
}

// Close logs out and unloads the library. Keys stay in the token.
func (m *Module) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.shutdown()
	return nil
}

func (m *Module) shutdown() {
	if m.sess != 0 {
		m.ctx.Logout(m.sess)
		m.ctx.CloseSession(m.sess)
	}
	m.ctx.Finalize()
	m.ctx.Destroy()
}

func isRV(err error, rv uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == rv
}

// session runs fn with the session, under the mutex.
func (m *Module) session(fn func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return hsm.ErrClosed
	}
	err := fn(m.ctx, m.sess)
	if isRV(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) || isRV(err, pkcs11.CKR_KEY_HANDLE_INVALID) {
		// The token changed under the cache (another process replaced
		// a key): search again.
		clear(m.sets)
		clear(m.types)
		clear(m.usages)
		err = fn(m.ctx, m.sess)
	}
	return err
}

func zero(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

func equalMAC(a, b []byte) bool { return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1 }

var zeroBlock = bytes.Repeat([]byte{0}, 8)
