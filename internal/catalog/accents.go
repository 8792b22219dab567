package catalog

import (
	"unicode/utf8"
)

// Servers that write only ASCII drop the marks of their language ("Destinatario
// desconocido", "n'est pas acceptee par le serveur", "Cu phap dia chi sai"), and
// others keep them; a phrase is the same phrase either way. foldAccents reads
// Latin, Greek and Vietnamese letters without their marks ("á" → "a", "ø" → "o",
// "ł" → "l", "ß" → "ss", "ά" → "α", "ё" → "е"), and the loader lets a rule's any-of
// lists and the subject rails find an accented pattern written so too
// (spellingVariants, safeUnaccented). The reply itself is not rewritten: a short
// word that loses its marks may be an English one ("đầy", full, reads "day";
// "inválid" reads "invalid"), so only phrases and long words get the plain form.
// Cyrillic "й" and the Japanese voiced kana keep their marks: there the mark makes
// another letter. The table (accents_table.go) is generated from Unicode's
// decompositions (TestAccentTableGenerated); TestAccentsDoNotDecide holds the
// variants on the dev rows.

//go:generate go test -run ^TestAccentTableGenerated$ . -args -update-accents

// foldAccents returns s with the letters of accentTable in their plain form. A text
// without them is returned as it is, without allocating.
func foldAccents(s string) string {
	i := firstAccented(s)
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for i < len(s) {
		if s[i] < utf8.RuneSelf {
			b = append(b, s[i])
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if plain := accentPlain(r); plain != "" {
			b = append(b, plain...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return string(b)
}

// firstAccented is the offset of the first rune foldAccents changes, or -1.
func firstAccented(s string) int {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		// Lead bytes from E2 on start no letter of the table but the Vietnamese
		// block (E1 B8-BB): CJK, kana and Hangul are passed over undecoded.
		if c := s[i]; c >= 0xE2 && i+2 < len(s) {
			i += 3
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if accentPlain(r) != "" {
			return i
		}
		i += n
	}
	return -1
}

// accentPlain is r's plain form, or "" when r is not in the table.
func accentPlain(r rune) string {
	switch {
	case r >= accentLatinLo && r < accentLatinLo+rune(len(accentLatin)):
		return accentLatin[r-accentLatinLo]
	case r >= accentGreekLo && r < accentGreekLo+rune(len(accentGreek)):
		return accentGreek[r-accentGreekLo]
	case r >= accentVietLo && r < accentVietLo+rune(len(accentViet)):
		return accentViet[r-accentVietLo]
	case r == 'ё':
		return "е"
	case r == 'Ё':
		return "Е"
	}
	return ""
}
