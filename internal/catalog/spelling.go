package catalog

import (
	"encoding/binary"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Servers write the same words with different keys: two spaces after a full stop, a
// no-break space copied from a web page, a typographic apostrophe, "doesn't" or "does
// not", "cannot" or "can not". None of that is meaning, so the matcher must not see
// it. Two steps take it away:
//
//   - normalizeReply, where a reply enters (Classify, ParseReply): HTML character
//     references are decoded ("doesn&#39;t") and every run of spaces, tabs and
//     Unicode spaces becomes one space, so that the codes are found and the text
//     reads the same whatever the spacing;
//   - spellingForm, where the text meets the patterns (classify, and the loader for
//     each pattern): typographic apostrophes become ', a contraction with n't becomes
//     its two words ("doesn't" → "does not", "can't" and "cannot" → "can not", "won't"
//     → "will not"). It changes lengths, so everything that reads positions (the
//     address and host spans, the subject rails) reads the text after it.
//
// TestSpellingDoesNotDecide holds both on the dev rows.

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

// spellingForm is the text as the matcher reads it: typographic apostrophes as ',
// contractions with n't and "cannot" as two words. A text with none of them is
// returned as it is, without allocating. It is applied to the reply after foldCase
// and to every pattern, so either spelling in a rule finds either in a reply.
func spellingForm(s string) string {
	var b []byte // nil until the first change
	last := 0    // s[last:] is not in b yet
	for i := nextSpelling(s, 0); i >= 0; i = nextSpelling(s, i+1) {
		var skip int // bytes of s the change replaces
		var with string
		expand := false
		switch n := apostropheAt(s, i); {
		case n > 0 && i+n < len(s) && (s[i+n] == 't' || s[i+n] == 'T') && !letterAt(s, i+n+1) && endsWithN(s[:i]):
			// n't: the word before it loses its n and gains " not" (expandNot).
			skip, expand = n+1, true
		case n > 1:
			skip, with = n, "'"
		case n == 0 && (i == 0 || !isLetter(s[i-1])) && !letterAt(s, i+6):
			// "cannot" (spellingAt found it), a word of its own.
			skip, with = 6, s[i:i+3]+" not"
		default:
			continue
		}
		if b == nil {
			b = make([]byte, 0, len(s)+8)
		}
		b = append(b, s[last:i]...)
		if expand {
			b = expandNot(b)
		} else {
			b = append(b, with...)
		}
		last = i + skip
		i = last - 1
	}
	if b == nil {
		return s
	}
	return string(append(b, s[last:]...))
}

// nextSpelling is the offset from i on of the next byte where spellingForm may
// change something (spellingAt), or -1: eight bytes at a time, as firstOddSpace.
func nextSpelling(s string, from int) int {
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // read only
	i := from
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		// ' or the lead byte of a typographic apostrophe, or "nn" in any case,
		// the middle of "cannot" ('N'|0x20 is 'n', and no other byte maps there),
		// also across the word boundary.
		nn := eqBytes(x|lsbs*0x20, 'n')
		if eqBytes(x, '\'')|nn&(nn<<8) == 0 && (nn&0x80 == 0 || i == 0 || b[i-1]|0x20 != 'n') &&
			(x&msbs == 0 || unicodePunctLeads(x) == 0) {
			continue
		}
		// "cannot" starts up to three bytes before its nn.
		for j := max(i-3, from); j < i+8; j++ {
			if spellingAt(s, j) {
				return j
			}
		}
	}
	for i = max(i-3, from); i < len(b); i++ {
		if spellingAt(s, i) {
			return i
		}
	}
	return -1
}

// spellingAt reports whether spellingForm must look at s[i]: an apostrophe of any
// kind, or the c of "cannot".
func spellingAt(s string, i int) bool {
	switch c := s[i]; {
	case c == '\'':
		return true
	case c >= utf8.RuneSelf:
		return apostropheAt(s, i) > 0
	case c == 'c' || c == 'C':
		return i+6 <= len(s) && strings.EqualFold(s[i:i+6], "cannot")
	}
	return false
}

// apostropheAt is the length of the apostrophe that starts at s[i], or 0: ', U+2019
// and U+2018 (typographic quotes), U+02BC (modifier letter apostrophe), U+00B4
// (acute accent) and U+2032 (prime), which keyboards and word processors put in its
// place.
func apostropheAt(s string, i int) int {
	switch c := s[i]; {
	case c == '\'':
		return 1
	case c != 0xC2 && c != 0xCA && c != 0xE2:
		return 0
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	switch r {
	case 0x2019, 0x2018, 0x02BC, 0x00B4, 0x2032:
		return n
	}
	return 0
}

// expandNot rewrites the word that ends b with an n (the n of n't) as its full
// form followed by " not": "doesn" → "does not", "ca" + n → "can not", "wo" + n →
// "will not", "sha" + n → "shall not".
func expandNot(b []byte) []byte {
	b = b[:len(b)-1] // the n
	start := len(b)
	for start > 0 && isLetter(b[start-1]) {
		start--
	}
	switch w := string(b[start:]); {
	case strings.EqualFold(w, "ca"):
		b = append(b, 'n')
	case strings.EqualFold(w, "wo"):
		b = append(b[:start], "will"...)
	case strings.EqualFold(w, "sha"):
		b = append(b, "ll"...)
	}
	return append(b, " not"...)
}

// endsWithN reports whether s ends with the n of an n't contraction: an n that
// ends a word with no apostrophe of its own ("can'tn't" is left alone, so that a
// second pass finds nothing to do).
func endsWithN(s string) bool {
	if len(s) == 0 || (s[len(s)-1] != 'n' && s[len(s)-1] != 'N') {
		return false
	}
	start := len(s) - 1
	for start > 0 && isLetter(s[start-1]) {
		start--
	}
	return apostropheBefore(s, start) == 0
}

// apostropheBefore is the length of an apostrophe that ends s[:i], or 0.
func apostropheBefore(s string, i int) int {
	for n := 1; n <= 3 && n <= i; n++ {
		if apostropheAt(s, i-n) == n {
			return n
		}
	}
	return 0
}

// letterAt reports whether s[i] exists and is an ASCII letter.
func letterAt(s string, i int) bool { return i < len(s) && isLetter(s[i]) }

// safeUnaccented reports whether a pattern read without its accents may stand for
// it: only a phrase (it has a space) or a word of eight bytes or more. A short word
// loses what told it from English once its marks go: Vietnamese "đầy" (full) reads
// "day" ("2 more day(s)"), Spanish "inválid" reads "invalid" ("(invalidly)").
func safeUnaccented(p string) bool {
	return strings.Contains(strings.TrimSpace(p), " ") || len(p) >= 8
}

// spellingPairs are words written two ways in replies: British (-is-) and American
// (-iz-) stems ("not authorised", "unrecognized command", "organisation") and
// compounds written as one word or two ("invalid host name", "mail box full").
var spellingPairs = [...][2]string{
	{"authoriz", "authoris"}, {"recogniz", "recognis"}, {"organiz", "organis"},
	{"hostname", "host name"}, {"username", "user name"}, {"mailbox", "mail box"},
}

// spellingVariants is the pattern as written, without its accents when that is
// safe (foldAccents, safeUnaccented), and, for each of spellingPairs it holds, its
// other spelling. The loader lets an "any of" list (match, and_any,
// unless) find either; the text is not rewritten for it, which would cost every
// reply a search for rare words.
func spellingVariants(p string) []string {
	out := []string{p}
	lower := asciiLower(p)
	if plain := foldAccents(foldCase(lower)); plain != foldCase(lower) && safeUnaccented(plain) {
		out = append(out, plain)
		lower = plain
	}
	for _, pair := range spellingPairs {
		for k := 0; k < 2; k++ {
			if strings.Contains(lower, pair[k]) {
				out = append(out, strings.ReplaceAll(lower, pair[k], pair[1-k]))
			}
		}
	}
	return out
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

// bareNegations are negations as servers write them that leave out the apostrophe
// ("This user doesnt have an account", "recipient isnt local"), with the words
// spellingForm makes of the same negation written with it.
var bareNegations = [...][2]string{
	{"doesnt", "does not"}, {"dont", "do not"}, {"isnt", "is not"}, {"wasnt", "was not"},
	{"arent", "are not"}, {"werent", "were not"}, {"couldnt", "could not"}, {"wouldnt", "would not"},
	{"shouldnt", "should not"}, {"didnt", "did not"}, {"hasnt", "has not"}, {"havent", "have not"},
	{"cant", "can not"}, {"wont", "will not"}, {"dosnt", "dos not"},
}

// expandBare spells out the bareNegations that stand as words of their own in s
// (any case); s is returned as it is when it has none.
func expandBare(s string) string {
	var b []byte
	last := 0
	for i := 0; i < len(s); {
		if !isLetter(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isLetter(s[j]) {
			j++
		}
		if j < len(s) && (s[j] == '@' || s[j] >= utf8.RuneSelf) || i > 0 && s[i-1] >= utf8.RuneSelf {
			i = j // part of an address or of a longer word
			continue
		}
		for _, n := range bareNegations {
			if strings.EqualFold(s[i:j], n[0]) {
				if b == nil {
					b = make([]byte, 0, len(s)+8)
				}
				b = append(append(b, s[last:i]...), n[1]...)
				last = j
				break
			}
		}
		i = j
	}
	if b == nil {
		return s
	}
	return string(append(b, s[last:]...))
}
