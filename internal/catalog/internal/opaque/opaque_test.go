package opaque

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestAddresses(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"550 <a@b.example> unknown", []string{"a@b.example"}},
		{"not allowed...x@yourdomain.com", []string{"x@yourdomain.com"}},
		{"<user@example.com>：未找到主機", []string{"user@example.com"}},
		{"「news@lists.example.com」というリスト", []string{"news@lists.example.com"}},
		{"to a@x.example and b@y.example", []string{"a@x.example", "b@y.example"}},
		{"no address", nil},
	} {
		var got []string
		for _, sp := range Addresses(tc.text, nil) {
			got = append(got, tc.text[sp.Lo:sp.Hi])
		}
		if len(got) != len(tc.want) {
			t.Errorf("Addresses(%q) = %q, want %q", tc.text, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("Addresses(%q) = %q, want %q", tc.text, got, tc.want)
			}
		}
	}
}

func TestSpans(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"sender@example.org mailbox", []string{"sender@example.org"}},
		{"host spam-in.mx.example.net[192.0.2.1] said: 550 user unknown", []string{"spam-in.mx.example.net"}},
		{"see https://support.google.com/mail/?p=NoSuchUser.", []string{"support.google.com"}},
		{"[Hostname=AM0PR01MB1234.eurprd01.prod.exchangelabs.com]", []string{"AM0PR01MB1234.eurprd01.prod.exchangelabs.com"}},
		{"550 <first.last@Mail.Example.COM> relayed via mx.example.org.", []string{"first.last@Mail.Example.COM", "mx.example.org"}},
		{"blocked using zen.spamhaus.org at mx.example.net; see dnsbl-1.uceprotect.net", []string{"mx.example.net"}},
		// Not hosts: a dotted diagnostic, an IP address, words a missing space
		// joined, a country code that is also a word after two labels, a file.
		{"550 5.1.1 RESOLVER.ADR.RecipNotFound; not found", nil},
		{"client 192.0.2.1 rejected", nil},
		{"Mailbox full.Please try later. Rejected.It is over quota", nil},
		{"see help.php or e.g. the FAQ", nil},
		{"mail.libero.it refused; ask example.it", []string{"mail.libero.it"}},
		{"not allowed...x@example.org", []string{"x@example.org"}},
		{"", nil},
	} {
		var got []string
		for _, sp := range Spans(tc.text, nil) {
			got = append(got, tc.text[sp.Lo:sp.Hi])
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Spans(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

// TestSpansOrdered: on any text the spans come in text order, do not overlap,
// and hold every '@' — what the catalog's scan and subject rails rely on when
// they walk them once.
func TestSpansOrdered(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := "ab@ <>:.,comxy-1"
	for n := 0; n < 5000; n++ {
		b := make([]byte, rng.IntN(60))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if err := checkSpans(string(b)); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzSpans: reply text comes from outside; whatever it holds, the spans keep
// their invariants.
func FuzzSpans(f *testing.F) {
	for _, s := range []string{
		"550 <a@b.example> unknown",
		"host spam-in.mx.example.net[192.0.2.1] said: 550 user unknown",
		"blocked using zen.spamhaus.org; see https://support.example.com/x.html",
		"not allowed...x@yourdomain.com.It",
		"<user@example.com>：未找到主機",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := checkSpans(s); err != nil {
			t.Fatal(err)
		}
	})
}

func checkSpans(text string) error {
	spans := Spans(text, nil)
	for i, sp := range spans {
		if sp.Lo < 0 || sp.Lo >= sp.Hi || sp.Hi > len(text) || (i > 0 && spans[i-1].Hi > sp.Lo) {
			return fmt.Errorf("%q: spans %v out of order or overlapping", text, spans)
		}
	}
	for i := range len(text) {
		if text[i] != '@' {
			continue
		}
		held := false
		for _, sp := range spans {
			held = held || (sp.Lo <= i && i < sp.Hi)
		}
		if !held {
			return fmt.Errorf("%q: the '@' at %d is in no span of %v", text, i, spans)
		}
	}
	return nil
}

// TestTopLevelDomains: the table finds every listed domain in either case and
// nothing else; a key is never 0, the table's empty slot.
func TestTopLevelDomains(t *testing.T) {
	for _, d := range []string{"com", "COM", "de", "jp", "example", "localdomain", "solutions", "it", "no"} {
		key, ok := tldKey(d)
		if !ok || key == 0 || topLevelDomains.kind(key) == 0 {
			t.Errorf("%q: key %d, ok %v, kind %d; want a top-level domain", d, key, ok, topLevelDomains.kind(key))
		}
	}
	for _, d := range []string{"php", "html", "please", "aspx", "recipnotfound", "x", "c0m", "toolongtobeadomain"} {
		if key, ok := tldKey(d); ok && topLevelDomains.kind(key) != 0 {
			t.Errorf("%q found as a top-level domain", d)
		}
	}
	if k, _ := tldKey("it"); topLevelDomains.kind(k) != tldWord {
		t.Errorf(`"it" is a word too: want tldWord`)
	}
}
