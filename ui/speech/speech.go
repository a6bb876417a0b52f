// Package speech reads the kiosk's audio guidance aloud with espeak-ng
// (Debian's espeak-ng package): a ui.Speaker that runs the synthesizer,
// piping its WAV output to a player (aplay, paplay) or letting espeak-ng
// play on the system's audio output itself.
package speech

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/cardless-atm/cardless/ui/i18n"
)

// DefaultVoices are the espeak-ng voices of the languages. Debian's
// espeak-ng 1.51 "cmn" voice reads Chinese characters as pinyin spelled
// with English sounds ("ni three hao three"); "cmn-latn-pinyin" reads them
// in Mandarin.
var DefaultVoices = map[i18n.Lang]string{i18n.English: "en", i18n.Chinese: "cmn-latn-pinyin"}

// ErrNoVoice is returned for a language without a voice.
var ErrNoVoice = errors.New("speech: no voice for the language")

// Espeak speaks with espeak-ng. The zero value runs "espeak-ng" on the
// PATH, plays through espeak-ng's own audio output and uses DefaultVoices.
type Espeak struct {
	// Command is the synthesizer ("espeak-ng" when empty).
	Command string
	// Player, when set, is the command (and its arguments) that plays the
	// WAV stream espeak-ng writes to its standard output, read on its
	// standard input: {"aplay", "-q"}, {"paplay"}.
	Player []string
	// Voices overrides DefaultVoices.
	Voices map[i18n.Lang]string
	// Speed is the rate in words per minute (espeak-ng's default, 175,
	// when 0).
	Speed int
}

func (e *Espeak) voice(l i18n.Lang) (string, error) {
	v, ok := e.Voices[l]
	if !ok {
		v, ok = DefaultVoices[l]
	}
	if !ok {
		return "", fmt.Errorf("%w %s", ErrNoVoice, l)
	}
	return v, nil
}

// synth returns the espeak-ng command that speaks text read on its
// standard input (never an argument: a text starting with "-" is not an
// option) with the extra arguments.
func (e *Espeak) synth(ctx context.Context, l i18n.Lang, text string, extra ...string) (*exec.Cmd, error) {
	v, err := e.voice(l)
	if err != nil {
		return nil, err
	}
	name := e.Command
	if name == "" {
		name = "espeak-ng"
	}
	args := []string{"-v", v, "--stdin"}
	if e.Speed > 0 {
		args = append(args, "-s", fmt.Sprint(e.Speed))
	}
	cmd := exec.CommandContext(ctx, name, append(args, extra...)...)
	// One line: espeak-ng reads its standard input by lines.
	cmd.Stdin = strings.NewReader(strings.Join(strings.Fields(text), " ") + "\n")
	return cmd, nil
}

// Say speaks text in l and returns when it has been played, or when ctx
// is cancelled, having stopped the synthesizer and the player.
func (e *Espeak) Say(ctx context.Context, l i18n.Lang, text string) error {
	if len(e.Player) == 0 {
		cmd, err := e.synth(ctx, l, text)
		if err != nil {
			return err
		}
		return run(ctx, cmd)
	}
	cmd, err := e.synth(ctx, l, text, "--stdout")
	if err != nil {
		return err
	}
	play := exec.CommandContext(ctx, e.Player[0], e.Player[1:]...)
	var perr bytes.Buffer
	play.Stderr = &perr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	play.Stdin = pipe
	var serr bytes.Buffer
	cmd.Stderr = &serr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("speech: %s: %w", cmd.Path, err)
	}
	if err := play.Start(); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("speech: player %s: %w", e.Player[0], err)
	}
	perrw := play.Wait()
	if perrw != nil {
		cmd.Process.Kill() // the player is gone: nothing reads the stream
	}
	serrw := cmd.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if serrw != nil {
		return fmt.Errorf("speech: %s: %w: %s", cmd.Path, serrw, strings.TrimSpace(serr.String()))
	}
	if perrw != nil {
		return fmt.Errorf("speech: player %s: %w: %s", e.Player[0], perrw, strings.TrimSpace(perr.String()))
	}
	return nil
}

// WriteWAV writes text spoken in l to the WAV file path.
func (e *Espeak) WriteWAV(ctx context.Context, l i18n.Lang, text, path string) error {
	cmd, err := e.synth(ctx, l, text, "-w", path)
	if err != nil {
		return err
	}
	return run(ctx, cmd)
}

func run(ctx context.Context, cmd *exec.Cmd) error {
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("speech: %s: %w: %s", cmd.Path, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
