package catalog

import (
	"encoding/binary"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Where a reply enters (Classify, ClassifyReply, ParseReply) it is read as the
// parser reads it: HTML character references a web page or an escaping pipeline
// left ("doesn&#39;t") decoded, and every run of spaces, tabs and Unicode spaces
// folded into one space, so that the codes are found and the words read the same
// whatever the spacing. TestSpellingDoesNotDecide and TestEscapingDoesNotDecide
// hold it on the dev rows.

// enter is a text where it enters classification (Classify, ClassifyReply):
// normalised as its traits ask, and the traits of what came out.
func enter(s string) (string, textTraits) {
	t := scanTraits(s)
	if t&traitsSpacing != 0 {
		if n := normalizeReplyAs(s, t); n != s {
			// A decoded reference may bring what the traits did not see ("&#39;").
			return n, scanTraits(n)
		}
	}
	return s, t
}

// normalizeReply is a reply as the parser reads it: HTML character references
// decoded (decodeEntities), then white space folded (normalizeSpace).
func normalizeReply(s string) string { return normalizeReplyAs(s, traitsSpacing) }

// normalizeReplyAs is normalizeReply for a text whose traits are t: a step its
// traits rule out is skipped (an '&' in a URL's query costs no look at the spaces).
func normalizeReplyAs(s string, t textTraits) string {
	if t&traitEntity != 0 {
		if d := decodeEntities(s); d != s {
			s, t = d, traitsSpacing // a reference may have been a no-break space
		}
	}
	if t&(traitOddSpace|traitUnicodePunct) != 0 {
		s = normalizeSpace(s)
	}
	return s
}

// decodeEntities decodes the character references a reply picks up when a web
// page, a dashboard export or an escaping pipeline carried it ("doesn&#39;t",
// "&lt;user@example.com&gt;"): the named ones such text uses and every numeric
// one. One level only: "&amp;lt;" is "&lt;", as a browser shows it. A text without
// '&' is returned as it is.
func decodeEntities(s string) string {
	i := strings.IndexByte(s, '&')
	if i < 0 {
		return s
	}
	var b []byte // nil until the first reference
	last := 0
	for ; i >= 0; i = nextAmp(s, i+1) {
		r, n := entityAt(s, i)
		if n == 0 {
			continue
		}
		if b == nil {
			b = make([]byte, 0, len(s))
		}
		b = append(b, s[last:i]...)
		b = utf8.AppendRune(b, r)
		last = i + n
		i = last - 1
	}
	if b == nil {
		return s
	}
	return string(append(b, s[last:]...))
}

func nextAmp(s string, from int) int {
	if from >= len(s) {
		return -1
	}
	if j := strings.IndexByte(s[from:], '&'); j >= 0 {
		return from + j
	}
	return -1
}

// namedEntities are the named references decodeEntities knows.
var namedEntities = map[string]rune{"lt": '<', "gt": '>', "amp": '&', "quot": '"', "apos": '\'', "nbsp": 0xA0}

// entityAt decodes the character reference at s[i] ('&'): its rune and length, or
// n 0 when there is none (an '&' in prose, an unknown name, a number that is no
// character).
func entityAt(s string, i int) (r rune, n int) {
	end := strings.IndexByte(s[i+1:min(len(s), i+12)], ';')
	if end <= 0 {
		return 0, 0
	}
	name := s[i+1 : i+1+end]
	n = end + 2
	if name[0] != '#' {
		if r, ok := namedEntities[strings.ToLower(name)]; ok {
			return r, n
		}
		return 0, 0
	}
	base, digits := 10, name[1:]
	if len(digits) > 0 && (digits[0] == 'x' || digits[0] == 'X') {
		base, digits = 16, digits[1:]
	}
	v, err := strconv.ParseUint(digits, base, 32)
	if err != nil || v == 0 || v > utf8.MaxRune || v >= 0xD800 && v <= 0xDFFF {
		return 0, 0
	}
	return rune(v), n
}

// normalizeSpace folds every run of horizontal white space (space, tab, no-break
// space and the other Unicode spaces) into one ASCII space. Line breaks stay: the
// parser reads continuation lines by them. A text with nothing to fold is returned
// as it is, without allocating.
func normalizeSpace(s string) string {
	i := firstOddSpace(s)
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for i < len(s) {
		if n := spaceAt(s, i); n > 0 {
			if len(b) == 0 || b[len(b)-1] != ' ' {
				b = append(b, ' ')
			}
			i += n
			continue
		}
		b = append(b, s[i])
		i++
	}
	return string(b)
}

// firstOddSpace is the offset of the first space normalizeSpace changes (a space
// after a space, a tab, a Unicode space), or -1. Most replies have none, so it
// looks at eight bytes at a time and only at a flagged word byte by byte.
func firstOddSpace(s string) int {
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // read only
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		sp := eqBytes(x, ' ')
		// A space right after a space, also across the word boundary; a tab; a
		// byte outside ASCII.
		if sp&(sp<<8) == 0 && (sp&0x80 == 0 || i == 0 || b[i-1] != ' ') && eqBytes(x, '\t') == 0 &&
			(x&msbs == 0 || unicodePunctLeads(x) == 0) {
			continue
		}
		for j := i; j < i+8; j++ {
			if oddSpaceAt(s, j) {
				return j
			}
		}
	}
	for ; i < len(b); i++ {
		if oddSpaceAt(s, i) {
			return i
		}
	}
	return -1
}

// oddSpaceAt reports whether normalizeSpace changes the byte at s[i].
func oddSpaceAt(s string, i int) bool {
	switch c := s[i]; {
	case c == '\t':
		return true
	case c == ' ':
		return i > 0 && s[i-1] == ' '
	case c >= utf8.RuneSelf:
		return spaceAt(s, i) > 0
	}
	return false
}

// spaceAt is the length of the white space (not a line break) that starts at s[i],
// or 0: an ASCII space or tab, U+00A0, U+2000-U+200A, U+202F, U+205F or U+3000.
func spaceAt(s string, i int) int {
	switch c := s[i]; {
	case c == ' ' || c == '\t':
		return 1
	case c != 0xC2 && c != 0xE2 && c != 0xE3:
		return 0
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	switch {
	case r == 0xA0, r >= 0x2000 && r <= 0x200A, r == 0x202F, r == 0x205F, r == 0x3000:
		return n
	}
	return 0
}
