// Package tr31 reads and writes TR-31 (ANSI X9.143) key blocks, the
// interoperable form in which a symmetric key travels under a key block
// protection key (KBPK) with its usage bound to it: version B (TDES KBPK,
// encryption and MAC keys derived with CMAC, NIST SP 800-108 counter
// mode) and version D (AES KBPK). The versions A and C (variant binding)
// are deprecated and refused.
//
// A block is the 16-character header (version, length, key usage,
// algorithm, mode of use, key version, exportability, number of optional
// blocks), the optional blocks, the key data (key length, key, random
// padding) encrypted in CBC mode with the block's MAC as IV, and the MAC
// (CMAC under the derived MAC key over the header, the optional blocks
// and the clear key data). Unwrap verifies the MAC before it returns
// anything; any change to the header (a MAC key relabelled a data key,
// say) makes the block fail.
//
// The tests check the published TR-31:2018 Annex A key blocks (B and D),
// further published blocks with optional blocks and a triple-length KBPK,
// and the SP 800-38B CMAC examples; Unwrap is fuzzed (make fuzz).
package tr31
