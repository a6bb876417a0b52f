package fontsubset

import (
	"bytes"
	"fmt"
)

func ExampleSubset() {
	src := tinyFont() // a CID-keyed CFF font mapping A, B and C (an os.File works alike)
	sub, err := Subset(bytes.NewReader(src), int64(len(src)), 0, []rune("CAT"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("mapped %q, no glyph for %q, %d of %d glyphs kept\n", string(sub.Runes), string(sub.Missing), sub.Glyphs, sub.NumGlyphs)
	// Output: mapped "AC", no glyph for "T", 4 of 5 glyphs kept
}
