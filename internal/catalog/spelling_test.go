package catalog

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalizeSpace(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"550 5.1.1 user unknown", "550 5.1.1 user unknown"},
		{"550  5.1.1  user   unknown", "550 5.1.1 user unknown"},
		{"550\t5.1.1\tuser unknown", "550 5.1.1 user unknown"},
		{"550\u00a05.1.1 user\u2009unknown", "550 5.1.1 user unknown"},
		{"550 \u00a0 5.1.1", "550 5.1.1"},
		{"用户\u3000不存在", "用户 不存在"},
		{"550-5.1.1 line one\n550 5.1.1 line two", "550-5.1.1 line one\n550 5.1.1 line two"}, // line breaks stay
		{"mailbox full \u2026", "mailbox full \u2026"},                                       // an ellipsis is no space
		{"", ""},
	} {
		if got := normalizeSpace(tc.in); got != tc.want {
			t.Errorf("normalizeSpace(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDecodeEntities(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"user unknown", "user unknown"},
		{"doesn&#39;t exist", "doesn't exist"},
		{"&lt;user@example.com&gt;: User unknown", "<user@example.com>: User unknown"},
		{"&quot;x&quot; &apos;y&apos; &#x27;z&#X27; &#34;", "\"x\" 'y' 'z' \""},
		{"a&nbsp;b", "a\u00a0b"},
		{"AT&T blocked", "AT&T blocked"}, // an '&' in prose
		{"&amp;lt;", "&lt;"},             // one level
		{"&bogus; &#; &#xZZ; &#0; &#xD800; &lt", "&bogus; &#; &#xZZ; &#0; &#xD800; &lt"},
		{"&#1114112;", "&#1114112;"}, // past the last rune
	} {
		if got := decodeEntities(tc.in); got != tc.want {
			t.Errorf("decodeEntities(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSpellingForm(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"user unknown", "user unknown"},
		{"This user doesn't have an account", "This user does not have an account"},
		{"This user doesn\u2019t have an account", "This user does not have an account"},
		{"USER DOESN'T EXIST", "USER DOES not EXIST"}, // the matcher folds ASCII case
		{"can't accept user", "can not accept user"},
		{"Cannot deliver", "Can not deliver"},
		{"won't accept", "will not accept"},
		{"shan't", "shall not"},
		{"don't exists", "do not exists"},
		{"the recipient's inbox", "the recipient's inbox"},
		{"the recipient\u2019s inbox", "the recipient's inbox"},
		{"returned '550 5.1.1 unknown'", "returned '550 5.1.1 unknown'"},
		{"cannotation", "cannotation"}, // not a word of its own
		{"can'tn't", "can'tn't"},
		{"n't exist", " not exist"}, // as "doesn't exist" reads, which holds it
		{"deferred – 4.16.50", "deferred - 4.16.50"},
		{"non‑existent — user", "non-existent - user"},
		{"x − y ‗ z", "x - y ‗ z"}, // U+2017 is a double low line, not a dash
		{"", ""},
	} {
		if got := spellingForm(tc.in); got != tc.want {
			t.Errorf("spellingForm(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestExpandBare(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"user unknown", "user unknown"},
		{"This user doesnt have an account", "This user does not have an account"},
		{"recipient ISNT local; CANT deliver", "recipient is not local; can not deliver"},
		{"dont exist.", "do not exist."},
		{"dontation accounts", "dontation accounts"},                 // a longer word
		{"<dont@example.com> unknown", "<dont@example.com> unknown"}, // an address
		{"cantón inválido", "cantón inválido"},                       // a longer word in another script
	} {
		if got := expandBare(tc.in); got != tc.want {
			t.Errorf("expandBare(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// expandBare looks only at words of 4-8 letters ending in "nt": a negation
	// outside that shape would never be spelled out.
	for _, n := range bareNegations {
		if w := n[0]; len(w) < 4 || len(w) > 8 || !strings.HasSuffix(w, "nt") {
			t.Errorf("bare negation %q is not 4-8 letters ending in \"nt\"; widen expandBare's filter", w)
		}
		if got := expandBare("x " + strings.ToUpper(n[0]) + " y"); got != "x "+n[1]+" y" {
			t.Errorf("expandBare spells %q as %q, want %q", n[0], got, "x "+n[1]+" y")
		}
	}
}

func TestSpellingVariants(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"user unknown", []string{"user unknown"}},
		{"not authorised", []string{"not authorised", "not authorized"}},
		{"Invalid Hostname", []string{"Invalid Hostname", "invalid host name"}},
		{"mail box full", []string{"mail box full", "mailbox full"}},
		{"e-mail address", []string{"e-mail address", "email address"}},
		{"ip blacklisted", []string{"ip blacklisted", "ip black-listed", "ip black listed"}},
		{"anti-spam", []string{"anti-spam", "antispam", "anti spam"}},
	} {
		if got := spellingVariants(tc.in); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("spellingVariants(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The two steps read text from outside: whatever they get, they return valid
// UTF-8 for valid UTF-8, never panic, and a second pass changes nothing.
func FuzzSpelling(f *testing.F) {
	for _, s := range []string{"550  5.1.1 user\u00a0unknown", "doesn\u2019t", "can't", "cannot", "won't", "n't", "'t", "a\u3000b\t c", "can'tn't", "\xe2\x80", "\xc2", "abcdefgCANNOT and then some", "1234567 n't", "xxxxxxx  yyyyyyyy\u00a0", "abcdeca\u2019nnot", "&lt;a&gt; &#39; &#x1F600; &amp", "&#55296;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// The word-at-a-time searches find what a byte-by-byte one finds.
		slowOdd, slowSpelling := -1, -1
		for i := len(s) - 1; i >= 0; i-- {
			if oddSpaceAt(s, i) {
				slowOdd = i
			}
			if spellingAt(s, i) {
				slowSpelling = i
			}
		}
		if got := firstOddSpace(s); got != slowOdd {
			t.Fatalf("firstOddSpace(%q) = %d, byte by byte %d", s, got, slowOdd)
		}
		if got := nextSpelling(s, 0); got != slowSpelling {
			t.Fatalf("nextSpelling(%q, 0) = %d, byte by byte %d", s, got, slowSpelling)
		}
		// The traits never miss a pass the text needs.
		tr := scanTraits(s)
		if normalizeReply(s) != s && tr&traitsSpacing == 0 || spellingForm(s) != s && tr&traitsSpelled == 0 ||
			foldCase(s) != s && tr&traitsFoldCases == 0 {
			t.Fatalf("scanTraits(%q) = %b misses a pass", s, tr)
		}
		if de := decodeEntities(s); utf8.ValidString(s) && !utf8.ValidString(de) {
			t.Fatalf("decodeEntities(%q) = %q is not UTF-8", s, de)
		}
		if got, want := normalizeReplyAs(s, tr), normalizeReply(s); got != want {
			t.Fatalf("normalizeReplyAs(%q, %b) = %q, normalizeReply %q", s, tr, got, want)
		}
		sp := normalizeSpace(s)
		if normalizeSpace(sp) != sp {
			t.Fatalf("normalizeSpace not idempotent on %q: %q", s, sp)
		}
		if strings.Contains(sp, "  ") || strings.ContainsRune(sp, '\t') {
			t.Fatalf("normalizeSpace(%q) = %q keeps a run of spaces", s, sp)
		}
		if eb := expandBare(s); utf8.ValidString(s) && !utf8.ValidString(eb) || expandBare(eb) != eb {
			t.Fatalf("expandBare(%q) = %q: not UTF-8 or not idempotent", s, eb)
		}
		sf := spellingForm(sp)
		if utf8.ValidString(s) && !utf8.ValidString(sf) {
			t.Fatalf("spellingForm(%q) = %q is not UTF-8", sp, sf)
		}
		if spellingForm(sf) != sf {
			t.Fatalf("spellingForm not idempotent on %q: %q then %q", sp, sf, spellingForm(sf))
		}
	})
}
