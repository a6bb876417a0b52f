package ui

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync"

	"gioui.org/font"
	"gioui.org/font/gofont"
	"gioui.org/font/opentype"
)

// DefaultCJKFontPaths are the system font files (fontconfig locations on
// Debian/Ubuntu and Fedora) tried, in order, for Chinese text.
var DefaultCJKFontPaths = []string{
	"/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
	"/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",
	"/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
	"/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
	"/usr/share/fonts/truetype/arphic/uming.ttc",
}

type fontSet struct {
	faces    []font.FontFace
	typeface font.Typeface
}

var (
	fontMu    sync.Mutex
	fontCache = map[string]fontSet{}
)

// loadFonts returns the Go fonts plus the first CJK font family found in
// paths (each file parsed at most once per process) and the typeface to use
// as the theme default. When no CJK font is found it logs a warning and falls
// back to the Go fonts, which cannot show Chinese.
func loadFonts(log *slog.Logger, paths []string) fontSet {
	keyStr := strings.Join(paths, "\x00")
	fontMu.Lock()
	defer fontMu.Unlock()
	if fs, ok := fontCache[keyStr]; ok {
		return fs
	}
	fs := fontSet{faces: gofont.Collection(), typeface: "Go"}
	var family font.Typeface
	var loaded []string
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		faces, err := opentype.ParseCollection(data)
		if err != nil {
			log.Warn("ui: cannot parse font", "path", p, "err", err)
			continue
		}
		// A Noto CJK collection holds JP, KR, SC, TC and HK faces: prefer
		// Simplified Chinese, and keep one family only.
		var pick []font.FontFace
		for _, f := range faces {
			tf := string(f.Font.Typeface)
			if family != "" && f.Font.Typeface != family {
				continue
			}
			if family == "" && len(faces) > 1 && !strings.Contains(tf, " SC") && strings.Contains(tf, "CJK") {
				continue
			}
			pick = append(pick, f)
		}
		if len(pick) == 0 {
			continue
		}
		if family == "" {
			family = pick[0].Font.Typeface
		}
		fs.faces = append(fs.faces, pick...)
		loaded = append(loaded, p)
	}
	if family == "" {
		log.Warn("ui: no CJK font found, Chinese text will not render; install fonts-noto-cjk", "tried", paths)
	} else {
		fs.typeface = family
		log.Info("ui: CJK font loaded", "typeface", string(family), "files", loaded)
	}
	fontCache[keyStr] = fs
	// Parsing a CJK collection builds every face in it; only the picked
	// ones stay referenced. Hand the rest back to the OS now rather than
	// keep a peak the appliance never needs again.
	debug.FreeOSMemory()
	return fs
}
