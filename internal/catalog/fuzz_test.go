package catalog

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSeeds are replies of every shape the parser knows, plus a few corpus
// rows and degenerate inputs.
func fuzzSeeds(f *testing.F) {
	for _, s := range []string{
		"",
		"5",
		"550",
		"550-",
		"5.1.",
		"5.1.1",
		"#5.1.1",
		"550 5.1.1",
		"550-5.1.1 a\r\n550-5.1.1 b\r\n550 5.1.1 c",
		"smtp;550 5.1.1 user unknown",
		"smtp; 550 5.1.1 user unknown",
		"host mx.example.com[192.0.2.1] said: 550 5.1.1 nope (in reply to RCPT TO command)",
		"Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'",
		"Remote Server returned '",
		" RecipientError: 550 5.5.0 mailbox unavailable",
		"550 5.2.1 disabled 503 5.5.1 RCPT first",
		"421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred - 4.16.55.1",
		"554 <x@example.org>... 550 Host unknown",
		"5.999.999 999.5.5 550-550-550-",
		"host  said: said: host [",
		strings.Repeat("550-5.1.1 x ", 40),
		"\x00\xff550 5.1.1\xfe",
		"запрещено 550 5.7.1 Нет такого пользователя",
		"550 mailbox gone forever, nobody here by that name",
		"Sending address not accepted due to spam filter",
	} {
		f.Add(s)
	}
}

func FuzzParseReply(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		r := ParseReply(s)
		if r.Code != 0 && (r.Code < 200 || r.Code > 599) {
			t.Fatalf("code %d out of range for %q", r.Code, s)
		}
		if r.Enhanced != "" {
			if _, ok := splitEnhanced(r.Enhanced); !ok {
				t.Fatalf("enhanced %q malformed for %q", r.Enhanced, s)
			}
		}
		if len(r.Text) > len(s) {
			t.Fatalf("text longer than input for %q", s)
		}
		if utf8.ValidString(s) && !utf8.ValidString(r.Text) {
			// Folding only removes ASCII ranges, so valid input stays valid.
			t.Fatalf("text became invalid UTF-8 for %q", s)
		}
	})
}

func FuzzClassify(f *testing.F) {
	fuzzSeeds(f)
	c, err := Default()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cl := c.Classify(s, Hints{RemoteHost: s})
		if _, ok := c.classes[cl.Class]; !ok {
			t.Fatalf("class %q not in catalog for %q", cl.Class, s)
		}
		if cl.Class == ClassUnknown && cl.Suppressible() {
			t.Fatalf("unknown suppressible for %q", s)
		}
		r := ParseReply(s)
		if cl.Permanent && (r.Code/100 == 4 || strings.HasPrefix(r.Enhanced, "4.")) {
			t.Fatalf("4xx classified permanent for %q (%s)", s, cl.Rule)
		}
		if strings.HasPrefix(cl.Rule, "model.") && (cl.Rule != modelRule || cl.Scope != ScopeSender) {
			t.Fatalf("the fallback model decided %s/%s for %q; it may only decide a sender-side alert", cl.Rule, cl.Scope, s)
		}
		if cl.Rule == "" || cl.Confidence < 0 || cl.Confidence > 1 {
			t.Fatalf("bad rule/confidence %+v for %q", cl, s)
		}
	})
}
