package wire

import (
	"bytes"
	"crypto/cipher"
	"crypto/des"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/moov-io/iso8583"

	"github.com/cardless-atm/cardless/hsm"
)

func TestRoundTripEachMessageType(t *testing.T) {
	atm, peer := pair(t)
	od := OriginalData{MTI: "0200", STAN: "000123", TransmitDT: "1121063015", AcquirerID: "12345678"}
	cases := []struct {
		name string
		in   any
		out  any
	}{
		{"0800 sign-on", &NetMgmt{MTI: MTINetMgmtRequest, TransmissionDateTime: "1121063015", STAN: "000001", TerminalID: "ATM00001", NetMgmtCode: NetSignOn}, &NetMgmt{}},
		{"0810 sign-on", &NetMgmt{MTI: MTINetMgmtResponse, TransmissionDateTime: "1121063015", STAN: "000001", ResponseCode: RCApproved, TerminalID: "ATM00001", NetMgmtCode: NetSignOn,
			AdditionalData: KeyBlock{TAK: bytes.Repeat([]byte{0xA1}, 16), TAKKCV: "ABC123", TEK: bytes.Repeat([]byte{0xB2}, 16), TEKKCV: "DEF456"}.String()}, &NetMgmt{}},
		{"0800 echo", &NetMgmt{MTI: MTINetMgmtRequest, TransmissionDateTime: "1121063015", STAN: "000002", TerminalID: "ATM00001", NetMgmtCode: NetEcho}, &NetMgmt{}},
		{"0200", sampleWithdrawal(), &Withdrawal{}},
		{"0210", &Withdrawal{MTI: MTIFinancialResp, ProcessingCode: ProcCashWithdrawal, Amount: FormatAmount(50000), TransmissionDateTime: "1121063015", STAN: "000123",
			RRN: "532506000123", AuthCode: "A1B2C3", ResponseCode: RCApproved, TerminalID: "ATM00001", Currency: "156",
			DispenseToken: "NONCE=254611E63B2531576314E86527338D61,TOKENFORMAT=1,TOKENLENGTH=0164,DISPENSE1=500.00CNY,HMACSHA256=" + strings.Repeat("AB", 32)}, &Withdrawal{}},
		{"0210 partial", &Withdrawal{MTI: MTIFinancialResp, STAN: "000123", ResponseCode: RCApproved, TerminalID: "ATM00001",
			ReplacementAmounts: ReplacementAmounts{Transaction: 30000, Settlement: 30000}.String()}, &Withdrawal{}},
		{"0220", &Advice{MTI: MTIAdvice, ProcessingCode: ProcCashWithdrawal, Amount: FormatAmount(50000), TransmissionDateTime: "1121063100", STAN: "000124",
			RRN: "532506000123", AuthCode: "A1B2C3", ResponseCode: RCApproved, TerminalID: "ATM00001", Currency: "156", OriginalData: od.String(),
			ReplacementAmounts: ReplacementAmounts{Transaction: 50000, Settlement: 50000}.String()}, &Advice{}},
		{"0230", &Advice{MTI: MTIAdviceResp, STAN: "000124", ResponseCode: RCApproved, TerminalID: "ATM00001"}, &Advice{}},
		{"0420", &Reversal{MTI: MTIReversal, ProcessingCode: ProcCashWithdrawal, Amount: FormatAmount(50000), TransmissionDateTime: "1121063200", STAN: "000125",
			RRN: "532506000123", ResponseCode: ReasonPartialDispense, TerminalID: "ATM00001", Currency: "156", OriginalData: od.String(),
			ReplacementAmounts: ReplacementAmounts{Transaction: 30000, Settlement: 30000}.String()}, &Reversal{}},
		{"0430", &Reversal{MTI: MTIReversalResp, STAN: "000125", ResponseCode: RCApproved, TerminalID: "ATM00001"}, &Reversal{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := mustSeal(t, atm, tc.in)
			got, err := peer.Open(raw)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if err := Parse(got, tc.out); err != nil {
				t.Fatal(err)
			}
			// The sender's struct gains field 96; everything else must match.
			want := reflect.ValueOf(tc.in).Elem()
			gotV := reflect.ValueOf(tc.out).Elem()
			kcv, _ := peer.c.KCV(gen1.macKey(MTI(got)))
			want.FieldByName("MACKeyKCV").SetString(kcv)
			if !reflect.DeepEqual(want.Interface(), gotV.Interface()) {
				t.Fatalf("round trip differs:\n got %+v\nwant %+v", gotV.Interface(), want.Interface())
			}
			if _, err := got.GetBytes(FieldMAC128); err != nil {
				t.Fatalf("MAC not in field 128: %v", err)
			}
		})
	}
}

func TestSealEncryptsSensitiveFields(t *testing.T) {
	atm, _ := pair(t)
	w := withDevice()
	in := mustBuild(t, w)
	raw, err := atm.Seal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{w.QRPayload, w.CustomerID, w.DeviceID, "NONCE-7f3a9c"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("sealed message contains a sensitive value in clear")
		}
	}
	// Seal works on a copy: the caller's message is unchanged.
	if s, _ := in.GetString(FieldQRPayload); s != w.QRPayload {
		t.Fatal("Seal changed the caller's message")
	}
	if in.GetField(FieldMAC128) != nil || in.GetField(FieldMACKeyKCV) != nil {
		t.Fatal("Seal set fields on the caller's message")
	}
	// On the wire, fields 62, 120 and 123 are the binary cipher text (3DES-CBC
	// under the data key of the padded clear value), after an LLL length
	// in bytes: read them with the module alone and decrypt them here.
	wireMsg := iso8583.NewMessage(Spec)
	if err := wireMsg.Unpack(raw); err != nil {
		t.Fatal(err)
	}
	for id, clear := range map[int]string{FieldQRPayload: w.QRPayload, FieldCustomerID: w.CustomerID, FieldDeviceID: w.DeviceID} {
		ct, _ := wireMsg.GetString(id)
		if len(ct) != len(pad2To(nil, clear)) {
			t.Fatalf("field %d: %d bytes of cipher text for %d clear bytes", id, len(ct), len(clear))
		}
		k := testKey(3) // tek.1, the data key of gen1
		block, err := des.NewTripleDESCipher(append(append([]byte{}, k...), k[:8]...))
		if err != nil {
			t.Fatal(err)
		}
		pt := make([]byte, len(ct))
		cipher.NewCBCDecrypter(block, make([]byte, 8)).CryptBlocks(pt, []byte(ct))
		if string(pt) != string(pad2To(nil, clear)) {
			t.Fatalf("field %d does not decrypt to the padded clear value", id)
		}
	}
	// Deterministic: same input, same keys, same bytes.
	again, err := atm.Seal(in)
	if err != nil || !bytes.Equal(raw, again) {
		t.Fatalf("Seal is not deterministic: %v", err)
	}
}

func TestEveryTamperedByteIsRejected(t *testing.T) {
	atm, peer := pair(t)
	raw := mustSeal(t, atm, sampleWithdrawal())
	for i := range raw {
		for _, delta := range []byte{1, 0x20} {
			bad := bytes.Clone(raw)
			bad[i] ^= delta
			m, err := peer.Open(bad)
			if err == nil || m != nil {
				t.Fatalf("byte %d ^ %#x: tampered message accepted", i, delta)
			}
			if !errors.Is(err, ErrMAC) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("byte %d: unexpected error %v", i, err)
			}
		}
	}
	// A well-formed change of a digit in the amount is a MAC failure.
	s := string(raw)
	i := strings.Index(s, FormatAmount(50000))
	bad := []byte(s[:i] + FormatAmount(90000) + s[i+12:])
	_, err := peer.Open(bad)
	var me *MessageError
	if !errors.Is(err, ErrMAC) || !errors.As(err, &me) || me.MTI != "0200" || me.STAN != "000123" {
		t.Fatalf("changed amount: got %v", err)
	}
}

func TestOpenFailsClosed(t *testing.T) {
	atm, peer := pair(t)
	base := mustBuild(t, sampleWithdrawal())

	// No MAC at all.
	noMAC, _ := base.Pack()
	if _, err := peer.Open(noMAC); !errors.Is(err, ErrMAC) {
		t.Errorf("no MAC: %v", err)
	}
	// Field 96 absent but MAC present: pack with a MAC field only.
	m2 := mustBuild(t, sampleWithdrawal())
	m2.BinaryField(FieldMAC128, make([]byte, 8))
	raw2, _ := m2.Pack()
	if _, err := peer.Open(raw2); !errors.Is(err, ErrMAC) {
		t.Errorf("no field 96: %v", err)
	}
	// MAC'd with a key the peer does not accept (gen2 while the peer is on gen1 only).
	other := NewProtector(newModule(t), gen2)
	raw3 := mustSeal(t, other, sampleWithdrawal())
	if _, err := peer.Open(raw3); !errors.Is(err, ErrMAC) {
		t.Errorf("unknown key: %v", err)
	}
	// A 0200 MAC'd with the network management key instead of the TAK.
	wrong := NewProtector(newModule(t), KeySet{NetMgmtMAC: netMAC, MAC: netMAC, Data: "tek.1"})
	raw4 := mustSeal(t, wrong, sampleWithdrawal())
	if _, err := peer.Open(raw4); !errors.Is(err, ErrMAC) {
		t.Errorf("wrong key class: %v", err)
	}
	// Trailing bytes after the MAC.
	good := mustSeal(t, atm, sampleWithdrawal())
	if _, err := peer.Open(append(bytes.Clone(good), '0')); err == nil {
		t.Errorf("trailing byte accepted")
	}
	// Lower-case hex MAC: not canonical.
	lower := bytes.Clone(good)
	copy(lower[len(lower)-16:], bytes.ToLower(lower[len(lower)-16:]))
	if !bytes.Equal(lower, good) {
		if _, err := peer.Open(lower); !errors.Is(err, ErrMalformed) {
			t.Errorf("lower-case MAC: %v", err)
		}
	}
	// Garbage.
	for _, g := range [][]byte{nil, []byte("0"), []byte("0200"), []byte("0200FFFFFFFFFFFFFFFF")} {
		if _, err := peer.Open(g); !errors.Is(err, ErrMalformed) {
			t.Errorf("garbage %q: %v", g, err)
		}
	}
}

func TestErrorsCarryNoContent(t *testing.T) {
	atm, peer := pair(t)
	raw := mustSeal(t, atm, sampleWithdrawal())
	raw[len(raw)-1] ^= 1
	_, err := peer.Open(raw)
	msg := err.Error()
	for _, s := range []string{"ATM00001", "50000", "532506000123", "CUST"} {
		if strings.Contains(msg, s) {
			t.Fatalf("error text %q contains message content", msg)
		}
	}
}

func TestKeyRollover(t *testing.T) {
	atm, proxy := pair(t)

	// The proxy moves to gen2; the ATM still sends under gen1.
	proxy.SetKeys(gen2)
	w := sampleWithdrawal()
	m, err := proxy.Open(mustSeal(t, atm, w))
	if err != nil {
		t.Fatalf("previous keys not accepted: %v", err)
	}
	if s, _ := m.GetString(FieldCustomerID); s != w.CustomerID {
		t.Fatal("field 120 not decrypted with the previous data key")
	}
	// Network management still verifies (same NetMgmtMAC in both sets).
	echo := &NetMgmt{MTI: MTINetMgmtRequest, TransmissionDateTime: "1121063015", STAN: "000009", TerminalID: "ATM00001", NetMgmtCode: NetEcho}
	if _, err := proxy.Open(mustSeal(t, atm, echo)); err != nil {
		t.Fatal(err)
	}
	// The ATM cannot open gen2 traffic until it has the new keys.
	fromProxy := mustSeal(t, proxy, w)
	if _, err := atm.Open(fromProxy); !errors.Is(err, ErrMAC) {
		t.Fatalf("gen2 before the ATM has it: %v", err)
	}
	atm.SetKeys(gen2)
	if m, err := atm.Open(fromProxy); err != nil {
		t.Fatal(err)
	} else if s, _ := m.GetString(FieldQRPayload); s != w.QRPayload {
		t.Fatal("field 62 not decrypted with the current data key")
	}
	// After DropPrevious, gen1 messages fail.
	old := NewProtector(newModule(t), gen1)
	proxy.DropPrevious()
	if _, err := proxy.Open(mustSeal(t, old, w)); !errors.Is(err, ErrMAC) {
		t.Fatalf("dropped keys still accepted: %v", err)
	}
	if _, err := proxy.Open(mustSeal(t, atm, w)); err != nil {
		t.Fatal(err)
	}
}

func TestProtectorConcurrent(t *testing.T) {
	atm, proxy := pair(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				w := sampleWithdrawal()
				w.STAN = FormatSTAN(uint32(g*1000 + i))
				m, err := Build(w)
				if err != nil {
					errs <- err
					return
				}
				raw, err := atm.Seal(m)
				if err != nil {
					errs <- err
					return
				}
				if _, err := proxy.Open(raw); err != nil {
					errs <- fmt.Errorf("goroutine %d message %d: %w", g, i, err)
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 25 {
			proxy.SetKeys(gen1) // previous and current are both gen1
			_ = proxy.Keys()
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSealErrors(t *testing.T) {
	atm, _ := pair(t)
	w := sampleWithdrawal()
	w.CustomerID = strings.Repeat("x", MaxEncryptedPlain+1)
	if _, err := atm.Seal(mustBuild(t, w)); !errors.Is(err, ErrFieldTooLong) {
		t.Fatalf("too long: %v", err)
	}
	w.CustomerID = strings.Repeat("x", MaxEncryptedPlain)
	if _, err := atm.Seal(mustBuild(t, w)); err != nil {
		t.Fatalf("longest value: %v", err)
	}
	missing := NewProtector(newModule(t), KeySet{NetMgmtMAC: netMAC, MAC: "nope", Data: "tek.1"})
	if _, err := missing.Seal(mustBuild(t, sampleWithdrawal())); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	if _, err := atm.Seal(nil); err == nil {
		t.Fatal("nil message sealed")
	}
}

func TestPadding2(t *testing.T) {
	for n := range 20 {
		in := bytes.Repeat([]byte{0x80}, n)
		p := pad2To(nil, in)
		if len(p)%8 != 0 || len(p) <= n || len(p) > n+8 {
			t.Fatalf("pad2To(%d) has length %d", n, len(p))
		}
		if !bytes.Equal(pad2To(make([]byte, 0, 1), string(in)), p) {
			t.Fatalf("pad2To of a string differs from pad2To of bytes (%d)", n)
		}
		out, ok := unpad2(p)
		if !ok || !bytes.Equal(out, in) {
			t.Fatalf("unpad2(pad2To(%d)) failed", n)
		}
	}
	for _, bad := range [][]byte{{}, make([]byte, 8), {1, 2, 3, 4, 5, 6, 7, 8}, append([]byte{0x80}, make([]byte, 8)...)} {
		if _, ok := unpad2(bad); ok {
			t.Fatalf("unpad2(% x) accepted", bad)
		}
	}
}
