package catalog

import (
	"fmt"

	"github.com/reboundhq/rebound/internal/catalog/internal/fallback"
)

// The statistical fallback. Rules are precise but only know the wordings
// someone wrote down; a reply in words no rule knows used to end as
// `unknown` (action none) even when its words plainly said "we refuse your
// server". For those replies, and only those, a naive Bayes model over the
// reply's words, word pairs and codes, trained on the dev rows of
// testdata/replies.tsv (internal/fallback, data file data/fallback.tsv), may
// read the reply as a refusal of our side (an alert). Rails, enforced here
// whatever the model file says:
//   - it runs only when no text rule matched and the codes name no class
//     (no catalog entry, or one whose class is unknown, such as a bare 550),
//     or the reply carries no code at all (modelGate);
//   - it decides only when its margin over the runner-up clears the one
//     chosen by cross-validation on the dev rows, and the reply's own
//     features, not the label counts, favour its answer;
//   - it decides only the sender-side class policy_rejected (an alert): never
//     a suppression, a soft bounce or "none", whatever the model prefers;
//   - its decisions carry rule "model.sender", a reason saying a model
//     decided, and confidence confModel, below every code decision.
//
// A variant that could also suppress was measured once on the held-out rows
// and added a false suppression (docs/classification.md), so it was dropped.

//go:generate go test -run ^TestFallbackModelGenerated$ . -args -update-fallback

// confModel is the confidence of a model decision: above "nothing matched",
// below a catch-all basic code, because the evidence is statistical.
const confModel = 0.3

// The only decision the model may make.
const (
	modelRule  = "model.sender"
	modelClass = ClassPolicyRejected
)

func (c *Catalog) prepareModelReasons() {
	c.modelReason = fmt.Sprintf("no text rule matched and no code names a class; the statistical fallback "+
		"(naive Bayes over the reply's words and codes, trained on labelled replies) reads it as a refusal of "+
		"our side (sender, server or account), margin over the runner-up at least %.2f", c.model.Threshold(fallback.Alert))
}

// modelDecision asks the model about a reply no rule decided. ok is false
// when the model is not sure enough or prefers anything but an alert.
func (c *Catalog) modelDecision(r Reply, enh [3]int, hasEnh bool) (Classification, bool) {
	if c.model == nil {
		return Classification{}, false
	}
	// The reply alone, not the MTA's prose before it: a wrapper names where the
	// reply came from, and reading it moved 36 of TestWrappersDoNotDecide's probes.
	p := c.model.Predict(modelInput(r))
	if p.Label != fallback.Alert || !c.model.Decides(p) {
		return Classification{}, false
	}
	cl := Classification{Class: modelClass, Scope: c.classes[modelClass].scope, Rule: modelRule,
		Confidence: confModel, Reason: c.modelReason}
	cl.Code = c.resolveCode(r, enh, hasEnh)
	cl.Permanent, _ = c.permanence(modelClass, nil, r.Code, enh, hasEnh, nil)
	return cl, true
}

// modelInput is what the model reads of a reply Classify has folded and spelled:
// its codes and its text spelled as the rules' scan reads it ("isnt" as "is not"),
// with accents folded, so that a server that drops them ("wiadomosc" for
// "wiadomość") gives the model the same words. The rules cannot fold the reply's
// accents (distinct words collide: "đầy" and "day"), but for the model's
// word counts a collision only merges two rare features.
func modelInput(r Reply) fallback.Input {
	return fallback.Input{Code: r.Code, Enhanced: r.Enhanced, Text: foldAccents(expandBare(r.Text))}
}

// modelGate: the model is asked only when the codes name no class — no
// catalog entry at all, or one whose class is unknown (a bare 550, 553,
// 554, 5.0.0). A reply whose code names a class (a 421 read as a remote
// error, a 5.1.1) keeps the code's verdict; cross-validation on the dev rows
// showed that letting the model overrule catch-all 4xx codes and
// subject-level enhanced codes cost rows.
//
// And only for a reply that carries a failure code (4xx or 5xx, or without a
// basic code an enhanced 4.x.x or 5.x.x: "5.0.0 HELO requires domain address" is
// as much a receiver's reply as "550 5.0.0 …") or no code at all; never for a
// success or an intermediate reply ("250 OK", "2.0.0").
//
// Replies without a code were kept from the model until session 17, for fear of
// an ESP's own words for an event that came without a receiver's reply
// ("postmark: sending to this address was turned off in Postmark") being read as
// sender-side and paging on-call. The adapters' words are decided by rules
// (TestFixturesNotDecidedByModel in internal/ingest/all holds every fixture of
// every adapter to that), while a third of the held-out rows the classifier got
// wrong were receivers' refusals quoted without their code, which no rule and
// no code could decide: letting the model read them took the held-out part from
// 2,879 to 2,914 of 3,368 right (docs/classification.md). Without a code the
// model has little to go on, so it decides only on what the reply's words say,
// not on how common a label is (fallback.Prediction.Evidence).
func modelGate(e *entrySpec, code int, enh [3]int, hasEnh bool, text string) bool {
	failure := code >= 400 && code <= 599 || code == 0 && hasEnh && (enh[0] == 4 || enh[0] == 5)
	codeless := code == 0 && !hasEnh && !startsWithSuccess(text)
	if !failure && !codeless {
		return false
	}
	return !namesClass(e)
}

// startsWithSuccess reports whether text begins with a success or intermediate
// reply code, basic ("250 …", "354-…") or enhanced ("2.0.0 …"): the parser keeps
// only failure codes, so "250 2.0.0 Ok: queued" arrives with none.
func startsWithSuccess(text string) bool {
	if len(text) < 4 || text[0] != '2' && text[0] != '3' {
		return false
	}
	if isDigit(text[1]) && isDigit(text[2]) && (text[3] == ' ' || text[3] == '-') {
		return true
	}
	return text[0] == '2' && text[1] == '.' && isDigit(text[2])
}

// namesClass reports whether the codes' catalog entry names a class: an entry
// whose class is unknown (a bare 550, 5.0.0) names none, and no entry names none.
func namesClass(e *entrySpec) bool {
	return e != nil && e.Class != ClassUnknown
}
