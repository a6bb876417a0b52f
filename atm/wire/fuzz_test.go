package wire

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cardless-atm/cardless/hsm"
)

var genSeeds = flag.Bool("wire.genseeds", false, "rewrite the fuzz seed corpus under testdata/fuzz")

// FuzzReadFrame: ReadFrame never panics, and a frame it accepts is
// exactly what WriteFrame produces for the returned message.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("\x00\x040800"))
	f.Add([]byte("\x00\x09\x60\x00\x10\x00\x000800"))
	f.Add([]byte("\x00\x00"))
	f.Add([]byte("\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fr := range []Framer{{}, {TPDU: testTPDU}, {MaxSize: 16}} {
			msg, err := fr.ReadFrame(bytes.NewReader(data))
			if err != nil {
				if msg != nil {
					t.Fatal("message returned with an error")
				}
				continue
			}
			var out bytes.Buffer
			if err := fr.WriteFrame(&out, msg); err != nil {
				t.Fatalf("accepted frame cannot be written back: %v", err)
			}
			if fr.TPDU == nil && !bytes.HasPrefix(data, out.Bytes()) {
				t.Fatal("accepted frame differs from its re-encoding")
			}
			if fr.TPDU != nil && (len(data) < out.Len() || !bytes.Equal(data[2+TPDULen:out.Len()], msg) || data[2] != 0x60) {
				t.Fatal("accepted TPDU frame differs from its re-encoding")
			}
		}
	})
}

// FuzzOpen: Open never panics, never returns both a message and an error,
// and accepts only messages whose MAC verifies: an accepted message is
// exactly what Seal produces for it. Open also agrees with the general
// implementation through the module (openGeneric) on every input: same
// acceptance, same message, same error details; and the fast path's
// canonical-form scan agrees with the module's unpack and re-pack.
func FuzzOpen(f *testing.F) {
	mod := newModule(f)
	p := NewProtector(mod, gen1)
	for _, raw := range seedMessages(f, p) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkOpenSame(t, p, data)
		checkScan(t, data)
		m, err := p.Open(data)
		if (m == nil) == (err == nil) {
			t.Fatalf("Open returned message %v and error %v", m != nil, err)
		}
		if err != nil {
			return
		}
		body := len(data) - 16
		mac, herr := hex.DecodeString(string(data[body:]))
		if herr != nil {
			t.Fatal("accepted message has no hex MAC at its end")
		}
		key := gen1.macKey(MTI(m))
		if err := mod.VerifyMAC(key, data[:body], mac, hsm.PaddingMethod2); err != nil {
			t.Fatalf("accepted message whose MAC does not verify: %v", err)
		}
		again, err := p.Seal(m)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted message is not what Seal produces: %v", err)
		}
	})
}

// seedMessages returns real sealed messages of every type plus a few
// near misses.
func seedMessages(tb testing.TB, p *Protector) [][]byte {
	var out [][]byte
	od := OriginalData{MTI: "0200", STAN: "000123", TransmitDT: "1121063015", AcquirerID: "12345678"}.String()
	for _, v := range []any{
		sampleWithdrawal(),
		&NetMgmt{MTI: MTINetMgmtRequest, TransmissionDateTime: "1121063015", STAN: "000001", TerminalID: "ATM00001", NetMgmtCode: NetSignOn},
		&NetMgmt{MTI: MTINetMgmtResponse, TransmissionDateTime: "1121063015", STAN: "000001", ResponseCode: RCApproved, TerminalID: "ATM00001", NetMgmtCode: NetSignOn,
			AdditionalData: KeyBlock{TAK: bytes.Repeat([]byte{0xA1}, 16), TAKKCV: "ABC123", TEK: bytes.Repeat([]byte{0xB2}, 16), TEKKCV: "DEF456"}.String()},
		&Withdrawal{MTI: MTIFinancialResp, STAN: "000123", ResponseCode: RCApproved, AuthCode: "A1B2C3", TerminalID: "ATM00001", DispenseToken: "NONCE=254611E63B2531576314E86527338D61,TOKENFORMAT=1"},
		&Advice{MTI: MTIAdvice, STAN: "000124", Amount: FormatAmount(50000), TerminalID: "ATM00001", OriginalData: od},
		&Reversal{MTI: MTIReversal, STAN: "000125", Amount: FormatAmount(50000), ResponseCode: ReasonLateResponse, TerminalID: "ATM00001", OriginalData: od,
			ReplacementAmounts: ReplacementAmounts{Transaction: 30000, Settlement: 30000}.String()},
		sampleReconRequest(),
		sampleReconResponse(tb),
	} {
		out = append(out, mustSeal(tb, p, v))
	}
	noMAC, _ := mustBuild(tb, sampleWithdrawal()).Pack()
	tampered := bytes.Clone(out[0])
	tampered[30] ^= 1
	// Last: a 0200 with the phone's device ID (field 123, encrypted).
	return append(out, noMAC, tampered, out[1][:len(out[1])-1], mustSeal(tb, p, withDevice()))
}

// TestGenerateFuzzSeeds writes the seed corpus under testdata/fuzz when
// run with -wire.genseeds. In every run it checks that each committed seed
// file is exactly what the current code generates (as TestSealGolden does
// for its golden file), so a stale seed fails here, and that the seeds
// that are real sealed messages open and the near misses do not.
func TestGenerateFuzzSeeds(t *testing.T) {
	p := NewProtector(newModule(t), gen1)
	seeds := seedMessages(t, p)
	corpus := func(s []byte) []byte { return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", s) }
	files := map[string][]byte{} // path -> content
	openDir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	for i, s := range seeds {
		files[filepath.Join(openDir, fmt.Sprintf("seed-%02d", i))] = corpus(s)
	}
	var b bytes.Buffer
	if err := (Framer{}).WriteFrame(&b, seeds[0]); err != nil {
		t.Fatal(err)
	}
	plain := bytes.Clone(b.Bytes())
	b.Reset()
	if err := (Framer{TPDU: testTPDU}).WriteFrame(&b, seeds[1]); err != nil {
		t.Fatal(err)
	}
	frameDir := filepath.Join("testdata", "fuzz", "FuzzReadFrame")
	files[filepath.Join(frameDir, "plain-0200")] = corpus(plain)
	files[filepath.Join(frameDir, "tpdu-0800")] = corpus(b.Bytes())
	files[filepath.Join(frameDir, "truncated")] = corpus(plain[:40])

	if *genSeeds {
		for path, content := range files {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, path := range slices.Sorted(maps.Keys(files)) {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("committed seed missing (regenerate with -wire.genseeds): %v", err)
		}
		if !bytes.Equal(got, files[path]) {
			t.Errorf("committed seed %s differs from the generated one (regenerate with -wire.genseeds)", path)
		}
	}
	// No committed seed-NN file beyond those generated.
	extra, err := filepath.Glob(filepath.Join(openDir, "seed-*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range extra {
		if _, ok := files[path]; !ok {
			t.Errorf("stale committed seed %s: not generated any more", path)
		}
	}

	// The first eight seeds and the last are real sealed messages and
	// must open; the three between them are near misses and must not.
	last := len(seeds) - 1
	for i, s := range append(seeds[:8:8], seeds[last]) {
		if _, err := p.Open(s); err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
	}
	for i, s := range seeds[8:last] {
		if _, err := p.Open(s); err == nil {
			t.Fatalf("bad seed %d opens", 8+i)
		}
	}
}
