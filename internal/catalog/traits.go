package catalog

import (
	"encoding/binary"
	"unicode/utf8"
	"unsafe"
)

// Word-at-a-time flags (SWAR): eqBytes sets the top bit of exactly those bytes of x
// that equal c. (The shorter borrow trick also flags a byte above a match, and
// "no" would then read as "nn": most English words.)
const (
	lsbs = 0x0101010101010101
	msbs = 0x8080808080808080
	lows = 0x7F7F7F7F7F7F7F7F
)

func eqBytes(x uint64, c byte) uint64 {
	y := x ^ (lsbs * uint64(c))
	return ^((y&lows + lows) | y | lows)
}

// textTraits says which of the passes before the scan a text may need: one look
// at a reply, eight bytes at a time, instead of one per pass (foldCase,
// normalizeSpace, spellingForm each look again, precisely, only when asked).
type textTraits uint8

const (
	traitNonASCII     textTraits = 1 << iota // a byte outside ASCII: maybe a capital to fold
	traitUnicodePunct                        // a lead byte of a Unicode space or apostrophe (C2, CA, E2, E3)
	traitOddSpace                            // two spaces in a row, or a tab
	traitEntity                              // an '&', which may open a character reference
	traitSpelling                            // an apostrophe, or "nn" in any case (as in "cannot")

	traitsSpacing   = traitUnicodePunct | traitOddSpace | traitEntity // normalizeReply may change the text
	traitsSpelled   = traitUnicodePunct | traitSpelling               // spellingForm may
	traitsFoldCases = traitNonASCII                                   // foldCase may
)

// scanTraits is the traits of s. It may name a trait s does not have (a flag is a
// candidate), never miss one it has.
func scanTraits(s string) textTraits {
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // read only
	var hi, lead, odd, spell, amp uint64
	var psp, pnn uint64 // the previous word's flags: a pair may straddle two words
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		sp := eqBytes(x, ' ')
		nn := eqBytes(x|lsbs*0x20, 'n')
		hi |= x & msbs
		if x&msbs != 0 {
			lead |= unicodePunctLeads(x)
		}
		odd |= sp&(sp<<8|psp>>56) | eqBytes(x, '\t')
		spell |= eqBytes(x, '\'') | nn&(nn<<8|pnn>>56)
		amp |= eqBytes(x, '&')
		psp, pnn = sp, nn
	}
	var t textTraits
	if hi != 0 {
		t |= traitNonASCII
	}
	if lead != 0 {
		t |= traitUnicodePunct
	}
	if odd != 0 {
		t |= traitOddSpace
	}
	if spell != 0 {
		t |= traitSpelling
	}
	if amp != 0 {
		t |= traitEntity
	}
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c == 0xC2, c == 0xCA, c == 0xE2, c == 0xE3:
			t |= traitNonASCII | traitUnicodePunct
		case c >= utf8.RuneSelf:
			t |= traitNonASCII
		case c == '\t', c == ' ' && i > 0 && b[i-1] == ' ':
			t |= traitOddSpace
		case c == '\'', c|0x20 == 'n' && i > 0 && b[i-1]|0x20 == 'n':
			t |= traitSpelling
		case c == '&':
			t |= traitEntity
		}
	}
	return t
}

// unicodePunctLeads flags the bytes of x that may open a Unicode space or
// apostrophe (spaceAt, apostropheAt): a text in Cyrillic or Chinese has many bytes
// outside ASCII and few of these.
func unicodePunctLeads(x uint64) uint64 {
	return eqBytes(x, 0xC2) | eqBytes(x, 0xCA) | eqBytes(x, 0xE2) | eqBytes(x, 0xE3)
}
