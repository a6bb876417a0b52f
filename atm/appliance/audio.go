package appliance

import (
	"fmt"
	"os/exec"

	"gioui.org/io/key"

	"github.com/cardless-atm/cardless/ui"
	"github.com/cardless-atm/cardless/ui/i18n"
	"github.com/cardless-atm/cardless/ui/speech"
)

// audioOptions sets the audio guidance of the kiosk's UI from the
// configuration's "audio": nothing when it is absent or disabled; an
// error when it is enabled but its synthesizer or player is not
// installed (the caller logs it: the kiosk then runs without guidance).
func audioOptions(au *Audio, opts *ui.Options) error {
	if au == nil || !au.Enabled {
		return nil
	}
	e := &speech.Espeak{Command: au.Command, Player: au.Player}
	cmd := au.Command
	if cmd == "" {
		cmd = "espeak-ng"
	}
	if _, err := exec.LookPath(cmd); err != nil {
		return fmt.Errorf("audio: synthesizer %q: %w (Debian: apt-get install espeak-ng)", cmd, err)
	}
	if len(au.Player) > 0 {
		if _, err := exec.LookPath(au.Player[0]); err != nil {
			return fmt.Errorf("audio: player %q: %w", au.Player[0], err)
		}
	}
	if len(au.Voices) > 0 {
		e.Voices = map[i18n.Lang]string{}
		for _, l := range i18n.Langs {
			if v, ok := au.Voices[l.String()]; ok {
				e.Voices[l] = v
			}
		}
	}
	opts.Speaker = e
	opts.SpeechKey = key.Name(au.Key)
	return nil
}
