package catalog

import (
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

// TestClassifyReplyFolds: a reply parsed by the caller (ClassifyReply) is folded as
// one Classify parses, so capitals outside ASCII decide nothing on either path.
func TestClassifyReplyFolds(t *testing.T) {
	c := setup(t)
	upper := c.ClassifyReply(Reply{Code: 550, Text: "USUÁRIO INEXISTENTE"}, Hints{})
	lower := c.ClassifyReply(Reply{Code: 550, Text: "usuário inexistente"}, Hints{})
	if upper.Rule != lower.Rule || upper.Class != lower.Class {
		t.Fatalf("capitals: %s by %s; lower case: %s by %s", upper.Class, upper.Rule, lower.Class, lower.Rule)
	}
}
