package fallback

import (
	"math"
	"sort"
)

// Example is one labelled training reply.
type Example struct {
	Input Input
	Label Label
	// Gated: the reply is of the kind the classifier asks the model about
	// (no code names a class, or it has none). Only these rows choose the margins.
	Gated bool
}

// Folds is the number of cross-validation folds; example i is in fold
// i % Folds.
const Folds = 10

// The hyper-parameter grid searched by cross-validation.
var (
	alphaGrid   = []float64{0.05, 0.1, 0.25, 0.5, 1}
	minDocsGrid = []int{1, 2, 3}
)

// Train counts the examples' features into a model with the given smoothing,
// vocabulary cut and decision margins.
func Train(exs []Example, alpha float64, minDocs int, decide [NumLabels]float64) (*Model, error) {
	return train(exs, featuresOf(exs), alpha, minDocs, decide)
}

func featuresOf(exs []Example) [][]string {
	out := make([][]string, len(exs))
	for i, e := range exs {
		out[i] = Features(e.Input)
	}
	return out
}

func train(exs []Example, feats [][]string, alpha float64, minDocs int, decide [NumLabels]float64) (*Model, error) {
	var rows [NumLabels]int
	docs := map[string]*[NumLabels]int{}
	for i, e := range exs {
		rows[e.Label]++
		for _, f := range feats[i] {
			c := docs[f]
			if c == nil {
				c = new([NumLabels]int)
				docs[f] = c
			}
			c[e.Label]++
		}
	}
	names := make([]string, 0, len(docs))
	for f, c := range docs {
		if c[0]+c[1]+c[2]+c[3] >= minDocs {
			names = append(names, f)
		}
	}
	sort.Strings(names)
	counts := make([][NumLabels]int, len(names))
	for i, f := range names {
		counts[i] = *docs[f]
	}
	return newModel(names, counts, rows, alpha, minDocs, decide)
}

// Report is what cross-validation on the training rows measured.
type Report struct {
	Alpha   float64
	MinDocs int
	Rows    int
	// ArgmaxRight is how many rows the model's most likely label got right,
	// out of fold (every row predicted by a model trained without its fold).
	ArgmaxRight int
	// Gated is the number of Gated rows. Per label, at the chosen margins,
	// out of fold, among the Gated rows: predictions that clear the margin
	// (and for suppress also the rail), how many of them are right, and how
	// many are labelled none.
	Gated                     int
	Decided, Right, LabelNone [NumLabels]int
	// OOF holds the out-of-fold prediction of every example.
	OOF []Prediction
}

// Build chooses the smoothing and vocabulary cut by Folds-fold
// cross-validation on exs (the most rows right by the most likely label),
// then the decision margins from the same out-of-fold predictions, and
// trains the final model on all of exs.
//
// Margins are chosen on the Gated rows only (those the classifier would ask
// the model about). The model may only decide alert: its answer replaces
// "no decision" (action none), so an alert pays when it is right and costs
// when the row is labelled none; the alert margin is the one that maximises
// right - none among the out-of-fold alert predictions that clear it (+Inf
// when none pays). Suppress, soft and none are never the model's decision
// (+Inf), whatever the rows say: a wrong suppression cuts a customer off,
// and a wrong soft or none is no better than no decision.
func Build(exs []Example) (*Model, Report, error) {
	feats := featuresOf(exs)
	var best Report
	bestRight := -1
	for _, minDocs := range minDocsGrid {
		for _, alpha := range alphaGrid {
			oof, err := crossValidate(exs, feats, alpha, minDocs)
			if err != nil {
				return nil, Report{}, err
			}
			right := 0
			for i, p := range oof {
				if p.Label == exs[i].Label {
					right++
				}
			}
			if right > bestRight {
				bestRight = right
				best = Report{Alpha: alpha, MinDocs: minDocs, Rows: len(exs), ArgmaxRight: right, OOF: oof}
			}
		}
	}
	decide := chooseMargins(exs, best.OOF)
	for _, e := range exs {
		if e.Gated {
			best.Gated++
		}
	}
	for i, p := range best.OOF {
		if !exs[i].Gated || p.Words == 0 || p.Evidence <= 0 || p.Margin < decide[p.Label] {
			continue
		}
		best.Decided[p.Label]++
		if exs[i].Label == p.Label {
			best.Right[p.Label]++
		}
		if exs[i].Label == None {
			best.LabelNone[p.Label]++
		}
	}
	m, err := train(exs, feats, best.Alpha, best.MinDocs, decide)
	return m, best, err
}

func crossValidate(exs []Example, feats [][]string, alpha float64, minDocs int) ([]Prediction, error) {
	oof := make([]Prediction, len(exs))
	for k := 0; k < Folds; k++ {
		var tr []Example
		var tf [][]string
		for i := range exs {
			if i%Folds != k {
				tr = append(tr, exs[i])
				tf = append(tf, feats[i])
			}
		}
		m, err := train(tr, tf, alpha, minDocs, [NumLabels]float64{})
		if err != nil {
			return nil, err
		}
		for i := k; i < len(exs); i += Folds {
			oof[i] = m.Predict(exs[i].Input)
		}
	}
	return oof, nil
}

func chooseMargins(exs []Example, oof []Prediction) [NumLabels]float64 {
	var decide [NumLabels]float64
	// Only alert is ever decided (see Build and the catalog's model.go).
	decide[Suppress], decide[Soft], decide[None] = math.Inf(1), math.Inf(1), math.Inf(1)
	for _, l := range []Label{Alert} {
		type cand struct {
			margin float64
			gain   int
		}
		var cs []cand
		for i, p := range oof {
			if p.Label != l || !exs[i].Gated || p.Words == 0 || p.Evidence <= 0 {
				continue
			}
			g := 0
			switch exs[i].Label {
			case l:
				g = 1
			case None:
				g = -1
			}
			cs = append(cs, cand{p.Margin, g})
		}
		// Highest margin first: the running sum is the gain of deciding
		// every prediction at or above that margin.
		sort.Slice(cs, func(a, b int) bool { return cs[a].margin > cs[b].margin })
		decide[l] = math.Inf(1)
		bestGain, sum := 0, 0
		for j, c := range cs {
			sum += c.gain
			if j+1 < len(cs) && cs[j+1].margin == c.margin {
				continue
			}
			if sum > bestGain {
				bestGain, decide[l] = sum, c.margin
			}
		}
	}
	// Rounded up to 1/1000, so the file does not depend on the last bits of a sum of logarithms (which the
	// order of summation or a fused multiply-add can change).
	for l := range decide {
		decide[l] = math.Ceil(decide[l]*1000) / 1000
	}
	return decide
}
