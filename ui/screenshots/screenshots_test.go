package screenshots

import (
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/cardless-atm/cardless/ui/i18n"
)

func TestWriteAll(t *testing.T) {
	dir := t.TempDir()
	files, err := WriteAll(dir, image.Pt(640, 400))
	if err != nil {
		t.Fatal(err)
	}
	if want := len(Shots()) * len(i18n.Langs); len(files) != want || want != 70 {
		t.Fatalf("%d files, want %d (18 screens and 17 variants x 2 languages)", len(files), want)
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil || st.Size() < 1000 {
			t.Fatalf("%s: %v size %d", f, err, st.Size())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "qr-zh.png")); err != nil {
		t.Fatal(err)
	}
}
