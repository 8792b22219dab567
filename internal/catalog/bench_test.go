package catalog

import (
	"strings"
	"testing"

	"github.com/reboundhq/rebound/internal/catalog/internal/opaque"
)

const (
	benchTypical  = "550 5.1.1 <x@example.com>: Recipient address rejected: User unknown in virtual mailbox table"
	benchProvider = "421 4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"
)

var sinkReply Reply
var sinkClass Classification

func BenchmarkParseReply(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sinkReply = ParseReply(benchTypical)
	}
}

func BenchmarkClassifyTypical(b *testing.B) {
	c := setup(b)
	b.ReportAllocs()
	for b.Loop() {
		sinkClass = c.Classify(benchTypical, Hints{})
	}
}

func BenchmarkClassifyProviderRule(b *testing.B) {
	c := setup(b)
	b.ReportAllocs()
	for b.Loop() {
		sinkClass = c.Classify(benchProvider, Hints{RemoteHost: "mta6.am0.yahoodns.net"})
	}
}

// BenchmarkClassifyWrapped is a Postfix-wrapped multi-line Gmail reply: the
// slow path (folding, host extraction, stage detection).
func BenchmarkClassifyWrapped(b *testing.B) {
	c := setup(b)
	in := "host gmail-smtp-in.l.google.com[64.233.189.27] said: 550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n550-5.1.1 double-checking the recipient's email address for typos or\r\n550 5.1.1 unnecessary spaces. - gsmtp (in reply to RCPT TO command)"
	b.ReportAllocs()
	for b.Loop() {
		sinkClass = c.Classify(in, Hints{})
	}
}

func TestClassifyAllocs(t *testing.T) {
	c := setup(t)
	for _, in := range []string{benchTypical, benchProvider} {
		if n := testing.AllocsPerRun(100, func() { sinkClass = c.Classify(in, Hints{}) }); n > 1 {
			t.Errorf("Classify(%q) allocates %v times, want ≤ 1", in, n)
		}
	}
}

// BenchmarkClassifyCorpus classifies the sisimai corpus texts in turn: a
// mixed stream whose working set is closer to production than one reply
// classified in a loop (which keeps exactly its own table rows in L1).
func BenchmarkClassifyCorpus(b *testing.B) {
	c := setup(b)
	rows := readCorpus(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sinkClass = c.Classify(rows[i].text, Hints{})
		if i++; i == len(rows) {
			i = 0
		}
	}
}

// BenchmarkClassifyNoRule is a reply no text rule matches and whose code
// names no class: the path that asks the statistical fallback (model.go).
func BenchmarkClassifyNoRule(b *testing.B) {
	c := setup(b)
	const in = "550 the address you sent to is gone for good"
	if cl := c.Classify(in, Hints{}); cl.Rule != "basic.550" && cl.Rule[:6] != "model." {
		b.Fatalf("%q is decided by %s; the benchmark needs a reply no rule matches", in, cl.Rule)
	}
	b.ReportAllocs()
	for b.Loop() {
		sinkClass = c.Classify(in, Hints{})
	}
}

// BenchmarkClassifyLongToken is an 8 KB reply (the ingest bound) whose one token is
// an address full of the subject rails' words: every hit is inside the address, so
// each used to scan the whole token again (5.8 ms a reply); now the token is scanned
// once (about 70 µs, the matcher's pass over 8 KB).
func BenchmarkClassifyLongToken(b *testing.B) {
	c, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	reply := "550 5.1.1 " + strings.Repeat("sender", 8<<10/6) + "@example.com"
	b.ReportAllocs()
	for b.Loop() {
		sinkClass = c.Classify(reply, Hints{})
	}
}

// BenchmarkFoldCaseCorpus and BenchmarkSpansCorpus are the two passes every
// classification makes before its scan (casefold.go, internal/opaque), over the
// sisimai replies: the parts of BenchmarkClassifyCorpus that skipping host names and
// folding case added.
func BenchmarkFoldCaseCorpus(b *testing.B) {
	rows := readCorpus(b)
	i := 0
	for b.Loop() {
		sinkText = foldCase(rows[i].text)
		if i++; i == len(rows) {
			i = 0
		}
	}
}

func BenchmarkSpansCorpus(b *testing.B) {
	rows := readCorpus(b)
	var buf [8]opaque.Span
	i := 0
	for b.Loop() {
		sinkSpans = len(opaque.Spans(rows[i].text, buf[:0]))
		if i++; i == len(rows) {
			i = 0
		}
	}
}

var (
	sinkText  string
	sinkSpans int
)

// BenchmarkSpellingCorpus is the two spelling steps (spelling.go) over the sisimai
// replies: normalizeSpace where a reply enters, spellingForm before the scan.
func BenchmarkSpellingCorpus(b *testing.B) {
	rows := readCorpus(b)
	i := 0
	for b.Loop() {
		sinkText = spellingForm(normalizeSpace(rows[i].text))
		if i++; i == len(rows) {
			i = 0
		}
	}
}
