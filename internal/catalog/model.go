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
//     (no catalog entry, or one whose class is unknown, such as a bare 550);
//   - it decides only when its margin over the runner-up clears the one
//     chosen by cross-validation on the dev rows;
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
	c.modelReason = fmt.Sprintf("no text rule matched and the codes name no class; the statistical fallback "+
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
	// Spelled as the rules' scan reads it ("isnt" as "is not"), as it was trained.
	p := c.model.Predict(fallback.Input{Code: r.Code, Enhanced: r.Enhanced, Text: expandBare(r.Text)})
	if p.Label != fallback.Alert || !c.model.Decides(p) {
		return Classification{}, false
	}
	cl := Classification{Class: modelClass, Scope: c.classes[modelClass].scope, Rule: modelRule,
		Confidence: confModel, Reason: c.modelReason}
	cl.Code = c.resolveCode(r, enh, hasEnh)
	cl.Permanent, _ = c.permanence(modelClass, nil, r.Code, enh, hasEnh, nil)
	return cl, true
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
// as much a receiver's reply as "550 5.0.0 …"): the model was trained on
// receivers' SMTP replies, and an ESP's own words for an event that came without
// one ("sending to this address was turned off in Postmark") are no reply of a
// receiver; read as sender-side, they would page on-call.
func modelGate(e *entrySpec, code int, enh [3]int, hasEnh bool) bool {
	failure := code >= 400 && code <= 599 || code == 0 && hasEnh && (enh[0] == 4 || enh[0] == 5)
	if !failure {
		return false
	}
	return !namesClass(e)
}

// namesClass reports whether the codes' catalog entry names a class: an entry
// whose class is unknown (a bare 550, 5.0.0) names none, and no entry names none.
func namesClass(e *entrySpec) bool {
	return e != nil && e.Class != ClassUnknown
}
