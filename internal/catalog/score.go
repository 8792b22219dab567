package catalog

import (
	"strings"

	"github.com/reboundhq/rebound/internal/catalog/internal/opaque"
)

// Verdict is the action a classification stands for on its first event under the
// default policy, as the labelled corpus (testdata/replies.tsv) and `worker score`
// count it: "suppress" for a permanent recipient fault, "soft" for a transient one,
// "alert" for a sender-side fault, "none" for everything else. (The policy itself
// may do less with some of them: it records a recipient's rate limit without
// counting it as a soft bounce.)
func Verdict(cl Classification) string {
	switch {
	case cl.Scope == ScopeRecipient && cl.Permanent:
		return "suppress"
	case cl.Scope == ScopeRecipient:
		return "soft"
	case cl.Scope == ScopeSender:
		return "alert"
	}
	return "none"
}

// LabelledHints are the hints a labelled reply carries by the corpus's
// convention: a labelled file has no event to take our envelope sender from,
// so an address whose local part is "sender" stands for it (collectors
// anonymise our side's address as sender@example.…, the recipient's as
// user@example.…).
func LabelledHints(reply string) Hints {
	var buf [8]opaque.Span
	for _, sp := range opaque.Addresses(reply, buf[:0]) {
		tok := sp.Address(reply)
		if at := strings.IndexByte(tok, '@'); at > 0 && strings.EqualFold(tok[:at], "sender") {
			return Hints{Sender: tok}
		}
	}
	return Hints{}
}

// Verdicts are the labels Score accepts, in the order its confusion matrix prints them.
var Verdicts = []string{"suppress", "soft", "alert", "none"}

// LabelledReply is one reply with the verdict a person gave it.
type LabelledReply struct {
	Line  int    // where it came from, for the report
	Want  string // one of Verdicts
	Reply string
}

// Miss is a labelled reply the catalog decided otherwise.
type Miss struct {
	LabelledReply
	Got, Rule string
}

// Scorecard is how the catalog does on a set of labelled replies, in the corpus's
// terms (docs/classification.md, "Definitions").
type Scorecard struct {
	Rows, Right int
	// FalseSuppressions: decided suppress, labelled anything else.
	FalseSuppressions int
	// Hard bounces: labelled suppress; Missed: decided anything else.
	HardBounces, MissedHardBounces int
	// TransientSuppressed: replies with a 4xx code (basic or enhanced) decided suppress.
	TransientSuppressed int
	// SenderSide: labelled alert; SenderCaught: decided alert.
	SenderSide, SenderCaught int
	Confusion                map[[2]string]int // [want, got]
	Misses                   []Miss
}

// Score classifies every reply and compares the verdict with its label.
func (c *Catalog) Score(rows []LabelledReply) Scorecard {
	var s Scorecard
	for _, r := range rows {
		cl := c.Classify(r.Reply, LabelledHints(r.Reply))
		got := Verdict(cl)
		if !s.add(r.Want, got, isTransientReply(r.Reply)) {
			s.Misses = append(s.Misses, Miss{LabelledReply: r, Got: got, Rule: cl.Rule})
		}
	}
	return s
}

// add counts one reply labelled want and decided got (transient: it carries a 4xx
// code) and says whether the verdict was right.
func (s *Scorecard) add(want, got string, transient bool) bool {
	if s.Confusion == nil {
		s.Confusion = map[[2]string]int{}
	}
	s.Rows++
	s.Confusion[[2]string{want, got}]++
	if got == "suppress" && want != "suppress" {
		s.FalseSuppressions++
	}
	if want == "suppress" {
		s.HardBounces++
		if got != "suppress" {
			s.MissedHardBounces++
		}
	}
	if got == "suppress" && transient {
		s.TransientSuppressed++
	}
	if want == "alert" {
		s.SenderSide++
		if got == "alert" {
			s.SenderCaught++
		}
	}
	if got != want {
		return false
	}
	s.Right++
	return true
}

// isTransientReply: the reply carries a 4xx basic code or a 4.x.x enhanced code, so
// the server itself said "try again".
func isTransientReply(reply string) bool {
	r := ParseReply(reply)
	return r.Code/100 == 4 || strings.HasPrefix(r.Enhanced, "4.")
}
