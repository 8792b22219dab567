package fallback

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Label is the action the default policy should take on a reply, as the
// corpus labels it.
type Label uint8

// Labels, in the order of the model file's count columns.
const (
	Suppress Label = iota
	Soft
	Alert
	None
	NumLabels
)

var labelNames = [NumLabels]string{"suppress", "soft", "alert", "none"}

func (l Label) String() string {
	if l < NumLabels {
		return labelNames[l]
	}
	return "label(" + strconv.Itoa(int(l)) + ")"
}

// ParseLabel reads a corpus label.
func ParseLabel(s string) (Label, bool) {
	for i, n := range labelNames {
		if n == s {
			return Label(i), true
		}
	}
	return 0, false
}

// Model is a multinomial naive Bayes model over the features of a reply
// (each counted once per reply), with the margins the model must clear
// before its answer counts.
type Model struct {
	alpha    float64
	minDocs  int
	rows     [NumLabels]int
	decide   [NumLabels]float64 // minimum margin per label; +Inf: the model never decides it
	logPrior [NumLabels]float64
	keys     []uint64 // open-addressing table of feature hashes (see lookup)
	slots    []int32
	logp     [][NumLabels]float64
	features []string
	counts   [][NumLabels]int
}

// Prediction is the model's answer for one reply: the most likely label,
// its margin over the runner-up (difference of log scores), its posterior
// probability, how many of the reply's words and word pairs the model knows
// (its codes aside), and its evidence: the least lead of the label over any
// other on the reply's features alone, without the label counts (priors).
type Prediction struct {
	Label    Label
	Margin   float64
	Prob     float64
	Words    int
	Evidence float64
}

// Decides reports whether the prediction clears the margin chosen for its
// label by cross-validation, on words the model knows and on what they say.
// A reply none of whose words it has seen ("599 weird") is scored on its
// codes and the label counts alone, which says nothing about that reply; and
// a reply whose features favour another label ("frobnicated the quux for
// <addr>": "the" and "for") is led only by how often each label occurs in
// the training rows, which says nothing about it either.
func (m *Model) Decides(p Prediction) bool {
	return p.Words > 0 && p.Evidence > 0 && p.Margin >= m.decide[p.Label]
}

// Threshold is the margin a prediction of label l must clear.
func (m *Model) Threshold(l Label) float64 { return m.decide[l] }

// Vocabulary is the number of features the model knows.
func (m *Model) Vocabulary() int { return len(m.features) }

// Predict scores a reply. It allocates nothing.
func (m *Model) Predict(in Input) Prediction {
	var f features
	newFeatures(&f, in)
	// Features a reply repeats count once; the known ones are few, so a
	// linear check of those already counted is cheaper than a set.
	var seen [maxFeatures]int32
	n, words := 0, 0
	score := m.logPrior
	for b := f.next(); b != nil; b = f.next() {
		i := m.lookup(hash(b))
		if i < 0 || slices.Contains(seen[:n], i) {
			continue
		}
		seen[n] = i
		n++
		if b[0] != '#' {
			words++
		}
		lp := &m.logp[i]
		for l := range score {
			score[l] += lp[l]
		}
	}
	p := predictionOf(score)
	p.Words = words
	p.Evidence = math.Inf(1)
	for l := range score {
		if Label(l) != p.Label {
			// The priors cancel out of score[best] - score[l] only in part:
			// take them out to leave what the features say.
			lead := (score[p.Label] - m.logPrior[p.Label]) - (score[l] - m.logPrior[l])
			p.Evidence = min(p.Evidence, lead)
		}
	}
	return p
}

// lookup finds a feature's row by its hash in the open-addressing table
// (linear probing; slots hold row+1, 0 = empty), -1 if the model does not
// know it. Most features of a reply are unknown, so the table is kept at
// most half full to end those probes early.
func (m *Model) lookup(h uint64) int32 {
	mask := uint64(len(m.slots) - 1)
	for j := h & mask; ; j = (j + 1) & mask {
		switch s := m.slots[j]; {
		case s == 0:
			return -1
		case m.keys[j] == h:
			return s - 1
		}
	}
}

func predictionOf(score [NumLabels]float64) Prediction {
	best, second := Label(0), Label(1)
	if score[1] > score[0] {
		best, second = 1, 0
	}
	for l := Label(2); l < NumLabels; l++ {
		switch {
		case score[l] > score[best]:
			best, second = l, best
		case score[l] > score[second]:
			second = l
		}
	}
	var z float64
	for l := range score {
		z += math.Exp(score[l] - score[best])
	}
	return Prediction{Label: best, Margin: score[best] - score[second], Prob: 1 / z}
}

// newModel turns document counts into a model.
func newModel(features []string, counts [][NumLabels]int, rows [NumLabels]int, alpha float64, minDocs int, decide [NumLabels]float64) (*Model, error) {
	size := 16
	for size < 2*len(features)+1 {
		size *= 2
	}
	m := &Model{alpha: alpha, minDocs: minDocs, rows: rows, decide: decide,
		keys: make([]uint64, size), slots: make([]int32, size), logp: make([][NumLabels]float64, len(features)),
		features: features, counts: counts}
	var total int
	var mass [NumLabels]float64
	for _, c := range counts {
		for l := range mass {
			mass[l] += float64(c[l])
		}
	}
	for _, r := range rows {
		total += r
	}
	v := float64(len(features))
	for l := range rows {
		if rows[l] == 0 || total == 0 {
			return nil, fmt.Errorf("fallback: no training rows labelled %s", Label(l))
		}
		m.logPrior[l] = math.Log(float64(rows[l]) / float64(total))
	}
	for i, f := range features {
		x := hash([]byte(f))
		if m.lookup(x) >= 0 {
			return nil, fmt.Errorf("fallback: feature %q repeats or collides", f)
		}
		j := x & uint64(size-1)
		for m.slots[j] != 0 {
			j = (j + 1) & uint64(size-1)
		}
		m.keys[j], m.slots[j] = x, int32(i)+1
		for l := range mass {
			m.logp[i][l] = math.Log((float64(counts[i][l]) + alpha) / (mass[l] + alpha*v))
		}
	}
	return m, nil
}

// The model file: comment lines (#), then key/value lines, then one line per
// feature with its document count under each label.
const fileHeader = `# The reply classifier's statistical fallback (multinomial naive Bayes), generated by
#   go generate ./internal/catalog
# from the dev rows of internal/catalog/testdata/replies.tsv only. Do not edit: a test
# rebuilds it from those rows and fails when this file differs.
# alpha: additive smoothing; min_docs: a feature is kept when at least this many dev
# replies carry it; rows: dev replies per label (suppress soft alert none); decide: the
# margin (log-score lead over the runner-up) a prediction of that label must clear, chosen
# by cross-validation on the dev rows (+Inf: the model never decides that label);
# f: feature, then the number of dev replies with that label that carry it.
`

// Marshal writes the model file.
func (m *Model) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(fileHeader)
	fmt.Fprintf(&b, "alpha\t%s\n", strconv.FormatFloat(m.alpha, 'g', -1, 64))
	fmt.Fprintf(&b, "min_docs\t%d\n", m.minDocs)
	fmt.Fprintf(&b, "rows\t%d\t%d\t%d\t%d\n", m.rows[0], m.rows[1], m.rows[2], m.rows[3])
	for l := Label(0); l < NumLabels; l++ {
		fmt.Fprintf(&b, "decide\t%s\t%s\n", l, strconv.FormatFloat(m.decide[l], 'f', -1, 64))
	}
	for i, f := range m.features {
		c := m.counts[i]
		fmt.Fprintf(&b, "f\t%s\t%d\t%d\t%d\t%d\n", f, c[0], c[1], c[2], c[3])
	}
	return b.Bytes()
}

// Parse reads a model file.
func Parse(data []byte) (*Model, error) {
	var (
		alpha     = math.NaN()
		minDocs   int
		rows      [NumLabels]int
		decide    [NumLabels]float64
		haveRows  bool
		features  []string
		counts    [][NumLabels]int
		decideSet [NumLabels]bool
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s := sc.Text()
		if s == "" || s[0] == '#' {
			continue
		}
		p := strings.Split(s, "\t")
		bad := func(err error) error { return fmt.Errorf("fallback model line %d: %q: %v", line, s, err) }
		ints := func(xs []string) ([NumLabels]int, error) {
			var out [NumLabels]int
			if len(xs) != int(NumLabels) {
				return out, fmt.Errorf("want %d counts", NumLabels)
			}
			for i, x := range xs {
				n, err := strconv.Atoi(x)
				if err != nil || n < 0 {
					return out, fmt.Errorf("count %q", x)
				}
				out[i] = n
			}
			return out, nil
		}
		var err error
		switch {
		case p[0] == "alpha" && len(p) == 2:
			alpha, err = strconv.ParseFloat(p[1], 64)
			if err == nil && !(alpha > 0) {
				err = fmt.Errorf("alpha must be positive")
			}
		case p[0] == "min_docs" && len(p) == 2:
			minDocs, err = strconv.Atoi(p[1])
		case p[0] == "rows":
			rows, err = ints(p[1:])
			haveRows = true
		case p[0] == "decide" && len(p) == 3:
			l, ok := ParseLabel(p[1])
			if !ok {
				return nil, bad(fmt.Errorf("unknown label"))
			}
			decide[l], err = strconv.ParseFloat(p[2], 64)
			decideSet[l] = true
		case p[0] == "f" && len(p) == 2+int(NumLabels):
			var c [NumLabels]int
			c, err = ints(p[2:])
			features = append(features, p[1])
			counts = append(counts, c)
		default:
			err = fmt.Errorf("unknown line")
		}
		if err != nil {
			return nil, bad(err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("fallback model: %w", err)
	}
	if math.IsNaN(alpha) || !haveRows || decideSet != [NumLabels]bool{true, true, true, true} {
		return nil, fmt.Errorf("fallback model: alpha, rows and a decide line per label are required")
	}
	return newModel(features, counts, rows, alpha, minDocs, decide)
}

// Alpha is the model's additive smoothing.
func (m *Model) Alpha() float64 { return m.alpha }

// MinDocs is the model's vocabulary cut.
func (m *Model) MinDocs() int { return m.minDocs }
