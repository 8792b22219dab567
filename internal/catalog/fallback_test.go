package catalog

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/reboundhq/rebound/internal/catalog/internal/fallback"
)

var updateFallback = flag.Bool("update-fallback", false, "rewrite data/fallback.tsv from the dev rows of testdata/replies.tsv")

// fallbackInput is what the model reads of a reply, split as Classify
// splits it.
func fallbackInput(reply string) fallback.Input {
	r, _ := parse(normalizeReply(reply)) // the reply alone, as modelDecision asks the model
	r.Text = spellingForm(foldCase(r.Text))
	return modelInput(r)
}

// devExamples are the corpus's dev rows as training examples; test rows
// never reach the trainer.
func devExamples(t testing.TB, rows []replyRow) ([]fallback.Example, []replyRow) {
	t.Helper()
	c := setup(t)
	var exs []fallback.Example
	var dev []replyRow
	for _, r := range rows {
		if r.split != "dev" {
			continue
		}
		l, ok := fallback.ParseLabel(r.action)
		if !ok {
			t.Fatalf("%s: label %q", r.id, r.action)
		}
		exs = append(exs, fallback.Example{Input: fallbackInput(r.reply), Label: l, Gated: codesNameNoClass(c, r.reply)})
		dev = append(dev, r)
	}
	return exs, dev
}

// TestFallbackModelGenerated rebuilds the fallback model from the dev rows
// and insists that the embedded data/fallback.tsv is exactly that file, so
// the model can neither be edited by hand nor carry a test row.
// `go generate ./internal/catalog` (or this test with -update-fallback)
// rewrites it.
func TestFallbackModelGenerated(t *testing.T) {
	exs, _ := devExamples(t, readReplies(t))
	m, rep, err := fallback.Build(exs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cross-validated on %d dev rows (%d folds): alpha %g, min_docs %d, most likely label right %d/%d = %.2f%%",
		rep.Rows, fallback.Folds, rep.Alpha, rep.MinDocs, rep.ArgmaxRight, rep.Rows, pct(rep.ArgmaxRight, rep.Rows))
	for l := fallback.Label(0); l < fallback.NumLabels; l++ {
		t.Logf("  %-8s margin %8.3f: decided %4d, right %4d, labelled none %3d", l, m.Threshold(l), rep.Decided[l], rep.Right[l], rep.LabelNone[l])
	}
	checkGenerated(t, "data/fallback.tsv", m.Marshal(), *updateFallback, "what the dev rows produce")
}

// checkGenerated holds a generated file to what its generator gives now: with
// update it writes the file, without it fails when the file in the tree differs,
// so the file can neither be edited by hand nor fall behind its source.
func checkGenerated(t *testing.T, file string, want []byte, update bool, source string) {
	t.Helper()
	if update {
		if err := os.WriteFile(file, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not %s; run go generate ./internal/catalog", file, source)
	}
}

// TestFallbackCrossValidated measures the whole classifier (rules, codes and
// the fallback) on the dev rows out of fold: each fold's rows are classified
// with a model trained on the other folds only. It is the dev figure that
// says what the fallback adds; the in-sample dev figure of TestCorpusReplies
// includes rows the model was trained on.
func TestFallbackCrossValidated(t *testing.T) {
	rows := readReplies(t)
	exs, dev := devExamples(t, rows)
	full, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	alpha, minDocs := full.model.Alpha(), full.model.MinDocs()
	var decide [fallback.NumLabels]float64
	for l := range decide {
		decide[l] = full.model.Threshold(fallback.Label(l))
	}
	var without, with replyScore
	modelRows := map[string]int{}
	for k := 0; k < fallback.Folds; k++ {
		var tr []fallback.Example
		for i := range exs {
			if i%fallback.Folds != k {
				tr = append(tr, exs[i])
			}
		}
		m, err := fallback.Train(tr, alpha, minDocs, decide)
		if err != nil {
			t.Fatal(err)
		}
		c := withModel(t, m)
		bare, err := Default()
		if err != nil {
			t.Fatal(err)
		}
		bare.model = nil
		for i := k; i < len(dev); i += fallback.Folds {
			r := dev[i]
			transient := isTransientReply(r.reply)
			cl := c.Classify(r.reply, LabelledHints(r.reply))
			got := Verdict(cl)
			with.add(r, got, transient)
			without.add(r, Verdict(bare.Classify(r.reply, LabelledHints(r.reply))), transient)
			if len(cl.Rule) > 6 && cl.Rule[:6] == "model." {
				modelRows[cl.Rule]++
				if got != r.action {
					modelRows[cl.Rule+" wrong"]++
					if testing.Verbose() {
						t.Logf("model miss %s want %s got %s: %s", r.id, r.action, got, trunc(r.reply))
					}
				}
			}
		}
	}
	t.Logf("model decisions on dev, out of fold: %v", modelRows)
	t.Logf("\n%s\n%s", without.report("dev without the fallback"), with.report("dev with the fallback, out of fold"))
	if with.FalseSuppressions > 0 || with.TransientSuppressed > 0 {
		t.Errorf("out of fold, the fallback made %d false suppressions and suppressed %d 4xx replies, want 0",
			with.FalseSuppressions, with.TransientSuppressed)
	}
	// Floor at or below the measured figure (4,786/5,066 = 94.47 %, forty rounds; 4,773/5,054
	// = 94.44 % before them, with a first line's lost basic code read from its enhanced code;
	// 4,772/5,054 = 94.42 %, the model reading replies
	// without a code too, on evidence of their words (session 17: on dev the rules had those
	// rows already); 4,777/5,054 = 94.52 %;
	// 4,772/5,054 = 94.42 %, the same rows, eight more dev
	// wordings; 4,764/5,054 = 94.26 %, thirty-nine rounds less the
	// rows without a named repository; 4,789/5,083 = 94.22 %, thirty-nine rounds;
	// 4,755/5,049 = 94.18 %, thirty-eight rounds;
	// 4,672/4,958 = 94.23 %, thirty-seven rounds, host names read as one token;
	// 4,670/4,958 = 94.19 %, thirty-seven rounds, the model
	// reading the reply without the MTA's prose; 4,673/4,958 = 94.25 %, thirty-seven rounds;
	// 4,590/4,872 = 94.21 %, thirty-six rounds;
	// 4,521/4,798 = 94.23 %, thirty-five rounds;
	// 4,407/4,671 = 94.35 %, thirty-four rounds;
	// 4,340/4,614 = 94.06 %, thirty-three rounds;
	// 4,308/4,577 = 94.12 %, thirty-two rounds;
	// 4,276/4,540 = 94.19 %, thirty-one rounds;
	// 4,229/4,491 = 94.17 %, thirty rounds;
	// 4,168/4,412 = 94.47 %, twenty-nine rounds;
	// 4,090/4,336 = 94.33 %, twenty-eight rounds;
	// 4,033/4,262 = 94.63 % over twenty-seven;
	// 3,953/4,167 = 94.86 % over twenty-six;
	// 3,899/4,111 = 94.84 % over twenty-five;
	// 3,859/4,066 = 94.91 % over twenty-four;
	// 3,799/4,000 = 94.97 % over twenty-three;
	// 3,762/3,956 = 95.10 % over twenty-two, 3,758 before
	// the last rules and relabel;
	// 3,666/3,850 = 95.22 % over twenty-one, 3,522/3,692 = 95.40 % over nineteen, 3,383/3,532 = 95.78 % over eighteen), never above.
	if a := pct(with.Right, with.Rows); a < 94.1 {
		t.Errorf("dev out of fold with the fallback: %.2f%% right, floor 94.1%%", a)
	}
}

// codesNameNoClass: the reply's codes alone decide nothing the catalog can
// act on, so the classifier would ask the model about it when no rule
// matches. These rows choose the model's margin. Rows no rule matches would
// be the exact set, but on the dev rows the rules were written for, what
// the rules leave undecided is almost only replies labelled none (with that
// set, cross-validation chose "never decide": docs/classification.md), which
// is not what rules leave undecided on replies nobody tuned them to; the
// codes-only set does not depend on the rules.
func codesNameNoClass(c *Catalog, reply string) bool {
	r := ParseReply(reply)
	enh, hasEnh := splitEnhanced(r.Enhanced)
	e, _ := c.codeDecision(r.Code, enh, hasEnh)
	return modelGate(e, r.Code, enh, hasEnh, r.Text)
}

// TestFallbackRails gives the catalog a model that reads the made-up word
// "zorgle" as a dead recipient, "quota" as a soft bounce and "blorp" as a
// refusal of our side, with no margin to clear, and checks that the
// classifier lets it decide only the alert.
func TestFallbackRails(t *testing.T) {
	var exs []fallback.Example
	for i := 0; i < 10; i++ {
		exs = append(exs,
			fallback.Example{Input: fallback.Input{Code: 550, Text: "zorgle"}, Label: fallback.Suppress},
			fallback.Example{Input: fallback.Input{Code: 450, Text: "zorgle"}, Label: fallback.Suppress},
			fallback.Example{Input: fallback.Input{Text: "zorgle"}, Label: fallback.Suppress},
			fallback.Example{Input: fallback.Input{Code: 552, Text: "quota"}, Label: fallback.Soft},
			fallback.Example{Input: fallback.Input{Code: 554, Text: "blorp"}, Label: fallback.Alert},
			fallback.Example{Input: fallback.Input{Code: 551, Text: "later"}, Label: fallback.None})
	}
	// No margin for any label: only the catalog's rails stand between the
	// model and a suppression.
	m, err := fallback.Train(exs, 0.5, 1, [fallback.NumLabels]float64{0, 0, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	c := withModel(t, m)
	for _, reply := range []string{"550 zorgle", "zorgle", "552 quota"} {
		if p := m.Predict(fallbackInput(reply)); p.Label == fallback.Alert || !m.Decides(p) {
			t.Fatalf("%q: the toy model says %s (decides %v); the rail test below would prove nothing", reply, p.Label, m.Decides(p))
		}
	}
	for _, tc := range []struct {
		reply, rule string
		action      string
	}{
		// The model wants to suppress, soft-bounce or ignore these: the
		// rails leave them to the codes.
		{"550 zorgle", "basic.550", "none"},
		{"553 5.0.0 zorgle", "", "none"},
		{"458 zorgle", "fallback.transient", "none"},
		{"zorgle", "fallback.unknown", "none"},
		{"552 quota", "", ""},
		{"551 later", "", ""},
		// A code that names a class keeps its verdict.
		{"550 5.1.1 blorp", "enhanced.5.1.1", "suppress"},
		{"421 blorp", "basic.421", "none"},
		// A refusal of our side may come from any code that names no class.
		{"550 blorp", "model.sender", "alert"},
		// And a reply quoted without its code.
		{"blorp", "model.sender", "alert"},
		// A success is no refusal: the model does not read it.
		{"250 blorp", "", "none"},
		// A text rule outranks the model.
		{"550 5.1.1 zorgle user unknown", "generic.user_unknown", "suppress"},
	} {
		cl := c.Classify(tc.reply, Hints{})
		if tc.rule != "" && cl.Rule != tc.rule || tc.action != "" && Verdict(cl) != tc.action {
			t.Errorf("%q: rule %s, action %s (%s); want rule %s, action %s", tc.reply, cl.Rule, Verdict(cl), cl.Reason, tc.rule, tc.action)
		}
		if strings.HasPrefix(cl.Rule, "model.") {
			if cl.Rule != modelRule || cl.Scope != ScopeSender || cl.Confidence != confModel || !strings.Contains(cl.Reason, "statistical fallback") {
				t.Errorf("%q: model decision beyond its rails: %+v", tc.reply, cl)
			}
		} else if strings.Contains(cl.Reason, "statistical fallback") {
			t.Errorf("%q: reason names the model but rule %s decided", tc.reply, cl.Rule)
		}
	}
}

// withModel is the default catalog with m as its statistical fallback.
func withModel(t *testing.T, m *fallback.Model) *Catalog {
	t.Helper()
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	c.model = m
	c.prepareModelReasons()
	return c
}

// TestModelGate: the model hears a reply that carries a failure code, basic or,
// without one, enhanced, and a reply that carries no code; never a success or an
// intermediate reply.
func TestModelGate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code   int
		enh    string
		text   string
		listen bool
	}{
		{550, "", "", true},
		{451, "", "", true},
		{0, "5.0.0", "", true},
		{0, "4.3.0", "", true},
		{0, "2.0.0", "", false},
		{0, "", "mailbox unavailable", true}, // no code: a receiver's reply quoted without it, or words an adapter wrote (which rules decide)
		{250, "", "", false},
		{354, "", "", false},
		{250, "5.0.0", "", false}, // a success code wins over an enhanced code in its text
		// The parser keeps failure codes only: a success arrives as text.
		{0, "", "250 2.0.0 Ok: queued as 4BQ5", false},
		{0, "", "354 go ahead", false},
		{0, "", "2.0.0 message accepted", false},
		{0, "", "2 recipients were refused", true},
	} {
		enh, hasEnh := splitEnhanced(tc.enh)
		if got := modelGate(nil, tc.code, enh, hasEnh, tc.text); got != tc.listen {
			t.Errorf("modelGate(code %d, enhanced %q, %q) = %v, want %v", tc.code, tc.enh, tc.text, got, tc.listen)
		}
	}
}
