package ceremony

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/cardless-atm/cardless/atm/wire"
	"github.com/cardless-atm/cardless/hsm"
	"github.com/cardless-atm/cardless/hsm/p11"
)

// Exit statuses of Run.
const (
	ExitOK    = 0
	ExitError = 1 // the operation failed (store, storage key, KCV check)
	ExitUsage = 2 // bad command line or bad input
)

const usage = `usage: atmctl <command> [flags]

Key management (keys held in an encrypted key store):
  atmctl key init-storage-key FILE
      Write a new random 32-byte storage key (hex, mode 0600) to FILE.
      Refuses to overwrite an existing file.
  atmctl key load-tmk --store FILE --storage-key FILE [--components 2|3]
                      [--expect-kcv KCV] [--replace] [--name tmk|host.mac|host.data]
      Key ceremony: each custodian types one component (32 or 48 hex
      digits, odd parity; not echoed on a terminal). Each component's KCV
      and the final KCV are shown, and the TMK is stored as "tmk".
      With --expect-kcv nothing is stored unless the final KCV matches.
      An existing TMK is replaced only with --replace.
      When standard input is not a terminal, one component is read per line.
      Ctrl-C (or SIGTERM, SIGHUP, SIGQUIT) while a component is typed
      restores the terminal's echo, stores nothing and exits with status
      128+signal (130 for Ctrl-C).
  atmctl key list --store FILE --storage-key FILE
      Key names, types and KCVs (never key values).
The key store is locked while a program has it open: stop the appliance
before these commands.
With the keys in a PKCS#11 token, load-tmk and list take
  --pkcs11 LIBRARY --token LABEL --pin-file FILE
instead of --store and --storage-key (docs/keys.md).

Electronic journal:
  atmctl journal verify --control ADDR
      Asks the running appliance (its control endpoint, e.g. 127.0.0.1:7000)
      to verify the whole journal's hash chain and head MAC. Prints the
      number of entries verified, or where the chain breaks (exit 1).

Vendor debug commands (clear keys on the command line; test keys only).
These do NOT check key parity, so arbitrary published vectors can be used:
  atmctl crypto kcv --key HEX
      KCV: six upper-case hex digits.
  atmctl crypto mac --key HEX --data HEX --padding 1|2
      ISO 9797-1 MAC algorithm 3 (ANSI X9.19 retail MAC), padding method 1
      (zeros) or 2 (0x80 then zeros): 16 upper-case hex digits.
  atmctl crypto encrypt --key HEX --data HEX
  atmctl crypto decrypt --key HEX --data HEX
      3DES-CBC with a zero IV; data is a multiple of 8 bytes.
Keys are 16 or 24 bytes (32 or 48 hex digits). Exit status: 0 success,
1 operation failed, 2 usage error or bad input.
`

// usageError marks errors that exit with ExitUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// Run executes atmctl with args (without the program name) and returns the
// exit status. Results go to stdout; prompts and errors (one line,
// prefixed "atmctl: ") go to stderr.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	var err error
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	case "key":
		err = runKey(args[1:], stdin, stdout, stderr)
	case "crypto":
		err = runCrypto(args[1:], stdout)
	case "journal":
		err = runJournal(args[1:], stdout)
	default:
		err = usagef("unknown command %q (run 'atmctl help')", args[0])
	}
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "atmctl: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		var ue *usageError
		if errors.As(err, &ue) {
			return ExitUsage
		}
		return ExitError
	}
	return ExitOK
}

// newFlags returns a flag set that reports errors through Run's one-line
// message instead of printing the default usage.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

func runKey(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("key: missing subcommand (init-storage-key, load-tmk, list)")
	}
	switch args[0] {
	case "init-storage-key":
		if len(args) != 2 || strings.HasPrefix(args[1], "-") {
			return usagef("usage: atmctl key init-storage-key FILE")
		}
		if err := hsm.NewStorageKeyFile(args[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "storage key written to %s (mode 0600); keep it apart from the key store\n", args[1])
		return nil
	case "load-tmk":
		return loadTMK(args[1:], stdin, stdout, stderr)
	case "list":
		return listKeys(args[1:], stdout)
	default:
		return usagef("key: unknown subcommand %q (init-storage-key, load-tmk, list)", args[0])
	}
}

// keyStore is where the ceremony writes: the encrypted key store
// (hsm.Soft) or a PKCS#11 token (hsm/p11).
type keyStore interface {
	KCV(name hsm.KeyName) (string, error)
	FormKey(name hsm.KeyName, components ...[]byte) ([]string, string, error)
	Keys() ([]hsm.KeyInfo, error)
	Close() error
}

// keyFlags are the flags that select the key store or the token.
type keyFlags struct {
	store, storageKey, pkcs11, token, pinFile *string
}

func addKeyFlags(fs *flag.FlagSet) keyFlags {
	return keyFlags{
		store:      fs.String("store", "", "key store file"),
		storageKey: fs.String("storage-key", "", "storage key file"),
		pkcs11:     fs.String("pkcs11", "", "PKCS#11 library of the token that holds the keys, instead of a key store"),
		token:      fs.String("token", "", "with --pkcs11: the token's label"),
		pinFile:    fs.String("pin-file", "", "with --pkcs11: file holding the user PIN"),
	}
}

// open opens the token (--pkcs11) or the key store; where names it.
func (f keyFlags) open() (ks keyStore, where string, err error) {
	if *f.pkcs11 != "" {
		if *f.store != "" || *f.storageKey != "" {
			return nil, "", usagef("--pkcs11 and --store are exclusive")
		}
		if *f.token == "" || *f.pinFile == "" {
			return nil, "", usagef("--pkcs11 needs --token and --pin-file")
		}
		pin, err := os.ReadFile(*f.pinFile)
		if err != nil {
			return nil, "", err
		}
		defer clear(pin)
		// The TMK's network-management and key block protection variants
		// are prepared beside it: the token cannot derive them inside (see
		// hsm/p11).
		m, err := p11.Open(p11.Config{Library: *f.pkcs11, TokenLabel: *f.token, PIN: strings.TrimSpace(string(pin)), Variants: []byte{wire.NetMgmtVariant, wire.KBPKVariant}})
		if err != nil {
			return nil, "", err
		}
		return m, fmt.Sprintf("token %q", *f.token), nil
	}
	if *f.store == "" || *f.storageKey == "" {
		return nil, "", usagef("--store and --storage-key (or --pkcs11, --token and --pin-file) are required")
	}
	sk, err := hsm.ReadStorageKeyFile(*f.storageKey)
	if err != nil {
		return nil, "", err
	}
	defer clear(sk)
	s, err := hsm.OpenStore(*f.store, sk)
	if err != nil {
		return nil, "", err
	}
	return s, *f.store, nil
}

func listKeys(args []string, stdout io.Writer) error {
	fs := newFlags("key list")
	kf := addKeyFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	s, _, err := kf.open()
	if err != nil {
		return err
	}
	defer s.Close()
	keys, err := s.Keys()
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		fmt.Fprintln(stdout, "(no keys)")
		return nil
	}
	fmt.Fprintf(stdout, "%-16s %-12s %s\n", "NAME", "TYPE", "KCV")
	for _, k := range keys {
		kcv := k.KCV
		if kcv == "" {
			kcv = "-"
		}
		fmt.Fprintf(stdout, "%-16s %-12s %s\n", k.Name, k.Type, kcv)
	}
	return nil
}

// secretReader reads one component: without echo from a terminal, else one
// line from a pipe.
type secretReader interface {
	read(prompt string) ([]byte, error)
	interactive() bool
}

type termReader struct {
	fd     int
	stderr io.Writer
	wipe   func() // zeroes the caller's components if a signal ends the process
}

// read turns echo off while a component is typed. The interruptSignals are
// caught meanwhile (see guardTerminal): the terminal is restored and the
// process exits with 128+signal, before anything is stored.
func (r termReader) read(prompt string) ([]byte, error) {
	g, err := guardTerminal(r.fd, r.stderr, r.wipe)
	if err != nil {
		return nil, err
	}
	fmt.Fprint(r.stderr, prompt)
	b, err := term.ReadPassword(r.fd)
	g.stop()
	fmt.Fprintln(r.stderr)
	return b, err
}

func (termReader) interactive() bool { return true }

type lineReader struct {
	r      *bufio.Reader
	stderr io.Writer
}

func (r lineReader) read(prompt string) ([]byte, error) {
	fmt.Fprint(r.stderr, prompt)
	var line []byte
	for {
		chunk, isPrefix, err := r.r.ReadLine()
		line = append(line, chunk...)
		clear(chunk)
		if err != nil {
			clear(line)
			fmt.Fprintln(r.stderr)
			if errors.Is(err, io.EOF) {
				return nil, errors.New("unexpected end of input")
			}
			return nil, err
		}
		if !isPrefix {
			fmt.Fprintln(r.stderr)
			return line, nil
		}
	}
}

func (lineReader) interactive() bool { return false }

// newSecretReader picks the reader for stdin. wipe is called, on a
// terminal only, if a signal ends the process during a read.
func newSecretReader(stdin io.Reader, stderr io.Writer, wipe func()) secretReader {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return termReader{fd: int(f.Fd()), stderr: stderr, wipe: wipe}
	}
	return lineReader{r: bufio.NewReader(stdin), stderr: stderr}
}

// parseComponent turns typed hex (spaces allowed) into a component and
// checks length and parity. Messages never quote the input.
// distinctComponent refuses a component whose key bits are all zero, or
// equal to an earlier component's: either would let fewer custodians than
// the ceremony names know the key (with components 1 and 2 equal, the key
// is component 3), which defeats split knowledge.
func distinctComponent(comp []byte, earlier [][]byte) error {
	zero := true
	for _, b := range comp {
		if b&0xFE != 0 {
			zero = false
			break
		}
	}
	if zero {
		return usagef("the component is all zeros (only parity bits set): each custodian types a random component")
	}
	for j, e := range earlier {
		if sameKeyBits(comp, e) {
			return usagef("the component equals component %d: each custodian's component must be their own (split knowledge)", j+1)
		}
	}
	return nil
}

// sameKeyBits compares two DES keys ignoring the parity bits.
func sameKeyBits(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var diff byte
	for i := range a {
		diff |= (a[i] ^ b[i]) & 0xFE
	}
	return diff == 0
}

func parseComponent(typed []byte, wantLen int) ([]byte, error) {
	h := make([]byte, 0, len(typed))
	for _, c := range typed {
		if c != ' ' && c != '\t' && c != '\r' {
			h = append(h, c)
		}
	}
	defer clear(h)
	if len(h) != 32 && len(h) != 48 {
		return nil, usagef("a component is 32 or 48 hex digits, got %d characters", len(h))
	}
	k, err := decodeHex(h)
	if err != nil {
		return nil, usagef("the component is not valid hex")
	}
	if wantLen != 0 && len(k) != wantLen {
		clear(k)
		return nil, usagef("all components must have the same length (%d hex digits)", 2*wantLen)
	}
	if !hsm.HasOddParity(k) {
		clear(k)
		return nil, usagef("the component does not have odd parity in every byte (check for a typing error)")
	}
	return k, nil
}

const maxAttempts = 3

func loadTMK(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("key load-tmk")
	kf := addKeyFlags(fs)
	n := fs.Int("components", 2, "number of components (2 or 3)")
	expect := fs.String("expect-kcv", "", "expected final KCV (6 hex digits)")
	replace := fs.Bool("replace", false, "replace an existing TMK")
	nameFlag := fs.String("name", string(hsm.TMK), "key slot: tmk, host.mac or host.data (host link keys are loaded the same way)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	name := hsm.KeyName(*nameFlag)
	switch name {
	case hsm.TMK, hsm.HostMAC, hsm.HostData:
	default:
		return usagef("--name must be tmk, host.mac or host.data, got %q", *nameFlag)
	}
	if *n != 2 && *n != 3 {
		return usagef("--components must be 2 or 3, got %d", *n)
	}
	if *expect != "" {
		if len(*expect) != 6 {
			return usagef("--expect-kcv must be 6 hex digits")
		}
		if _, err := decodeHex([]byte(*expect)); err != nil {
			return usagef("--expect-kcv must be 6 hex digits")
		}
	}
	// Open the store first: nobody types a component into a ceremony that
	// cannot complete.
	s, where, err := kf.open()
	if err != nil {
		return err
	}
	defer s.Close()
	if old, err := s.KCV(name); err == nil && !*replace {
		return fmt.Errorf("the store already holds %s (KCV %s); use --replace to replace it", name, old)
	}

	comps := make([][]byte, 0, *n)
	wipe := func() {
		for _, c := range comps {
			clear(c)
		}
	}
	defer wipe()
	// On a terminal, an interrupt while a component is typed restores the
	// echo, wipes the components and exits; the store is written only at
	// the end of the ceremony, so nothing is stored.
	in := newSecretReader(stdin, stderr, wipe)
	for i := 1; i <= *n; i++ {
		wantLen := 0
		if i > 1 {
			wantLen = len(comps[0])
		}
		var comp []byte
		for attempt := 1; ; attempt++ {
			typed, err := in.read(fmt.Sprintf("Component %d of %d (32 or 48 hex digits): ", i, *n))
			if err != nil {
				return usagef("component %d: %v", i, err)
			}
			comp, err = parseComponent(typed, wantLen)
			clear(typed)
			if err == nil {
				err = distinctComponent(comp, comps)
				if err != nil {
					clear(comp)
				}
			}
			if err == nil {
				break
			}
			if !in.interactive() {
				return usagef("component %d: %v", i, err)
			}
			if attempt == maxAttempts {
				return usagef("component %d: %v; too many attempts (%d), nothing stored", i, err, maxAttempts)
			}
			fmt.Fprintf(stderr, "atmctl: component %d: %v; try again\n", i, err)
		}
		comps = append(comps, comp)
		kcv, err := hsm.KCVOf(comp)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Component %d KCV: %s\n", i, kcv)
	}

	// Form the key in a scratch module first so that a wrong expected KCV
	// leaves the store untouched.
	scratch := hsm.NewSoft()
	_, kcv, err := scratch.FormKey(name, comps...)
	scratch.Close()
	if err != nil {
		return err
	}
	if *expect != "" && !strings.EqualFold(*expect, kcv) {
		return fmt.Errorf("final KCV %s does not match the expected %s; nothing stored", kcv, strings.ToUpper(*expect))
	}
	_, stored, err := s.FormKey(name, comps...)
	if err != nil {
		return err
	}
	if stored != kcv {
		return fmt.Errorf("internal error: KCV %s after storing, %s before", stored, kcv)
	}
	fmt.Fprintf(stdout, "%s KCV: %s\n", strings.ToUpper(string(name)), kcv)
	fmt.Fprintf(stdout, "%s stored as %q in %s\n", strings.ToUpper(string(name)), string(name), where)
	return nil
}
