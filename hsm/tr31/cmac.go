package tr31

import (
	"crypto/cipher"
	"crypto/subtle"
)

// CMAC returns the NIST SP 800-38B CMAC of msg under the block cipher c
// (8- or 16-byte blocks): the whole block, untruncated.
func CMAC(c cipher.Block, msg []byte) []byte {
	bs := c.BlockSize()
	rb := byte(0x87)
	if bs == 8 {
		rb = 0x1B
	}
	l := make([]byte, bs)
	c.Encrypt(l, l)
	k1 := dbl(l, rb)
	k2 := dbl(k1, rb)
	n := (len(msg) + bs - 1) / bs
	last := make([]byte, bs)
	if n > 0 && len(msg)%bs == 0 {
		subtle.XORBytes(last, msg[(n-1)*bs:], k1)
	} else {
		if n == 0 {
			n = 1
		}
		rest := msg[(n-1)*bs:]
		copy(last, rest)
		last[len(rest)] = 0x80
		subtle.XORBytes(last, last, k2)
	}
	x := make([]byte, bs)
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(x, x, msg[i*bs:(i+1)*bs])
		c.Encrypt(x, x)
	}
	subtle.XORBytes(x, x, last)
	c.Encrypt(x, x)
	return x
}

// dbl is the doubling in GF(2^64) or GF(2^128) of SP 800-38B.
func dbl(b []byte, rb byte) []byte {
	out := make([]byte, len(b))
	var carry byte
	for i := len(b) - 1; i >= 0; i-- {
		out[i] = b[i]<<1 | carry
		carry = b[i] >> 7
	}
	if carry == 1 {
		out[len(out)-1] ^= rb
	}
	return out
}
