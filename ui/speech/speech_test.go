package speech_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/speech"
)

var _ ui.Speaker = (*speech.Espeak)(nil)

func need(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s not installed (Debian: apt-get install espeak-ng sox; make deps): %v", c, err)
		}
	}
}

// stat returns the length (seconds) and RMS amplitude of a WAV file as
// sox's stat effect reports them.
func stat(t *testing.T, path string) (length, rms float64) {
	t.Helper()
	out, err := exec.Command("sox", path, "-n", "stat").CombinedOutput()
	if err != nil {
		t.Fatalf("sox stat: %v: %s", err, out)
	}
	field := func(name string) float64 {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:\s+([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("sox stat has no %q: %s", name, out)
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return field("Length (seconds)"), field("RMS     amplitude")
}

// span is the range of plausible lengths of text read aloud: English at
// 1.5 to 5 words a second, Chinese at 2 to 8 characters a second.
func span(l i18n.Lang, text string) (lo, hi float64) {
	if l == i18n.English {
		n := float64(len(regexp.MustCompile(`\S+`).FindAllString(text, -1)))
		return n / 5, n / 1.5
	}
	n := float64(utf8.RuneCountInString(text))
	return n / 8, n / 2
}

// TestWriteWAV synthesizes screens' spoken texts in both languages and
// checks with sox that each is sound, not silence, of a length that fits
// the text.
func TestWriteWAV(t *testing.T) {
	need(t, "espeak-ng", "sox")
	dir := t.TempDir()
	var e speech.Espeak
	for _, l := range i18n.Langs {
		for _, k := range []i18n.Key{"say.welcome", "say.take", "say.off"} {
			text := i18n.T(l, k)
			if k == "say.take" {
				text = i18n.T(l, k, i18n.SpokenAmount(l, 50000, "CNY", 2))
			}
			f := filepath.Join(dir, string(k)+"-"+l.String()+".wav")
			if err := e.WriteWAV(context.Background(), l, text, f); err != nil {
				t.Fatal(err)
			}
			length, rms := stat(t, f)
			lo, hi := span(l, text)
			t.Logf("%s %s: %.2f s, RMS %.3f (%q)", l, k, length, rms, text)
			if length < lo || length > hi {
				t.Errorf("%s %s: %.2f s, want %.1f to %.1f s", l, k, length, lo, hi)
			}
			if rms < 0.02 {
				t.Errorf("%s %s: RMS amplitude %.4f: silent", l, k, rms)
			}
		}
	}
}

// TestSayThroughPlayer runs Say with a player reading the WAV stream on
// its standard input (sox, writing it to a file instead of the sound
// card) and checks what it received.
func TestSayThroughPlayer(t *testing.T) {
	need(t, "espeak-ng", "sox")
	f := filepath.Join(t.TempDir(), "played.wav")
	e := speech.Espeak{Player: []string{"sox", "-q", "-t", "wav", "-", f}}
	text := i18n.T(i18n.Chinese, "say.qr", "500元")
	if err := e.Say(context.Background(), i18n.Chinese, text); err != nil {
		t.Fatal(err)
	}
	length, rms := stat(t, f)
	if lo, hi := span(i18n.Chinese, text); length < lo || length > hi || rms < 0.02 {
		t.Errorf("played %.2f s (want %.1f to %.1f), RMS %.4f", length, lo, hi, rms)
	}
}

// TestSayCancel checks that a cancelled utterance stops and says so.
func TestSayCancel(t *testing.T) {
	need(t, "espeak-ng", "sox")
	// A player that never ends by itself: it reads the stream, then waits.
	e := speech.Espeak{Player: []string{"sh", "-c", "cat >/dev/null; exec sleep 600"}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Say(ctx, i18n.English, i18n.T(i18n.English, "say.welcome")) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Say after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second): // a safety net, not a timing assertion
		t.Fatal("Say did not return after its context was cancelled")
	}
}

func TestNoVoice(t *testing.T) {
	e := speech.Espeak{Voices: map[i18n.Lang]string{}}
	if err := e.Say(context.Background(), i18n.Lang(7), "x"); !errors.Is(err, speech.ErrNoVoice) {
		t.Fatalf("err = %v, want ErrNoVoice", err)
	}
}

func TestMissingSynthesizer(t *testing.T) {
	e := speech.Espeak{Command: filepath.Join(t.TempDir(), "no-espeak")}
	if err := e.WriteWAV(context.Background(), i18n.English, "x", filepath.Join(t.TempDir(), "x.wav")); err == nil {
		t.Fatal("no error from a missing synthesizer")
	}
}
