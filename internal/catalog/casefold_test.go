package catalog

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestFoldCase: letters outside ASCII fold to lower case where the lower case is
// as long; ASCII, scripts without case and length-changing letters stay, so byte
// offsets hold.
func TestFoldCase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"USER UNKNOWN", "USER UNKNOWN"},
		{"ЯЩИК ПЕРЕПОЛНЕН", "ящик переполнен"},
		{"Überschritten", "überschritten"},
		{"USUÁRIO INEXISTENTE", "USUáRIO INEXISTENTE"},
		{"CÚ PHÁP ĐỊA CHỈ SAI", "Cú PHáP địA CHỉ SAI"},
		{"宛先不明", "宛先不明"},
		{"İstanbul", "İstanbul"},
		{"ΑΠΟΣΤΟΛΈΑΣ", "αποστολέασ"}, // a final capital sigma folds to σ, not ς
		{"\xff\xfeÉ", "\xff\xfeé"},
	} {
		got := foldCase(tc.in)
		if got != tc.want || len(got) != len(tc.in) {
			t.Errorf("foldCase(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A reply's case is the server's habit, not its meaning: every dev row is
// classified again written in capitals, in lower case and in title case, and the
// verdict must not move. Before Classify folded letters outside ASCII, 92 of
// these 14,155 probes moved ("USUÁRIO INEXISTENTE", "ЯЩИК ПЕРЕПОЛНЕН", capitalised
// French and Spanish mailbox-full texts). Rows with Turkish ı or İ are left out:
// Go's ToUpper turns ı into I, whose lower case is i, so the probe itself loses
// the letter.
func TestCaseDoesNotDecide(t *testing.T) {
	t.Parallel()
	c := setup(t)
	probes, moved := 0, 0
	for _, r := range readReplies(t) {
		if r.split != "dev" || strings.ContainsAny(r.reply, "ıİ") {
			continue
		}
		want := Verdict(c.Classify(r.reply, LabelledHints(r.reply)))
		for _, f := range []func(string) string{strings.ToUpper, strings.ToLower, strings.ToTitle} {
			p := f(r.reply)
			if p == r.reply {
				continue
			}
			probes++
			if got := Verdict(c.Classify(p, LabelledHints(p))); got != want {
				moved++
				if moved <= 10 {
					t.Errorf("%s: %s, %s as written: %s", r.id, got, want, p)
				}
			}
		}
	}
	if probes < 10000 {
		t.Fatalf("only %d probes", probes)
	}
	if moved > 0 {
		t.Errorf("%d of %d probes changed their verdict with the reply's case alone", moved, probes)
	}
}

// FuzzFoldCase: whatever the bytes, folding keeps the length (the offsets found
// in the folded text hold in the original), keeps valid UTF-8 valid, and a
// second fold changes nothing.
func FuzzFoldCase(f *testing.F) {
	for _, s := range []string{"USUÁRIO INEXISTENTE", "ЯЩИК", "宛先不明 Ä", "\xe3\x81", "İı", "ΑΠΟΣΤΟΛΈΑΣ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := foldCase(s)
		if len(got) != len(s) {
			t.Fatalf("foldCase(%q) = %q: length %d, want %d", s, got, len(got), len(s))
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("foldCase(%q) = %q: not valid UTF-8", s, got)
		}
		if again := foldCase(got); again != got {
			t.Fatalf("foldCase(%q) = %q, folded again %q", s, got, again)
		}
	})
}
