package wire

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestDescribeAndLogValueMask(t *testing.T) {
	w := withDevice()
	m := mustBuild(t, w)
	m.Field(2, "6222021234567890123")
	m.Field(FieldAdditionalData, "TAK=00112233445566778899AABBCCDDEEFF")
	m.Field(FieldDispenseToken, "NONCE=X,HMACSHA256=FFEEDDCC")
	// Fields the library's default filters mask: track 2 (35) and EMV
	// data (55). LogValue must mask them as Describe does.
	m.Field(35, "4761739001010119=25122011143804489")
	m.Field(55, "9F2608C0FFEE1234567890ABCD5F2A020978")
	secrets := []string{w.QRPayload, w.CustomerID, w.DeviceID, "123456789ABCDEF0", "00112233445566778899AABBCCDDEEFF", "HMACSHA256=FFEEDDCC", "6222021234567890123",
		"4761739001010119", "C0FFEE1234567890ABCD"}

	var buf bytes.Buffer
	if err := Describe(m, &buf); err != nil {
		t.Fatal(err)
	}
	var lb bytes.Buffer
	slog.New(slog.NewTextHandler(&lb, nil)).Info("msg", "m", LogValue(m), "lazy", Loggable(m))
	for name, out := range map[string]string{"Describe": buf.String(), "LogValue": lb.String()} {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s shows a sensitive value in clear", name)
			}
		}
		for _, s := range []string{"ATM00001", "000000050000", "6222", "0123", "redacted", "4761****0119", "9F26 ... 0978"} {
			if !strings.Contains(out, s) {
				t.Errorf("%s lacks %q:\n%s", name, s, out)
			}
		}
	}
}
