package screenshots

import (
	"image"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteAll(t *testing.T) {
	dir := t.TempDir()
	files, err := WriteAll(dir, image.Pt(640, 400))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 26 {
		t.Fatalf("%d files, want 26 (13 screens x 2 languages)", len(files))
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
