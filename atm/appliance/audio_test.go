package appliance

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gioui.org/io/key"

	"github.com/cardless-atm/cardless/ui"
)

// withAudio returns the shipped configuration with an "audio" object.
func withAudio(t *testing.T, audio string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../configs/atm.json")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(b))
	return []byte(strings.TrimSuffix(s, "}") + `, "audio": ` + audio + "}")
}

func TestAudioConfig(t *testing.T) {
	c, err := Parse(withAudio(t, `{"enabled": true, "player": ["aplay", "-q"], "key": "F9", "voices": {"zh": "cmn-latn-pinyin"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Audio; a == nil || !a.Enabled || a.Key != "F9" || len(a.Player) != 2 || a.Voices["zh"] != "cmn-latn-pinyin" {
		t.Fatalf("audio = %+v", c.Audio)
	}
	_, err = Parse(withAudio(t, `{"enabled": true, "player": [""], "key": "F12", "voices": {"fr": "fr", "en": "-x"}}`))
	if err == nil {
		t.Fatal("bad audio accepted")
	}
	for _, field := range []string{"audio.player[0]", "audio.key", `audio.voices: "fr"`, "audio.voices.en"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s:\n%v", field, err)
		}
	}
}

func TestAudioOptions(t *testing.T) {
	var opts ui.Options
	if err := audioOptions(&Audio{Enabled: false}, &opts); err != nil || opts.Speaker != nil {
		t.Fatalf("disabled: %v %v", err, opts.Speaker)
	}
	missing := filepath.Join(t.TempDir(), "espeak-ng")
	if err := audioOptions(&Audio{Enabled: true, Command: missing}, &opts); err == nil || opts.Speaker != nil {
		t.Fatalf("missing synthesizer: %v %v", err, opts.Speaker)
	}
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skipf("espeak-ng not installed (make deps): %v", err)
	}
	if err := audioOptions(&Audio{Enabled: true, Player: []string{missing}}, &opts); err == nil || opts.Speaker != nil {
		t.Fatalf("missing player: %v %v", err, opts.Speaker)
	}
	if err := audioOptions(&Audio{Enabled: true, Key: "F10"}, &opts); err != nil || opts.Speaker == nil || opts.SpeechKey != key.NameF10 {
		t.Fatalf("enabled: %v %v %q", err, opts.Speaker, opts.SpeechKey)
	}
}
