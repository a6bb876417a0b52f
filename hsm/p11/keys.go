//go:build cgo

package p11

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cardless-atm/cardless/hsm"
	"github.com/miekg/pkcs11"
)

// A key name is a set of secret-key objects with CKA_LABEL = the name and
// CKA_ID saying the object's role:
//
//	"key"     the key: DES2/DES3 (3DES) or GENERIC_SECRET (HMAC-SHA256)
//	"mac1"    the first single-DES part K1 of a 3DES key, the chaining
//	          key of the retail MAC: CKK_DES2 K1|K1 when made from the
//	          clear value, CKK_DES when extracted inside the token
//	"v<XX>"   the key's variant XX, and "v<XX>mac1" its first part
//	          (prepared at load for tokens without CKM_XOR_BASE_AND_DATA)
//
// A replacement builds the new set under the label name+building, then
// relabels it, "key" object last, to name+pending: a pending set with its
// "key" object is complete. It then destroys the old set ("key" object
// last) and relabels the new one to name ("key" object last). The next
// lookup finishes or undoes an interrupted replacement (findKey):
// anything under name+building is destroyed; a pending set without its
// "key" is destroyed; a complete pending set replaces what is left under
// name: all of it if the old "key" is still there (the old set's
// destruction had not finished), otherwise it joins the objects already
// relabelled.
const (
	pending  = "#new"
	building = "#build"
)

const (
	roleKey  = "key"
	roleMAC1 = "mac1"
)

func variantRole(v byte) string { return fmt.Sprintf("v%02X", v) }

// objects returns the objects labelled label, by role, and records in
// usages the TR-31 usage of those whose CKA_ID carries one ("key:M3C").
func objects(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, label string, usages map[pkcs11.ObjectHandle]hsm.Usage) (map[string]pkcs11.ObjectHandle, error) {
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	if err := ctx.FindObjectsInit(s, tmpl); err != nil {
		return nil, fmt.Errorf("p11: C_FindObjectsInit: %w", err)
	}
	var hs []pkcs11.ObjectHandle
	for {
		got, _, err := ctx.FindObjects(s, 32)
		if err != nil {
			ctx.FindObjectsFinal(s)
			return nil, fmt.Errorf("p11: C_FindObjects: %w", err)
		}
		if len(got) == 0 {
			break
		}
		hs = append(hs, got...)
	}
	if err := ctx.FindObjectsFinal(s); err != nil {
		return nil, fmt.Errorf("p11: C_FindObjectsFinal: %w", err)
	}
	out := map[string]pkcs11.ObjectHandle{}
	for _, h := range hs {
		a, err := ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
		if err != nil {
			return nil, fmt.Errorf("p11: C_GetAttributeValue: %w", err)
		}
		role, use, restricted := strings.Cut(string(a[0].Value), ":")
		if restricted && len(use) == 3 {
			usages[h] = hsm.Usage{KeyUsage: use[:2], Mode: use[2]}
		}
		out[role] = h
	}
	return out, nil
}

// keyObjects returns the set of name, finishing an interrupted
// replacement first: a complete new set whose old one is gone becomes the
// key; a new set beside an old one (the replacement never returned) is
// destroyed.
//
// Sets are cached by name (the object search is the slowest call of a
// file-backed token); a replacement or deletion drops the name, and a
// handle the token no longer knows (another process changed the token)
// drops the whole cache and the call is retried once (Module.session).
func (m *Module) keyObjects(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, name hsm.KeyName) (map[string]pkcs11.ObjectHandle, error) {
	if set, ok := m.sets[name]; ok {
		return set, nil
	}
	set, err := m.findKey(ctx, s, name)
	if err == nil && len(set) > 0 {
		m.sets[name] = set
	}
	return set, err
}

func (m *Module) findKey(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, name hsm.KeyName) (map[string]pkcs11.ObjectHandle, error) {
	if half, err := objects(ctx, s, string(name)+building, m.usages); err != nil || len(half) > 0 {
		if err != nil {
			return nil, err
		}
		if err := m.destroy(ctx, s, half); err != nil {
			return nil, err
		}
	}
	cur, err := objects(ctx, s, string(name), m.usages)
	if err != nil {
		return nil, err
	}
	next, err := objects(ctx, s, string(name)+pending, m.usages)
	if err != nil || len(next) == 0 {
		return cur, err
	}
	if _, complete := next[roleKey]; !complete {
		return cur, m.destroy(ctx, s, next)
	}
	if _, oldKey := cur[roleKey]; oldKey {
		if err := m.destroy(ctx, s, cur); err != nil {
			return nil, err
		}
		cur = map[string]pkcs11.ObjectHandle{}
	}
	if err := relabel(ctx, s, next, string(name)); err != nil {
		return nil, err
	}
	maps.Copy(cur, next)
	return cur, nil
}

// keyLast orders a set's roles with "key" last.
func keyLast(set map[string]pkcs11.ObjectHandle) []string {
	roles := slices.Sorted(maps.Keys(set))
	if i := slices.Index(roles, roleKey); i >= 0 {
		roles = append(append(roles[:i:i], roles[i+1:]...), roleKey)
	}
	return roles
}

// destroy destroys a set, its "key" object last, and forgets the handles.
func (m *Module) destroy(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, set map[string]pkcs11.ObjectHandle) error {
	for _, role := range keyLast(set) {
		if err := ctx.DestroyObject(s, set[role]); err != nil {
			return fmt.Errorf("p11: C_DestroyObject: %w", err)
		}
		delete(m.types, set[role])
		delete(m.usages, set[role])
	}
	return nil
}

// relabel relabels a set, its "key" object last.
func relabel(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, set map[string]pkcs11.ObjectHandle, label string) error {
	for _, role := range keyLast(set) {
		if err := ctx.SetAttributeValue(s, set[role], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}); err != nil {
			return fmt.Errorf("p11: C_SetAttributeValue(CKA_LABEL): %w", err)
		}
	}
	return nil
}

// replace makes the set built by build the key name, replacing any old
// set (see the ordering above).
func (m *Module) replace(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, name hsm.KeyName, build func(label string) (map[string]pkcs11.ObjectHandle, error)) error {
	old, err := m.keyObjects(ctx, s, name)
	if err != nil {
		return err
	}
	delete(m.sets, name)
	next, err := build(string(name) + building)
	if err != nil {
		m.destroy(ctx, s, next)
		return err
	}
	if err := relabel(ctx, s, next, string(name)+pending); err != nil {
		return err
	}
	if err := m.destroy(ctx, s, old); err != nil {
		return err
	}
	return relabel(ctx, s, next, string(name))
}

// lookup returns the role object of the key name with its key type.
func (m *Module) lookup(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, name hsm.KeyName, role string) (pkcs11.ObjectHandle, uint, error) {
	if err := checkName(name); err != nil {
		return 0, 0, err
	}
	set, err := m.keyObjects(ctx, s, name)
	if err != nil {
		return 0, 0, err
	}
	h, ok := set[role]
	if !ok {
		if _, any := set[roleKey]; any {
			return 0, 0, fmt.Errorf("%w: %s has no %s object", hsm.ErrKeyNotFound, name, role)
		}
		return 0, 0, fmt.Errorf("%w: %s", hsm.ErrKeyNotFound, name)
	}
	if kt, ok := m.types[h]; ok {
		return h, kt, nil
	}
	a, err := ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
	if err != nil {
		return 0, 0, fmt.Errorf("p11: C_GetAttributeValue(CKA_KEY_TYPE): %w", err)
	}
	m.types[h] = bytesToUint(a[0].Value)
	return h, m.types[h], nil
}

func bytesToUint(b []byte) uint {
	var v uint
	for i := len(b) - 1; i >= 0; i-- { // little-endian CK_ULONG on the platforms we build for
		v = v<<8 | uint(b[i])
	}
	return v
}

// tdesFor returns the 3DES key object of name for a use its TR-31 usage
// must allow.
func (m *Module) tdesFor(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, name hsm.KeyName, o hsm.Op) (pkcs11.ObjectHandle, error) {
	h, err := m.tdes(ctx, s, name, roleKey)
	if err != nil {
		return 0, err
	}
	return h, m.usages[h].Check(name, o)
}

// tdes returns the 3DES key object of name (ErrKeyType for an HMAC key).
func (m *Module) tdes(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, name hsm.KeyName, role string) (pkcs11.ObjectHandle, error) {
	h, kt, err := m.lookup(ctx, s, name, role)
	if err != nil {
		return 0, err
	}
	if kt != pkcs11.CKK_DES2 && kt != pkcs11.CKK_DES3 && kt != pkcs11.CKK_DES {
		return 0, fmt.Errorf("%w: %s is not a 3DES key", hsm.ErrKeyType, name)
	}
	return h, nil
}

// secret is the template of a token secret key that never leaves the
// token in clear: sensitive, not extractable, private.
func secret(label, role string, keyType uint, use ...uint) []*pkcs11.Attribute {
	t := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(role)),
	}
	for _, a := range []uint{pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT, pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY, pkcs11.CKA_DERIVE, pkcs11.CKA_WRAP, pkcs11.CKA_UNWRAP} {
		t = append(t, pkcs11.NewAttribute(a, slices.Contains(use, a)))
	}
	return t
}

// tdesUse are the uses of a 3DES key object: KCV and MAC (encrypt), data
// and key-under-KEK decryption, export under it (wrap/unwrap where the
// token does those inside) and variants (derive).
var tdesUse = []uint{pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT, pkcs11.CKA_WRAP, pkcs11.CKA_UNWRAP, pkcs11.CKA_DERIVE}

func tdesType(n int) uint {
	if n == 16 {
		return pkcs11.CKK_DES2
	}
	return pkcs11.CKK_DES3
}

// createTDES builds, under label, the set of a 3DES key from its clear
// value: the key, its first single-DES part and the configured variants.
func (m *Module) createTDES(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, label string, key []byte) (map[string]pkcs11.ObjectHandle, error) {
	return m.createTDESUsage(ctx, s, label, key, hsm.Usage{})
}

// createTDESUsage is createTDES for a key bound to a TR-31 usage (kept in
// the key object's CKA_ID; no variants are prepared: such a key derives
// nothing).
func (m *Module) createTDESUsage(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, label string, key []byte, u hsm.Usage) (map[string]pkcs11.ObjectHandle, error) {
	set := map[string]pkcs11.ObjectHandle{}
	add := func(role string, value []byte) error {
		kt, use := tdesType(len(value)), tdesUse
		if len(value) == 8 {
			// The first DES part as a double-length key K1|K1: 3DES with
			// equal parts is single DES, and tokens without single DES
			// (SoftHSM2 on OpenSSL 3) still run it.
			kt, use = pkcs11.CKK_DES2, []uint{pkcs11.CKA_ENCRYPT}
			value = append(append(make([]byte, 0, 16), value...), value...)
			defer zero(value)
		}
		id := role
		if role == roleKey && u.Restricted() {
			id += ":" + u.KeyUsage + string(u.Mode)
		}
		h, err := ctx.CreateObject(s, append(secret(label, id, kt, use...), pkcs11.NewAttribute(pkcs11.CKA_VALUE, value)))
		if err != nil {
			return fmt.Errorf("p11: C_CreateObject: %w", err)
		}
		set[role] = h
		if role == roleKey && u.Restricted() {
			m.usages[h] = u
		}
		return nil
	}
	if err := add(roleKey, key); err != nil {
		return set, err
	}
	if err := add(roleMAC1, key[:8]); err != nil {
		return set, err
	}
	if u.Restricted() {
		return set, nil
	}
	v := make([]byte, len(key))
	defer zero(v)
	for _, x := range m.cfg.Variants {
		for i, b := range key {
			v[i] = b ^ x
		}
		if err := add(variantRole(x), v); err != nil {
			return set, err
		}
		if err := add(variantRole(x)+roleMAC1, v[:8]); err != nil {
			return set, err
		}
	}
	return set, nil
}

func checkName(name hsm.KeyName) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%w: must be 1 to 64 bytes", hsm.ErrKeyName)
	}
	for _, r := range string(name) {
		if r <= ' ' || r == 0x7F || r == '#' {
			return fmt.Errorf("%w: %q contains a space, control character or '#'", hsm.ErrKeyName, string(name))
		}
	}
	return nil
}

var errNoClear = errors.New("the key's clear value is needed and clearKeyFallback is off")
