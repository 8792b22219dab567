package fallback

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestFeatures(t *testing.T) {
	for _, tc := range []struct {
		in   Input
		want []string
	}{
		{Input{Code: 550, Enhanced: "5.1.1", Text: "<Kijitora@Example.COM>: User UNKNOWN"},
			[]string{"@addr", "@addr user", "user", "user unknown", "unknown", "#b5", "#b550", "#e5.1", "#e5.1.1"}},
		// Digits end words and are dropped; one letter is not a word.
		{Input{Text: "Réponse: x 12ab3 Benutzer unbekannt"},
			[]string{"réponse", "réponse ab", "ab", "ab benutzer", "benutzer", "benutzer unbekannt", "unbekannt", "#bnone", "#enone"}},
		// Chinese and Japanese runs give their character pairs.
		{Input{Code: 550, Text: "用户不存在"},
			[]string{"用户", "用户 户不", "户不", "户不 不存", "不存", "不存 存在", "存在", "#b5", "#b550", "#enone"}},
		{Input{Code: 421, Text: "ユーザ"}, []string{"ユー", "ユー ーザ", "ーザ", "#b4", "#b421", "#enone"}},
		// A host name is one token, whatever its labels say; a block list's name
		// is what the reply says and stays words.
		{Input{Code: 554, Text: "spam-in.mx.example.net refused, see https://support.example.com/why listed in zen.spamhaus.org"},
			[]string{"@host", "@host refused", "refused", "refused see", "see", "see https", "https", "https @host", "@host why", "why",
				"why listed", "listed", "listed in", "in", "in zen", "zen", "zen spamhaus", "spamhaus", "spamhaus org", "org", "#b5", "#b554", "#enone"}},
	} {
		if got := Features(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Features(%+v) =\n %q\nwant\n %q", tc.in, got, tc.want)
		}
	}
}

func toyExamples() []Example {
	var exs []Example
	for i := 0; i < 20; i++ {
		exs = append(exs,
			Example{Input{Code: 550, Text: "zorgle mailbox gone"}, Suppress, true},
			Example{Input{Code: 452, Text: "mailbox quota later"}, Soft, true},
			Example{Input{Code: 554, Text: "your server blorp refused"}, Alert, true},
			Example{Input{Code: 451, Text: "local trouble later"}, None, true})
	}
	return exs
}

// TestModelRoundTrip: the file a model writes reads back to the same model,
// and the classifier's hashed features see what the trainer counted.
func TestModelRoundTrip(t *testing.T) {
	m, err := Train(toyExamples(), 0.5, 1, [NumLabels]float64{3, math.Inf(1), 0.5, math.Inf(1)})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Parse(m.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if string(m2.Marshal()) != string(m.Marshal()) {
		t.Fatal("model file does not round-trip")
	}
	for _, tc := range []struct {
		in   Input
		want Label
	}{
		{Input{Code: 550, Text: "Zorgle!"}, Suppress},
		{Input{Code: 554, Text: "BLORP refused"}, Alert},
		{Input{Code: 451, Text: "local trouble"}, None},
	} {
		p := m2.Predict(tc.in)
		if p.Label != tc.want || !(p.Prob > 0.5 && p.Prob <= 1) || p.Margin <= 0 {
			t.Errorf("Predict(%+v) = %+v, want %s", tc.in, p, tc.want)
		}
	}
	if m2.Decides(Prediction{Label: Soft, Margin: 100, Words: 1, Evidence: 1}) || !m2.Decides(Prediction{Label: Suppress, Margin: 3, Words: 1, Evidence: 1}) {
		t.Error("Decides ignores the margins")
	}
	// A lead that comes from the label counts alone, not from the reply's features, is no decision.
	if m2.Decides(Prediction{Label: Suppress, Margin: 3, Words: 1, Evidence: -0.5}) || m2.Decides(Prediction{Label: Suppress, Margin: 3, Words: 1}) {
		t.Error("Decides ignores the evidence")
	}
	if p := m2.Predict(Input{Code: 554, Text: "BLORP refused"}); p.Evidence <= 0 {
		t.Errorf("Predict(BLORP refused) = %+v: its words favour alert, want evidence > 0", p)
	}
	// A reply none of whose words the model knows is not decided, whatever its margin.
	if p := m2.Predict(Input{Code: 554, Text: "qwxz"}); p.Words != 0 || m2.Decides(Prediction{Label: Suppress, Margin: 3}) {
		t.Errorf("unknown words: %+v decided", p)
	}
	if p := m2.Predict(Input{Code: 554, Text: "BLORP refused"}); p.Words == 0 {
		t.Errorf("known words not counted: %+v", p)
	}
}

func TestParseRejects(t *testing.T) {
	good := "alpha\t0.5\nmin_docs\t1\nrows\t1\t1\t1\t1\ndecide\tsuppress\t3\ndecide\tsoft\t+Inf\ndecide\talert\t1\ndecide\tnone\t+Inf\nf\tx\t1\t0\t0\t0\n"
	if _, err := Parse([]byte(good)); err != nil {
		t.Fatalf("good file: %v", err)
	}
	for name, bad := range map[string]string{
		"no alpha":       strings.Replace(good, "alpha\t0.5\n", "", 1),
		"negative count": strings.Replace(good, "f\tx\t1", "f\tx\t-1", 1),
		"unknown label":  strings.Replace(good, "decide\tsoft", "decide\tmaybe", 1),
		"unknown line":   good + "weights\t1\n",
		"empty label":    strings.Replace(good, "rows\t1\t1", "rows\t0\t1", 1),
		"repeat feature": good + "f\tx\t0\t1\t0\t0\n",
		"missing decide": strings.Replace(good, "decide\tnone\t+Inf\n", "", 1),
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("%s: Parse accepted it", name)
		}
	}
}

// TestBuildDecidesOnlyAlert: whatever the rows say, the chosen margins let
// the model decide alert only, and the alert margin pays on the rows it
// clears (more right alerts than rows labelled none).
func TestBuildDecidesOnlyAlert(t *testing.T) {
	exs := toyExamples()
	// A none row worded like the refusals: out of fold it reads as alert.
	exs = append(exs, Example{Input{Code: 554, Text: "your server blorp refused"}, None, true})
	m, rep, err := Build(exs)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []Label{Suppress, Soft, None} {
		if !math.IsInf(m.Threshold(l), 1) {
			t.Errorf("%s margin %v, want +Inf", l, m.Threshold(l))
		}
		if rep.Decided[l] != 0 {
			t.Errorf("%s decided %d times out of fold, want 0", l, rep.Decided[l])
		}
	}
	if math.IsInf(m.Threshold(Alert), 1) || rep.Decided[Alert] == 0 {
		t.Fatalf("alert margin %v decides %d rows; the toy refusals should pay", m.Threshold(Alert), rep.Decided[Alert])
	}
	if rep.Right[Alert] <= rep.LabelNone[Alert] {
		t.Errorf("alert margin %v: %d right, %d labelled none", m.Threshold(Alert), rep.Right[Alert], rep.LabelNone[Alert])
	}
}

func TestPredictAllocs(t *testing.T) {
	m, err := Train(toyExamples(), 0.5, 1, [NumLabels]float64{})
	if err != nil {
		t.Fatal(err)
	}
	in := Input{Code: 550, Enhanced: "5.1.1", Text: "<x@example.com>: Recipient address rejected: User unknown in virtual mailbox table; Benutzer unbekannt 用户不存在"}
	if n := testing.AllocsPerRun(100, func() { _ = m.Predict(in) }); n != 0 {
		t.Errorf("Predict allocates %v times, want 0", n)
	}
}

func FuzzFeatures(f *testing.F) {
	for _, s := range []string{"", "a", "x@y", "用户不存在", "Benutzer unbekannt", "\xff\xfe", strings.Repeat("ab ", 400)} {
		f.Add(s, 550, "5.1.1")
	}
	m, err := Train(toyExamples(), 0.5, 1, [NumLabels]float64{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string, code int, enh string) {
		in := Input{Code: code, Enhanced: enh, Text: s}
		fs := Features(in)
		if len(fs) > maxFeatures {
			t.Fatalf("%d features", len(fs))
		}
		for _, x := range fs {
			if x == "" || strings.ContainsAny(x, "\t\n") {
				t.Fatalf("feature %q", x)
			}
		}
		p := m.Predict(in)
		if p.Label >= NumLabels || math.IsNaN(p.Margin) || p.Margin < 0 || !(p.Prob > 0 && p.Prob <= 1) {
			t.Fatalf("prediction %+v", p)
		}
	})
}

// TestEvidenceIsTheFeatures: a label that leads only because it is the most
// common one in the training rows leads by its prior, not by what the reply
// says: its evidence is not positive and the model does not decide.
func TestEvidenceIsTheFeatures(t *testing.T) {
	var exs []Example
	for i := 0; i < 120; i++ {
		// "the" (and the absent codes) are in every row, a smaller share of an
		// alert row's features.
		exs = append(exs, Example{Input{Text: "the blorp refused"}, Alert, true})
		if i%12 == 0 {
			exs = append(exs, Example{Input{Text: "the later"}, None, true},
				Example{Input{Text: "the zorgle"}, Suppress, true},
				Example{Input{Text: "the quota"}, Soft, true})
		}
	}
	m, err := Train(exs, 0.5, 1, [NumLabels]float64{math.Inf(1), math.Inf(1), 0, math.Inf(1)})
	if err != nil {
		t.Fatal(err)
	}
	// The prior makes alert the most likely label for "the" alone.
	p := m.Predict(Input{Text: "the"})
	if p.Label != Alert || p.Margin <= 0 || p.Words != 1 {
		t.Fatalf("Predict(the) = %+v: want alert ahead by its prior, or the test proves nothing", p)
	}
	if p.Evidence > 0 || m.Decides(p) {
		t.Errorf("Predict(the) = %+v decided: the lead is the prior's", p)
	}
	if p := m.Predict(Input{Text: "the blorp"}); p.Label != Alert || p.Evidence <= 0 || !m.Decides(p) {
		t.Errorf("Predict(the blorp) = %+v not decided: its words say alert", p)
	}
}
