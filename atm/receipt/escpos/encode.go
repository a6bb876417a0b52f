// Package escpos encodes receipts in ESC/POS, the command language of
// serial and USB receipt printers (Epson's, and the compatible ones ATMs
// carry), and drives such a printer over a byte stream: its status with
// DLE EOT, printing, cutting. Only the commands a receipt needs are
// encoded; golden files in testdata pin the bytes.
package escpos

import (
	"bytes"
	"fmt"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/cardless-atm/cardless/atm/receipt"
)

// Commands (ESC/POS).
var (
	cmdInit         = []byte{0x1B, '@'}        // ESC @: initialise
	cmdAlignLeft    = []byte{0x1B, 'a', 0}     // ESC a 0
	cmdAlignCenter  = []byte{0x1B, 'a', 1}     // ESC a 1
	cmdBoldOn       = []byte{0x1B, 'E', 1}     // ESC E 1
	cmdBoldOff      = []byte{0x1B, 'E', 0}     // ESC E 0
	cmdDoubleSize   = []byte{0x1D, '!', 0x11}  // GS ! 0x11: double width and height
	cmdNormalSize   = []byte{0x1D, '!', 0x00}  // GS ! 0
	cmdKanjiOn      = []byte{0x1C, '&'}        // FS &: two-byte (GB18030) characters
	cmdKanjiOff     = []byte{0x1C, '.'}        // FS .
	cmdFeedAndCut   = []byte{0x1D, 'V', 66, 3} // GS V 66 n: feed n lines and cut (partial)
	cmdFeedLines    = []byte{0x1B, 'd', 2}     // ESC d 2
	cmdStatusPaper  = []byte{0x10, 0x04, 4}    // DLE EOT 4: roll paper sensor status
	cmdStatusOnline = []byte{0x10, 0x04, 1}    // DLE EOT 1: printer status
)

// qr encodes data as a QR code (GS ( k, model 2, module size 6, error
// correction M).
func qr(data string) []byte {
	var b bytes.Buffer
	fn := func(cn, fn byte, params ...byte) {
		n := len(params) + 2
		b.Write([]byte{0x1D, '(', 'k', byte(n), byte(n >> 8), cn, fn})
		b.Write(params)
	}
	fn(49, 65, 50, 0) // model 2
	fn(49, 67, 6)     // module size
	fn(49, 69, 49)    // error correction M
	store := append([]byte{48}, data...)
	fn(49, 80, store...) // store the data (m = 48)
	fn(49, 81, 48)       // print it
	return b.Bytes()
}

// Encode lays out r in lang as ESC/POS: initialise, the lines with their
// styles, the reference as a QR code, feed and cut. Chinese text is sent
// in GB18030 inside FS & ... FS . (the printers' two-byte mode).
func Encode(r receipt.Receipt, lang string) ([]byte, error) {
	lines, err := r.Lines(lang)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Write(cmdInit)
	zh := lang == "zh"
	if zh {
		b.Write(cmdKanjiOn)
	}
	enc := simplifiedchinese.GB18030.NewEncoder()
	for _, l := range lines {
		switch l.Style {
		case receipt.Title:
			b.Write(cmdAlignCenter)
			b.Write(cmdBoldOn)
			b.Write(cmdDoubleSize)
		case receipt.Big:
			b.Write(cmdBoldOn)
			b.Write(cmdDoubleSize)
		case receipt.Center:
			b.Write(cmdAlignCenter)
		}
		text := []byte(l.Text)
		if zh {
			if text, err = enc.Bytes(text); err != nil {
				return nil, fmt.Errorf("escpos: %q in GB18030: %w", l.Text, err)
			}
		} else if !ascii(text) {
			return nil, fmt.Errorf("escpos: %q is not ASCII", l.Text)
		}
		b.Write(text)
		b.WriteByte('\n')
		if l.Style != receipt.Normal {
			b.Write(cmdNormalSize)
			b.Write(cmdBoldOff)
			b.Write(cmdAlignLeft)
		}
	}
	if zh {
		b.Write(cmdKanjiOff)
	}
	b.Write(cmdFeedLines)
	b.Write(cmdAlignCenter)
	b.Write(qr(r.Reference()))
	b.Write(cmdAlignLeft)
	b.Write(cmdFeedAndCut)
	return b.Bytes(), nil
}

// EncodeLines lays out a report (a supervisor's replenishment or
// balancing report) as ESC/POS: initialise, each line as plain text,
// feed and cut. Lines with other than printable ASCII are sent in GB18030
// in the printer's two-byte mode (FS & ... FS .).
func EncodeLines(lines []string) ([]byte, error) {
	var b bytes.Buffer
	b.Write(cmdInit)
	enc := simplifiedchinese.GB18030.NewEncoder()
	for _, l := range lines {
		text := []byte(l)
		if ascii(text) {
			b.Write(text)
			b.WriteByte('\n')
			continue
		}
		gb, err := enc.Bytes(text)
		if err != nil {
			return nil, fmt.Errorf("escpos: %q in GB18030: %w", l, err)
		}
		b.Write(cmdKanjiOn)
		b.Write(gb)
		b.Write(cmdKanjiOff)
		b.WriteByte('\n')
	}
	b.Write(cmdFeedAndCut)
	return b.Bytes(), nil
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7E {
			return false
		}
	}
	return true
}
