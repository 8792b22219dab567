package catalog

import (
	"encoding/binary"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// foldCase lower-cases the letters outside ASCII whose lower case is as long in
// UTF-8 ("É" → "é", "Д" → "д", "Ω" → "ω"), so that a reply written in capitals
// ("USUÁRIO INEXISTENTE", "ПОЛЬЗОВАТЕЛЬ НЕ НАЙДЕН") or a sentence that opens with a
// capital ("Überschritten …") matches the rules' patterns, which load folds the
// same way. ASCII is left as it is: the matcher folds it byte by byte. Byte offsets
// do not move, so what is found in the folded text (an address, a host name, a
// pattern's end) is at the same place in the original.
//
// A text with nothing to fold is returned as it is, without allocating; only a
// reply with a capital outside ASCII pays for a copy.
func foldCase(s string) string {
	i := firstFoldable(s)
	if i < 0 {
		return s
	}
	b := []byte(s)
	for i < len(b) {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if l := lowerSameLength(r, n); l != r {
			utf8.EncodeRune(b[i:], l)
		}
		i += n
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// firstFoldable is the offset of the first rune foldCase changes, or -1.
func firstFoldable(s string) int {
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // read only
	for i := 0; i < len(s); {
		// Eight ASCII bytes at a time: most replies are ASCII throughout.
		for i+8 <= len(b) && binary.LittleEndian.Uint64(b[i:])&0x8080808080808080 == 0 {
			i += 8
		}
		if i == len(s) {
			break
		}
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		// Lead bytes E3-EE start CJK, kana and Hangul (U+3000-U+EFFF), which
		// have no case: replies in Chinese, Japanese and Korean skip the
		// decoding and the tables. (The block's few cased letters, Cyrillic
		// Extended-B and Latin Extended-D, are left as written.)
		if b := s[i]; b >= 0xE3 && b <= 0xEE && i+2 < len(s) {
			i += 3
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if lowerSameLength(r, n) != r {
			return i
		}
		i += n
	}
	return -1
}

// lowerSameLength is r's lower case when that takes the same n bytes, else r
// (a few letters change length, "İ" → "i̇": they stay as written).
func lowerSameLength(r rune, n int) rune {
	if n == 2 {
		return rune(lower2[r-0x80]) // a two-byte rune is U+0080-U+07FF
	}
	if r == utf8.RuneError || !unicode.IsUpper(r) && !unicode.IsTitle(r) {
		return r
	}
	if l := unicode.ToLower(r); utf8.RuneLen(l) == n {
		return l
	}
	return r
}

// lower2 maps each two-byte rune (U+0080-U+07FF: Latin, Greek, Cyrillic, Armenian,
// Hebrew, Arabic, most of the replies outside ASCII) to its lower case when that is
// a two-byte rune too, else to itself: a table instead of the Unicode tables.
var lower2 = func() (t [0x800 - 0x80]uint16) {
	for r := rune(0x80); r < 0x800; r++ {
		t[r-0x80] = uint16(r)
		if l := unicode.ToLower(r); l != r && l >= 0x80 && l < 0x800 && (unicode.IsUpper(r) || unicode.IsTitle(r)) {
			t[r-0x80] = uint16(l)
		}
	}
	return t
}()
