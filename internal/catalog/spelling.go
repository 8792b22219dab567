package catalog

import (
	"encoding/binary"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Servers write the same words with different keys: a typographic apostrophe,
// "doesn't", "doesnt" or "does not", "cannot" or "can not", "authorised" or
// "authorized", "hostname" or "host name". None of that is meaning, so the matcher
// must not see it:
//
//   - spellingForm, where the text meets the patterns (classify, and the loader for
//     each pattern): typographic apostrophes become ' and dashes -, a contraction with n't becomes
//     its two words ("doesn't" → "does not", "can't" and "cannot" → "can not",
//     "won't" → "will not"). It changes lengths, so everything that reads positions
//     (the address and host spans, the subject rails) reads the text after it;
//   - a negation without its apostrophe ("isnt") rides in the rules' scan, and only a
//     reply that has one is spelled out and scanned again (expandBare, scanSpelled);
//   - spellingVariants, in the loader only: a pattern of an any-of list also reads in
//     its other spelling and, where safe, without its accents (accents.go).
//
// The spacing and escaping are normalize.go's; which passes a reply needs at all,
// traits.go's. TestSpellingDoesNotDecide holds them on the dev rows.

// spellingForm is the text as the matcher reads it: typographic apostrophes as ',
// typographic hyphens and dashes as -, contractions with n't and "cannot" as two
// words. A text with none of them is
// returned as it is, without allocating. It is applied to the reply after foldCase
// and to every pattern, so either spelling in a rule finds either in a reply.
func spellingForm(s string) string {
	var b []byte // nil until the first change
	last := 0    // s[last:] is not in b yet
	for i := nextSpelling(s, 0); i >= 0; i = nextSpelling(s, i+1) {
		var skip int // bytes of s the change replaces
		var with string
		expand := false
		switch n, d := apostropheAt(s, i), dashAt(s, i); {
		case d > 0:
			skip, with = d, "-"
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
		return apostropheAt(s, i) > 0 || dashAt(s, i) > 0
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

// dashAt is the length of a typographic hyphen or dash that starts at s[i], or 0:
// U+2010-U+2015 (hyphen, non-breaking hyphen, figure dash, en and em dash,
// horizontal bar) and U+2212 (minus), which word processors put in place of "-".
func dashAt(s string, i int) int {
	if s[i] != 0xE2 {
		return 0
	}
	switch r, n := utf8.DecodeRuneInString(s[i:]); {
	case r >= 0x2010 && r <= 0x2015, r == 0x2212:
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

// spellingGroups are words written more than one way in replies: British (-is-)
// and American (-iz-) stems ("not authorised", "unrecognized command",
// "organisation") and compounds written as one word, with a hyphen or as two
// ("invalid host name", "mail box full", "e-mail", "black-listed", "anti spam").
// "e mail" is not one: "the mail" holds it.
var spellingGroups = [...][]string{
	{"authoriz", "authoris"}, {"recogniz", "recognis"}, {"organiz", "organis"},
	{"hostname", "host name"}, {"username", "user name"}, {"mailbox", "mail box"},
	{"email", "e-mail"},
	{"blacklist", "black-list", "black list"}, {"blocklist", "block-list", "block list"},
	{"denylist", "deny-list", "deny list"}, {"whitelist", "white-list", "white list"},
	{"spamlist", "spam-list", "spam list"}, {"antispam", "anti-spam", "anti spam"},
	{"antivirus", "anti-virus", "anti virus"}, {"nonexistent", "non-existent", "non existent"},
	{"nonexistant", "non-existant", "non existant"}, {"overquota", "over-quota", "over quota"},
	{"mailserver", "mail-server", "mail server"}, {"spamfilter", "spam-filter", "spam filter"},
}

// spellingVariants is the pattern as written, without its accents when that is
// safe (foldAccents, safeUnaccented), and, for each word of spellingGroups it
// holds, its other spellings. The loader lets an "any of" list (match, and_any,
// unless) find either; the text is not rewritten for it, which would cost every
// reply a search for rare words.
func spellingVariants(p string) []string {
	out := []string{p}
	lower := asciiLower(p)
	if plain := foldAccents(foldCase(lower)); plain != foldCase(lower) && safeUnaccented(plain) {
		out = append(out, plain)
		lower = plain
	}
	for _, group := range spellingGroups {
		for _, from := range group {
			if !strings.Contains(lower, from) {
				continue
			}
			for _, to := range group {
				if to != from {
					out = append(out, strings.ReplaceAll(lower, from, to))
				}
			}
		}
	}
	return out
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
		// Every bare negation is 4-8 letters ending in "nt": most words stop here,
		// which keeps the fallback model's input (modelInput) cheap on long replies.
		if n := j - i; n < 4 || n > 8 || s[j-1]|0x20 != 't' || s[j-2]|0x20 != 'n' {
			i = j
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
