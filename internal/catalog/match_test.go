package catalog

import (
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/reboundhq/rebound/internal/catalog/internal/opaque"
)

// TestMatcherAgainstNaive checks the automaton against a plain substring
// search on texts mixing ASCII and multilingual (UTF-8) patterns, so that
// the dense ASCII rows and the non-ASCII side tables agree with the truth.
func TestMatcherAgainstNaive(t *testing.T) {
	c := setup(t)
	seen := map[string]bool{}
	var patterns []string
	for _, rl := range c.rules {
		for _, list := range [][]string{rl.spec.Match, rl.spec.All, rl.spec.AndAny, rl.spec.Unless} {
			for _, p := range list {
				if p = asciiLower(p); !seen[p] {
					seen[p] = true
					patterns = append(patterns, p)
				}
			}
		}
	}
	m := newMatcher(patterns)
	if m.nrow == m.nclass {
		t.Fatalf("no non-ASCII classes among %d patterns; the test would not cover the side tables", len(patterns))
	}
	rng := rand.New(rand.NewSource(9))
	texts := []string{
		"550 5.1.1 Benutzer unbekannt / utilisateur inconnu / destinatario desconocido",
		"550 Пользователь не найден; 用户不存在; ユーザーが見つかりません; skrzynka pełna",
	}
	for range 400 {
		var b strings.Builder
		for range 1 + rng.Intn(8) {
			p := patterns[rng.Intn(len(patterns))]
			if rng.Intn(3) == 0 && len(p) > 1 {
				p = p[:1+rng.Intn(len(p)-1)] // a near miss
			}
			if rng.Intn(2) == 0 {
				p = strings.ToUpper(p)
			}
			b.WriteString(p)
			// Separators that make addresses and host names of the patterns
			// around them too.
			b.WriteString([]string{" ", "", "é", "ж", "的", "x", ".com ", ".", "@"}[rng.Intn(9)])
		}
		texts = append(texts, b.String())
	}
	set := make([]uint64, (len(patterns)+63)/64)
	for _, text := range texts {
		clear(set)
		m.scan(text, set)
		// The scan starts as if after a space (matcher.start), and skips an
		// occurrence that ends inside an address or a host name.
		low := " " + asciiLower(text)
		spans := opaque.Spans(text, nil)
		for id, p := range patterns {
			want := false
			for from := 0; !want; from++ {
				k := strings.Index(low[from:], p)
				if k < 0 {
					break
				}
				from += k
				last := from + len(p) - 2 // the occurrence's last byte in text
				want = !slices.ContainsFunc(spans, func(sp opaque.Span) bool { return sp.Lo <= last && last < sp.Hi })
			}
			// … and ends as if before a full stop or a space, unless the text ends
			// inside an address or a host name.
			endsOpen := len(text) > 0 && !slices.ContainsFunc(spans, func(sp opaque.Span) bool { return sp.Hi >= len(text) })
			if !want && endsOpen && len(p) > 0 && (strings.HasSuffix(low+".", p) || strings.HasSuffix(low+" ", p)) {
				want = true
			}
			if got := hasBit(set, int32(id)); got != want {
				t.Fatalf("text %q pattern %q: matcher says %v, substring search %v", text, p, got, want)
			}
		}
	}
}

// TestScanStartsAfterSpace: a pattern written with a leading space to keep it off
// the ends of longer words matches a word that opens the text, and still not the
// end of a longer word.
func TestScanStartsAfterSpace(t *testing.T) {
	t.Parallel()
	m := newMatcher([]string{" ip ", " closed"})
	for _, tc := range []struct {
		text     string
		ip, clos bool
	}{
		{"IP blocked", true, false},
		{"your ip is listed", true, false},
		{"we do not accept zip files", false, false},
		{"Closed mailbox", false, true},
		{"message enclosed", false, false},
	} {
		set := make([]uint64, 1)
		m.scan(tc.text, set)
		if got := hasBit(set, 0); got != tc.ip {
			t.Errorf("%q: \" ip \" matched %v, want %v", tc.text, got, tc.ip)
		}
		if got := hasBit(set, 1); got != tc.clos {
			t.Errorf("%q: \" closed\" matched %v, want %v", tc.text, got, tc.clos)
		}
	}
}
