// Package p11 keeps the terminal's keys in a PKCS#11 token (an HSM, the
// key store of an encrypting PIN pad, a TPM's PKCS#11 front end, or
// SoftHSM2 for tests) and implements hsm.Module, hsm.ClearKeyImporter and
// hsm.HMACer there, with github.com/miekg/pkcs11. It needs cgo; a build
// without cgo has a Module whose Open fails with ErrNoCgo.
//
// # Keys in the token
//
// Every key is a token object that is sensitive, not extractable and
// private, found by its label (the hsm.KeyName); CKA_ID says the object's
// role (see keys.go). The token does every operation: KCV (CKM_DES3_ECB of
// a zero block), 3DES-CBC (CKM_DES3_CBC, zero IV), HMAC-SHA256
// (CKM_SHA256_HMAC) and random numbers. No clear key byte of a key the
// token holds reaches the appliance's memory through an operation.
//
// The ANSI X9.19 retail MAC (ISO 9797-1 algorithm 3) has no PKCS#11
// mechanism. It is built from two: the blocks but the last are chained
// with single DES under K1, the key's first part, kept as its own object
// ("mac1": K1|K1 as a double-length 3DES key, which is single DES, because
// SoftHSM2 on OpenSSL 3 has no single-DES cipher; or a CKK_DES object
// extracted inside a token that has CKM_EXTRACT_KEY_FROM_KEY); the last
// block XORed with the chain value then goes through 3DES-EDE under the
// whole key, which is exactly algorithm 3's final E(K1) D(K2) E(K1). Only
// the chain value (a MAC intermediate, not key material) passes through
// memory.
//
// # What a token may lack
//
// Three operations need a mechanism many tokens lack. The package asks
// the token (C_GetMechanismList, C_GetMechanismInfo) and takes, for each,
// the path inside the token when it can; otherwise the path through the
// key's clear value, only when Config.ClearKeyFallback allows it (else
// ErrMechanism). Module.Paths names the path taken; the appliance logs it
// at start.
//
//   - Import under the KEK (hsm.Module.ImportKey): C_UnwrapKey with
//     CKM_DES3_ECB and CKM_EXTRACT_KEY_FROM_KEY for the MAC part; else
//     C_Decrypt under the KEK inside the token, then C_CreateObject from
//     the clear value, zeroed after.
//   - Generation under the KEK (GenerateKey): C_GenerateKey and C_WrapKey
//     with CKM_DES3_ECB; else C_GenerateRandom, C_CreateObject and
//     C_Encrypt under the KEK.
//   - Key variants (DeriveVariant): CKM_XOR_BASE_AND_DATA takes a pointer
//     parameter that miekg/pkcs11 cannot pass, so the variants named in
//     Config.Variants are prepared beside every key loaded through its
//     clear value (the ceremony, development keys, the fallback import),
//     and DeriveVariant copies one inside the token (C_CopyObject).
//
// SoftHSM2 2.6 (Debian 12, OpenSSL 3) unwraps only with AES key wrap and
// RSA, wraps 3DES only in CBC mode and has no key extraction: the tests
// run the clear-value paths there (TestSoftHSM2Paths pins this), and the
// in-token paths are written to the standard but have not run on a token.
//
// # Replacement and caching
//
// A replacement writes the new objects under a pending label, destroys the
// old ones and relabels: an interrupted replacement is finished (the old
// key was gone) or undone (the old key is still there) at the next lookup.
// Objects found are cached by name; a handle the token no longer knows
// (another session replaced the key) empties the cache and the call runs
// again once.
//
// The conformance suite of hsm/hsmtest runs on this module against a
// SoftHSM2 token made by package softhsm.
package p11
