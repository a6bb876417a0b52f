package ceremony

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cardless-atm/cardless/hsm"
)

var errNotHex = errors.New("not valid hex")

// decodeHex decodes hex digits (either case) without quoting bad input in
// its error, since the input may be a key.
func decodeHex(h []byte) ([]byte, error) {
	if len(h)%2 != 0 {
		return nil, errNotHex
	}
	out := make([]byte, len(h)/2)
	if _, err := hex.Decode(out, h); err != nil {
		clear(out)
		return nil, errNotHex
	}
	return out, nil
}

// hexFlag decodes a hex command-line value; spaces are ignored.
func hexFlag(name, v string) ([]byte, error) {
	v = strings.ReplaceAll(v, " ", "")
	b, err := decodeHex([]byte(v))
	if err != nil {
		return nil, usagef("--%s is not valid hex (%d characters; want pairs of 0-9, A-F)", name, len(v))
	}
	return b, nil
}

func keyFlag(v string) ([]byte, error) {
	if v == "" {
		return nil, usagef("--key is required")
	}
	k, err := hexFlag("key", v)
	if err != nil {
		return nil, err
	}
	if len(k) != 16 && len(k) != 24 {
		return nil, usagef("--key must be 16 or 24 bytes (32 or 48 hex digits), got %d bytes", len(k))
	}
	return k, nil
}

// runCrypto implements the vendor debug commands. Keys are used as given:
// parity is not checked.
func runCrypto(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("crypto: missing subcommand (kcv, mac, encrypt, decrypt)")
	}
	sub := args[0]
	fs := newFlags("crypto " + sub)
	keyHex := fs.String("key", "", "clear 3DES key, hex")
	var dataHex *string
	var padding *int
	switch sub {
	case "kcv":
	case "mac":
		dataHex = fs.String("data", "", "data, hex")
		padding = fs.Int("padding", 0, "ISO 9797-1 padding method, 1 or 2")
	case "encrypt", "decrypt":
		dataHex = fs.String("data", "", "data, hex")
	default:
		return usagef("crypto: unknown subcommand %q (kcv, mac, encrypt, decrypt)", sub)
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	key, err := keyFlag(*keyHex)
	if err != nil {
		return err
	}
	defer clear(key)
	var data []byte
	if dataHex != nil {
		if *dataHex == "" {
			return usagef("--data is required")
		}
		if data, err = hexFlag("data", *dataHex); err != nil {
			return err
		}
	}

	var out []byte
	switch sub {
	case "kcv":
		kcv, err := hsm.KCVOf(key)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, kcv)
		return nil
	case "mac":
		if *padding != 1 && *padding != 2 {
			return usagef("--padding must be 1 (zeros, ANSI X9.19) or 2 (0x80 then zeros)")
		}
		out, err = hsm.RetailMAC(key, data, hsm.Padding(*padding))
	case "encrypt", "decrypt":
		if len(data)%8 != 0 {
			return usagef("--data must be a multiple of 8 bytes (16 hex digits), got %d bytes", len(data))
		}
		if sub == "encrypt" {
			out, err = hsm.EncryptCBC(key, data)
		} else {
			out, err = hsm.DecryptCBC(key, data)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%X\n", out)
	return nil
}
