package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"crypto/hmac"
	"crypto/sha256"

	"github.com/cardless-atm/cardless/atm/store"
)

// journalCmd handles the journal commands that work on exported
// segments or fetch them: export, verify FILE..., find. "journal verify
// --control" (the live journal) is the ceremony package's.
func journalCmd(args []string, stdout, stderr io.Writer) (handled bool, code int) {
	if len(args) == 0 {
		return false, 0
	}
	var err error
	switch args[0] {
	case "export":
		err = journalExport(args[1:], stdout)
	case "find":
		err = journalFind(args[1:], stdout)
	case "verify":
		if hasFlag(args[1:], "control") {
			return false, 0
		}
		err = journalVerifyFiles(args[1:], stdout)
	default:
		return false, 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "atmctl journal:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return true, 2
		}
		return true, 1
	}
	return true, 0
}

type usageError string

func (u usageError) Error() string { return string(u) }

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "-"+name || a == "--"+name || strings.HasPrefix(a, "-"+name+"=") || strings.HasPrefix(a, "--"+name+"=") {
			return true
		}
	}
	return false
}

func flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("atmctl journal "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// journalExport: atmctl journal export --control ADDR [--from N] [--to M] --out FILE
func journalExport(args []string, stdout io.Writer) error {
	fs := flags("export")
	control := fs.String("control", "", "the appliance's control endpoint, host:port")
	from := fs.Uint64("from", 1, "first journal sequence number")
	to := fs.Uint64("to", 0, "last journal sequence number (0: the newest)")
	out := fs.String("out", "", "the segment file to write")
	if err := fs.Parse(args); err != nil {
		return usageError("usage: atmctl journal export --control ADDR [--from N] [--to M] --out FILE: " + err.Error())
	}
	if *control == "" || *out == "" {
		return usageError("usage: atmctl journal export --control ADDR [--from N] [--to M] --out FILE")
	}
	c := http.Client{Timeout: 30 * time.Minute}
	resp, err := c.Get(fmt.Sprintf("http://%s/journal/export?from=%d&to=%d", *control, *from, *to))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("the appliance answered %s: %s", resp.Status, e.Error)
	}
	tmp := *out + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Check what arrived before calling it a segment.
		err = verifyFiles(&store.SegmentVerifier{}, []string{tmp}, nil)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "journal segment written to %s\n", *out)
	return nil
}

// keyFileAuth is a journal authenticator from a hex key file (the
// development journal key, or a key an operator exported for audits).
type keyFileAuth struct{ key []byte }

func (k keyFileAuth) JournalMAC(data []byte) ([]byte, error) {
	m := hmac.New(sha256.New, k.key)
	m.Write(data)
	return m.Sum(nil), nil
}

func readKeyFile(path string) (keyFileAuth, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return keyFileAuth{}, err
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) < 16 {
		return keyFileAuth{}, fmt.Errorf("%s must hold the journal key as at least 32 hex digits", path)
	}
	return keyFileAuth{k}, nil
}

func verifyFiles(v *store.SegmentVerifier, files []string, fn func(store.Entry) error) error {
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		_, err = v.Verify(name, f, fn)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// journalVerifyFiles: atmctl journal verify [--key-file F] FILE...
func journalVerifyFiles(args []string, stdout io.Writer) error {
	fs := flags("verify")
	keyFile := fs.String("key-file", "", "the journal key (hex) to check the segments' MACs")
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		return usageError("usage: atmctl journal verify [--key-file F] SEGMENT... (in order) | atmctl journal verify --control ADDR")
	}
	v := &store.SegmentVerifier{}
	if *keyFile != "" {
		k, err := readKeyFile(*keyFile)
		if err != nil {
			return err
		}
		v.Auth = k
	}
	if err := verifyFiles(v, fs.Args(), nil); err != nil {
		return err
	}
	if v.MACsChecked() {
		fmt.Fprintf(stdout, "journal segments verified: %d segments, %d entries, chain and MACs good\n", v.Segments, v.Entries)
	} else {
		fmt.Fprintf(stdout, "journal segments verified: %d segments, %d entries, chain good; MACs NOT checked (no --key-file)\n", v.Segments, v.Entries)
	}
	return nil
}

// journalFind: atmctl journal find (--control ADDR | SEGMENT...) --session ID | --rrn RRN | --customer ID
func journalFind(args []string, stdout io.Writer) error {
	fs := flags("find")
	control := fs.String("control", "", "search the live journal of the appliance at host:port")
	var q store.JournalQuery
	fs.StringVar(&q.Session, "session", "", "session ID")
	fs.StringVar(&q.RRN, "rrn", "", "retrieval reference number")
	fs.StringVar(&q.Customer, "customer", "", "customer ID or its masked form (****1234)")
	if err := fs.Parse(args); err != nil || q.Empty() || (*control == "") == (fs.NArg() == 0) {
		return usageError("usage: atmctl journal find (--control ADDR | SEGMENT...) (--session ID | --rrn RRN | --customer ID)")
	}
	var found []store.Entry
	if *control != "" {
		v := url.Values{"session": {q.Session}, "rrn": {q.RRN}, "customer": {store.MaskCustomer(q.Customer)}}
		if q.Customer == "" {
			v.Del("customer")
		}
		c := http.Client{Timeout: 30 * time.Minute}
		resp, err := c.Get("http://" + *control + "/journal/find?" + v.Encode())
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var out struct {
			Entries []store.Entry `json:"entries"`
			Error   string        `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the appliance answered %s: %s %v", resp.Status, out.Error, err)
		}
		found = out.Entries
	} else {
		// Two passes over verified segments: the sessions first, then
		// their entries.
		m := &store.JournalMatcher{Q: q}
		if err := verifyFiles(&store.SegmentVerifier{}, fs.Args(), func(e store.Entry) error { m.Collect(e); return nil }); err != nil {
			return err
		}
		err := verifyFiles(&store.SegmentVerifier{}, fs.Args(), func(e store.Entry) error {
			if m.Select(e) {
				found = append(found, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	enc := json.NewEncoder(stdout)
	for _, e := range found {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	if len(found) == 0 {
		return errors.New("no journal entries match")
	}
	return nil
}
