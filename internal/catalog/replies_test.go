package catalog

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

// testdata/replies.tsv is the catalog's own corpus: real SMTP replies from
// public postmaster pages, MTA sources and bounce-parser test corpora, one
// source named per row (licences in testdata/NOTICE-replies), each labelled
// with the action the default policy should take. Labelling rules and the
// scores are in docs/classification.md.
//
// The split column was decided once, by a seeded shuffle, before any rule
// was tuned: "dev" rows may be looked at while changing rules, "test" rows
// may not. This test therefore prints the individual misses of dev rows
// only; for the test part it prints the aggregate figures (all collection
// rounds together and each on its own, with and without the statistical
// fallback), and fails when they fall below the floors last measured.

type replyRow struct {
	id, split, source, family, action, reply string
}

func readReplies(t testing.TB) []replyRow {
	t.Helper()
	f, err := os.Open("testdata/replies.tsv")
	if err != nil {
		t.Fatalf("open replies corpus: %v", err)
	}
	defer f.Close()
	var rows []replyRow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	ids := map[string]bool{}
	for line := 0; sc.Scan(); line++ {
		if line == 0 {
			if sc.Text() != "id\tsplit\tsource\tfamily\texpected_action\treply" {
				t.Fatalf("replies.tsv: unexpected header %q", sc.Text())
			}
			continue
		}
		p := strings.Split(sc.Text(), "\t")
		if len(p) != 6 {
			t.Fatalf("replies.tsv:%d: %d columns, want 6", line+1, len(p))
		}
		r := replyRow{p[0], p[1], p[2], p[3], p[4], p[5]}
		switch {
		case ids[r.id]:
			t.Fatalf("replies.tsv:%d: duplicate id %s", line+1, r.id)
		case r.split != "dev" && r.split != "test":
			t.Fatalf("replies.tsv:%d: split %q", line+1, r.split)
		case r.action != "suppress" && r.action != "soft" && r.action != "alert" && r.action != "none":
			t.Fatalf("replies.tsv:%d: action %q", line+1, r.action)
		case r.source == "" || r.reply == "":
			t.Fatalf("replies.tsv:%d: empty source or reply", line+1)
		}
		ids[r.id] = true
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read replies corpus: %v", err)
	}
	return rows
}

// replyScore is the figures issue #9 asks for, for one part of the corpus: a
// Scorecard with the corpus's families.
type replyScore struct {
	Scorecard
	famRows, famRight map[string]int
}

func (s *replyScore) add(r replyRow, got string, transient bool) {
	if s.famRows == nil {
		s.famRows, s.famRight = map[string]int{}, map[string]int{}
	}
	s.famRows[r.family]++
	if s.Scorecard.add(r.action, got, transient) {
		s.famRight[r.family]++
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return 100
	}
	return 100 * float64(a) / float64(b)
}

func (s *replyScore) report(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d rows\n", name, s.Rows)
	fmt.Fprintf(&b, "  action accuracy      %4d/%-4d = %6.2f%%\n", s.Right, s.Rows, pct(s.Right, s.Rows))
	fmt.Fprintf(&b, "  false suppressions   %4d\n", s.FalseSuppressions)
	fmt.Fprintf(&b, "  missed hard bounces  %4d/%-4d (recall %6.2f%%)\n", s.MissedHardBounces, s.HardBounces, pct(s.HardBounces-s.MissedHardBounces, s.HardBounces))
	fmt.Fprintf(&b, "  4xx suppressed       %4d\n", s.TransientSuppressed)
	fmt.Fprintf(&b, "  sender-side recall   %4d/%-4d = %6.2f%%\n", s.SenderCaught, s.SenderSide, pct(s.SenderCaught, s.SenderSide))
	fams := make([]string, 0, len(s.famRows))
	for f := range s.famRows {
		fams = append(fams, f)
	}
	sort.Strings(fams)
	for _, f := range fams {
		fmt.Fprintf(&b, "  %-20s %4d/%-4d = %6.2f%%\n", f, s.famRight[f], s.famRows[f], pct(s.famRight[f], s.famRows[f]))
	}
	fmt.Fprintf(&b, "  confusion (expected → got):")
	for _, e := range []string{"suppress", "soft", "alert", "none"} {
		fmt.Fprintf(&b, "\n    %-8s", e)
		for _, g := range []string{"suppress", "soft", "alert", "none"} {
			fmt.Fprintf(&b, " %s=%d", g, s.Confusion[[2]string{e, g}])
		}
	}
	return b.String()
}

// roundEnds are the last row numbers of the collection rounds: R0001-R1552
// (first), R1553-R1923 (second), R1924-R1985 (third, go-sisimai's MTA
// modules), R1986- (fourth: MTA message tables and postmaster pages in
// Czech, Polish, Korean and English).
// Each later round came from sources the earlier ones did not use and was
// split with the same seeded procedure on its own.
var roundEnds = [...]int{1552, 1923, 1985, 2140, 2672, 3111, 3241, 3604, 3963, 4184, 4253, 4583, 4623, 4925, 5121, 5391, 5763, 5891, 6158, 6295, 6421, 6597, 6671, 6781, 6856, 6950, 7109, 7233, 7359, 7490, 7572, 7634, 7695, 7790, 8001, 8125, 8268, 8420, 8476}

func collectionRound(t *testing.T, id string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(id, "R%d", &n); err != nil {
		t.Fatalf("replies.tsv: id %q: %v", id, err)
	}
	for i, end := range roundEnds {
		if n <= end {
			return i + 1
		}
	}
	return len(roundEnds) + 1
}

// corpusScores are the scores of one classifier on the corpus: dev, the test
// part as a whole and each collection round's test rows.
type corpusScores struct {
	dev, test replyScore
	round     [len(roundEnds) + 1]replyScore // test rows of each collection round
	newestDev replyScore                     // dev rows of the newest round, the ones its rule changes were made for
}

// roundOrdinals name the first twenty rounds in the logs; ordinal names the rest.
var roundOrdinals = [...]string{"first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
	"eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth"}

// ordinal is round i's (from 0) ordinal word: "first" … "twenty-first" … "ninety-ninth".
func ordinal(i int) string {
	if i < len(roundOrdinals) {
		return roundOrdinals[i]
	}
	n := i + 1
	tens := [...]string{2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}
	if n%10 == 0 {
		return strings.TrimSuffix(tens[n/10], "y") + "ieth"
	}
	return tens[n/10] + "-" + roundOrdinals[n%10-1]
}

// roundName is round i's (from 0) ordinal and row range, as the logs print it:
// "second round (R1553-R1923)", the newest open-ended ("twenty-first round (R6296-)").
func roundName(i int) string {
	first := 1
	if i > 0 {
		first = roundEnds[i-1] + 1
	}
	if i < len(roundEnds) {
		return fmt.Sprintf("%s round (R%04d-R%04d)", ordinal(i), first, roundEnds[i])
	}
	return fmt.Sprintf("%s round (R%04d-)", ordinal(i), first)
}

func TestOrdinal(t *testing.T) {
	for i, want := range map[int]string{0: "first", 19: "twentieth", 20: "twenty-first", 29: "thirtieth", 41: "forty-second"} {
		if got := ordinal(i); got != want {
			t.Errorf("ordinal(%d) = %q, want %q", i, got, want)
		}
	}
}

func TestCorpusReplies(t *testing.T) {
	t.Parallel()
	c := setup(t)
	// The same rules without the statistical fallback (model.go), so the
	// log shows what the fallback adds on each part.
	bare, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	bare.model = nil
	rows := readReplies(t)
	if len(rows) < 5880 {
		t.Fatalf("replies corpus has %d rows, want at least 5880", len(rows))
	}
	var with, without corpusScores
	for _, r := range rows {
		cl := c.Classify(r.reply, LabelledHints(r.reply))
		got := Verdict(cl)
		gotBare := Verdict(bare.Classify(r.reply, LabelledHints(r.reply)))
		transient := isTransientReply(r.reply)
		n := collectionRound(t, r.id) - 1
		if r.split == "dev" {
			with.dev.add(r, got, transient)
			without.dev.add(r, gotBare, transient)
			if n == len(roundEnds) {
				with.newestDev.add(r, got, transient)
				without.newestDev.add(r, gotBare, transient)
			}
			if got != r.action && testing.Verbose() {
				t.Logf("dev miss %s [%s] want %s got %s (%s/%s): %s", r.id, r.family, r.action, got, cl.Class, cl.Rule, trunc(r.reply))
			}
			continue
		}
		// Each collection round is also reported apart: a later round's
		// rows were gathered from other sources after the earlier rounds'
		// rules existed, so they show how the rules carry over.
		with.test.add(r, got, transient)
		with.round[n].add(r, got, transient)
		without.test.add(r, gotBare, transient)
		without.round[n].add(r, gotBare, transient)
	}
	var b strings.Builder
	for _, v := range []struct {
		name string
		s    *corpusScores
	}{{"with the fallback", &with}, {"without the fallback", &without}} {
		fmt.Fprintf(&b, "=== %s\n%s\n%s\n", v.name, v.s.dev.report("dev"), v.s.test.report("test (all rounds)"))
		for i := range v.s.round {
			b.WriteString(v.s.round[i].report("test, " + roundName(i)))
			b.WriteString("\n")
		}
		b.WriteString(v.s.newestDev.report("dev, " + roundName(len(roundEnds))))
		b.WriteString("\n")
	}
	t.Logf("\n%s", b.String())

	// Issue #9's target on replies never looked at while tuning is ≥ 95 % right action
	// and no false suppression; the rules do not reach it yet (docs/classification.md
	// has the figures). The test holds the floors last measured, for the test part as a
	// whole and for each collection round's test rows, so a change that loses ground
	// fails, and says where the target stands. Floors are at or below what was
	// measured, never above.
	const (
		devFloor       = 94.6 // % right action on the dev part, measured 95.74 (4,850/5,066, forty rounds, session 17, the fallback reading replies without a code; 10 of the round's 12 dev rows right before its change, all 12 after); 94.95 (4,799/5,054, after eight dev misses read in general form, session 15); 94.80 (4,791/5,054, thirty-nine rounds less the 29 dev rows without a named repository, session 15); 94.73 (4,815/5,083, thirty-nine rounds, session 15; 30 of the round's 34 dev rows right before its change, all 34 after); 94.69 (4,781/5,049, thirty-eight rounds, session 15, after R8316's relabel; 77 of the round's 91 dev rows right before its change, 3 false suppressions, one of them R8316 under its collector's label); 94.76 (4,698/4,958, thirty-seven rounds, host names skipped, session 15); 94.74 (4,697/4,958, thirty-seven rounds, session 14; 4,680 = 94.39 and 1 false suppression, the round's fresh row, with the thirty-seventh round's dev rows before its change); 94.70 (4,614/4,872, thirty-six rounds, session 14, after R8115's relabel; 4,593 = 94.27 with the thirty-sixth round's dev rows before its change); 94.71 (4,544/4,798, thirty-five rounds, session 14, after R7854's relabel; 4,512 = 94.04 with the thirty-fifth round's dev rows before its change); 94.86 (4,431/4,671, thirty-four rounds, session 14; 4,402 = 94.24 and 2 false suppressions (the round's fresh rows) with the thirty-fourth round's dev rows before its change); 94.54 (4,362/4,614, thirty-three rounds, words inside addresses skipped and the sender convention read, session 14); 94.56 (4,363/4,614, thirty-three rounds; 4,358 = 94.45 with the thirty-third round's dev rows before its change, 4,361 with its rules on the thirty-second round's model); 94.60 (4,330/4,577, thirty-two rounds; 4,322 = 94.43 with the thirty-second round's dev rows before its change, 4,331 with its rules on the thirty-first round's model); 94.74 (4,301/4,540, thirty-one rounds; 4,295 = 94.60 with the thirty-first round's dev rows before its change, 4,300 with its rules on the thirtieth round's model); 94.72 (4,254/4,491, thirty rounds, after R7379/R7469's relabel; 4,243 = 94.48 with the thirtieth round's dev rows before its change, 4,255 with its rules on the twenty-ninth round's model); 94.99 (4,191/4,412, twenty-nine rounds; 4,183 = 94.81 with the twenty-ninth round's dev rows before its change, 4,125/4,336 = 95.13 over twenty-eight after session 13's list and X.6.7 wordings); 94.81 (4,111/4,336, twenty-eight rounds, after R7154/R7155's relabel; 4,105 = 94.67 with the twenty-eighth round's dev rows before its change); 95.17 (4,056/4,262, twenty-seven rounds; 4,042 = 94.84 with the twenty-seventh round's dev rows before its change); 95.22 (3,968/4,167, twenty-six rounds; 3,963 = 95.10 with the twenty-sixth round's dev rows before its change, 3,969 with its rules and the twenty-fifth round's model); 95.33 (3,919/4,111, twenty-five rounds; 3,912 = 95.16 with the twenty-fifth round's dev rows before its change); 95.38 (3,878/4,066, twenty-four rounds; 3,871 = 95.20 with the twenty-fourth round's dev rows before its change); 95.42 (3,817/4,000, twenty-three rounds); 95.55 (3,780/3,956, twenty-two rounds, with the fallback, after R6529's relabel; 3,779 before it, 3,778 before the challenge wordings, 3,776 before recipient.list_unknown; 95.77 (3,687/3,850) over twenty-one; 95.71 before the mailbox-size translations; 95.84 % over twenty rounds, 96.18 % over eighteen)
		targetAccuracy = 95.0
	)
	floors := []struct {
		name     string
		s        *replyScore
		floor    float64 // % right action
		maxFalse int     // false suppressions
	}{
		{"test (all rounds)", &with.test, 86.4, 27},              // measured 86.45 % (2,915/3,372), 27, forty rounds (the round's fresh rows 3/4, the same after its change; the older rounds 2,913 → 2,912 with its rules and the model retrained); 86.49 % (2,913/3,368), 27, once a reply that lost the basic code of its first line was read from its enhanced code (session 17, one seventh-round row); 86.52 % (2,914/3,368), 27, once the fallback read replies without a code on evidence of their words (session 17: sender-side recall 86.68 → 90.33 %, 21 more rows labelled none alerted; 2,915 before the evidence rail); 85.48 % (2,879/3,368), 27, once negations without apostrophe were spelled out (a missed hard bounce caught); 85.45 % (2,878/3,368), 27, once spacing and spelling stopped deciding (session 16: one test row moved into a false suppression and one into a right one, the model retrained on the spelled text took one right alert); 85.48 % (2,879/3,368), 26, after the 52 rows without a named repository left the thirty-fourth round (23 test rows, 20 of them right; the model retrained without the 29 dev rows took one more); 85.52 % (2,900/3,391), 26, thirty-nine rounds (the round's fresh rows 16/22, 0, the same after its change; the older rounds 2,882 → 2,884 with its rules and the model retrained); 85.54 % (2,882/3,369), 26, thirty-eight rounds (the round's fresh rows 52/61 with 2 false suppressions, 53/61 and 1 with its rules; the older rounds 2,826 → 2,829); 85.43 % (2,826/3,308), 25, thirty-seven rounds with host names skipped (session 15); 85.43 % (2,826/3,308), 25, thirty-seven rounds (2,828 at the round's fresh score; 2,826 with its rules and the model retrained, the older rounds 2,785 → 2,783); 85.67 % (2,785/3,251), 25, thirty-six rounds (2,783 at the round's fresh score, the three new false suppressions its fresh rows; 2,785 with its rules and the model retrained); 86.13 % (2,757/3,201), 22, thirty-five rounds (2,751 at the round's fresh score, the two new false suppressions its fresh rows; 2,757 with its rules and the model retrained); 86.24 % (2,688/3,117), 20, thirty-four rounds (2,685 at the round's fresh score, 2,688 with its rules and the model retrained); 86.16 % (2,653/3,079), 20, thirty-three rounds (2,652 at the round's fresh score and with its rules, 2,653 with the model retrained); 86.22 % (2,634/3,055), 20, thirty-two rounds (the same at the round's fresh score, with its rules and with the model retrained; the new false suppression is the round's fresh row); 86.60 % (2,624/3,030), 19, thirty-one rounds (2,625 at the round's fresh score and with its rules, 2,624 with the model retrained); 86.69 % (2,598/2,997), 19, thirty rounds (2,596 at the round's fresh score, 2,599 with its rules on the twenty-ninth round's model, 2,598 with the model retrained); 86.69 % (2,553/2,945), 19, twenty-nine rounds (2,550 at the round's fresh score and with its rules; 2,553 with the model retrained; the new false suppression is the round's fresh row); 86.87 % (2,515/2,895), 18, twenty-eight rounds (2,511 and 20 at the round's fresh score; 2,514 and 18 with its rules on the old model, 2,517 with the model retrained before the relabel: "conta" no longer opens "contains"); 86.92 % (2,473/2,845), 20, twenty-seven rounds (2,472 at the round's fresh score; its one false suppression came with the round); 87.16 % (2,424/2,781), 19, twenty-six rounds (2,425 at the round's fresh score and with its rules on the twenty-fifth round's model: the retrained model took one twentieth-round row); 87.50 % (2,400/2,743), 19, twenty-five rounds (2,399 at the round's fresh score; its one false suppression, a local uid-map lookup failure, came with the round); 87.50 % (2,374/2,713), 18, twenty-four rounds (2,372 at the round's fresh score, 2,373 before the model was retrained); 87.49 % (2,335/2,669), 18, twenty-three rounds (the same at the round's fresh score, with the twenty-second round's model); 87.57 % (2,311/2,639), 18, twenty-two rounds (2,310 before recipient.list_unknown, 2,309 at the round's fresh score); twenty-one rounds 87.86 % (2,257/2,569), 18 (3 are the nineteenth round's); twenty rounds 88.09 % (2,219/2,519); nineteen rounds 88.15 % (2,172/2,464), 18 (2,171 and 19 until the message rail); eighteen rounds 88.50 %, 16 since the our-side rail (88.38 %, 19 before it)
		{"test, first round", &with.round[0], 93.2, 2},           // measured 93.24 % (579/621), 2 (93.08 % until session 9's rules)
		{"test, second round", &with.round[1], 91.2, 0},          // measured 91.22 %, 0
		{"test, third round", &with.round[2], 68.0, 1},           // measured 68.00 % (17/25), 1, once the fallback read replies without a code (a row labelled none alerted); 72.00 %, 1 before
		{"test, fourth round", &with.round[3], 85.4, 0},          // measured 85.48 % (53/62), 0
		{"test, fifth round", &with.round[4], 91.5, 0},           // measured 91.55 % (195/213), 0 (194, 1 until the our-side rail)
		{"test, sixth round", &with.round[5], 92.0, 1},           // measured 92.05 % (162/176), 1 (91.48 %, 2 until the our-side unless words of session 8)
		{"test, seventh round", &with.round[6], 78.8, 1},         // measured 78.85 % (41/52), 1, once a reply that lost its first basic code was read from its enhanced code; 80.77 % (42/52), 1
		{"test, eighth round", &with.round[7], 93.1, 1},          // measured 93.10 % (135/145), 1 (134, 2 until the message rail; 133, 3 until the our-side rail); 86.90 % (126/145) before its change
		{"test, ninth round", &with.round[8], 83.3, 0},           // measured 83.33 % (120/144), 0 (119, 1 until the our-side rail); 80.56 % (116/144) before its change
		{"test, tenth round", &with.round[9], 75.0, 0},           // measured 75.00 % (66/88), 0; 67.05 % (59/88), 1 before its change
		{"test, eleventh round", &with.round[10], 89.2, 0},       // measured 89.29 % (25/28), 0; 85.71 % (24/28) until session 9's rules
		{"test, twelfth round", &with.round[11], 82.5, 3},        // measured 82.58 % (109/132), 3; 78.79 % (104/132), 4 before its change
		{"test, thirteenth round", &with.round[12], 81.2, 0},     // measured 81.25 % (13/16), 0 with the thirty-first round's model; 87.50 % (14/16), 0 with the earlier ones, as before its change
		{"test, fourteenth round", &with.round[13], 87.6, 0},     // measured 87.60 % (106/121), 0, as before its change
		{"test, fifteenth round", &with.round[14], 93.5, 0},      // measured 93.59 % (73/78), 0, as before its change
		{"test, sixteenth round", &with.round[15], 82.4, 5},      // measured 82.41 % (89/108), 5; 81.48 % (88/108), 5 before its change
		{"test, seventeenth round", &with.round[16], 82.5, 1},    // measured 82.55 % (123/149), 1; 81.21 % (121/149), 1 before its change
		{"test, eighteenth round", &with.round[17], 80.3, 0},     // measured 80.39 % (41/51), 0 once host names stopped deciding (session 15); 82.35 % (42/51), 0 with the twenty-second round's model; 84.31 % (43/51) with the twenty-first's (82.35 % with the nineteenth and twentieth rounds' models); 82.35 %, 0 before its change
		{"test, nineteenth round", &with.round[18], 80.3, 3},     // measured 80.37 % (86/107), 3; 81.31 % (87/107), 3 before its change
		{"test, twentieth round", &with.round[19], 83.6, 0},      // measured 85.45 % (47/55), 0 with the twenty-seventh round's model, 83.64 % (46/55) with the twenty-sixth's; 85.45 % (47/55), 0 with the earlier ones, as before its change
		{"test, twenty-first round", &with.round[20], 74.0, 0},   // measured 74.00 % (37/50), 0, as before its change
		{"test, twenty-second round", &with.round[21], 74.2, 0},  // measured 74.29 % (52/70), 0, as before its change
		{"test, twenty-third round", &with.round[22], 79.9, 0},   // measured 80.00 % (24/30), 0, as before its change
		{"test, twenty-fourth round", &with.round[23], 84.0, 0},  // measured 84.09 % (37/44), 0, as before its change
		{"test, twenty-fifth round", &with.round[24], 83.3, 1},   // measured 83.33 % (25/30), 1, once the fallback read replies without a code; 86.67 % (26/30), 1; 83.33 % (25/30), 1 before its change
		{"test, twenty-sixth round", &with.round[25], 65.7, 0},   // measured 65.79 % (25/38), 0, as before its change
		{"test, twenty-seventh round", &with.round[26], 75.0, 1}, // measured 75.00 % (48/64), 1, as before its change
		{"test, twenty-eighth round", &with.round[27], 74.0, 0},  // measured 74.00 % (37/50), 0 with the thirtieth round's model; 76.00 % (38/50), 0 with the earlier ones, as before its change
		{"test, twenty-ninth round", &with.round[28], 70.0, 1},   // measured 70.00 % (35/50), 1, as before its change
		{"test, thirtieth round", &with.round[29], 82.6, 0},      // measured 82.69 % (43/52), 0, as before its change
		{"test, thirty-first round", &with.round[30], 81.8, 0},   // measured 81.82 % (27/33), 0, as before its change
		{"test, thirty-second round", &with.round[31], 36.0, 1},  // measured 36.00 % (9/25), 1, since the matcher skips words inside addresses (session 14); 40.00 % (10/25), 1, as before its change
		{"test, thirty-third round", &with.round[32], 75.0, 0},   // measured 75.00 % (18/24), 0, as before its change
		{"test, thirty-fourth round", &with.round[33], 80.0, 0},  // measured 80.00 % (12/15), 0, once its 52 rows without a named repository were removed (session 15); 84.21 % (32/38), 0, as before its change
		{"test, thirty-fifth round", &with.round[34], 77.3, 2},   // measured 77.38 % (65/84), 2; 75.00 % (63/84), 2 before its change
		{"test, thirty-sixth round", &with.round[35], 54.0, 3},   // measured 54.00 % (27/50), 3; 52.00 % (26/50), 3 before its change
		{"test, thirty-seventh round", &with.round[36], 75.4, 0}, // measured 75.44 % (43/57), 0, as before its change
		{"test, thirty-eighth round", &with.round[37], 86.8, 1},  // measured 86.89 % (53/61), 1; 85.25 % (52/61), 2 before its change
		{"test, thirty-ninth round", &with.round[38], 72.7, 0},   // measured 72.73 % (16/22), 0, as before its change
		{"test, fortieth round", &with.round[39], 75.0, 0},       // measured 75.00 % (3/4), 0, as before its change
	}
	test := &with.test
	a := pct(test.Right, test.Rows)
	if a < targetAccuracy || test.FalseSuppressions > 0 {
		t.Logf("issue #9 target not met on the test part: %.2f%% right (target %.0f%%), %d false suppressions (target 0)", a, targetAccuracy, test.FalseSuppressions)
	}
	for _, f := range floors {
		if b := pct(f.s.Right, f.s.Rows); b < f.floor || f.s.FalseSuppressions > f.maxFalse {
			t.Errorf("%s: %.2f%% right (floor %.1f%%), %d false suppressions (at most %d)",
				f.name, b, f.floor, f.s.FalseSuppressions, f.maxFalse)
		}
	}
	if d := pct(with.dev.Right, with.dev.Rows); d < devFloor || with.dev.FalseSuppressions > 0 {
		t.Errorf("dev: %.2f%% right (floor %.1f%%), %d false suppressions (want 0)", d, devFloor, with.dev.FalseSuppressions)
	}
	if n := with.dev.TransientSuppressed + with.test.TransientSuppressed + without.dev.TransientSuppressed + without.test.TransientSuppressed; n > 0 {
		t.Errorf("%d classifications of replies with a 4xx code were suppressions, want 0", n)
	}
}

// TestCorpusSecondAnnotators measures the classifier against labels that do not come
// from the corpus's own labelling: testdata/replies-annotators.tsv holds, for every
// test row of the first thirty-three rounds, the label a second annotator gave blind (the reply
// text and the labelling rules only), and where it differs from the corpus label a
// third blind annotator's. The majority of the three is the adjudicated label (rows
// where all three differ are left out). Floors at the figures measured when the file
// was written (docs/classification.md, "How far the labels themselves agree").
func TestCorpusSecondAnnotators(t *testing.T) {
	t.Parallel()
	c := setup(t)
	f, err := os.Open("testdata/replies-annotators.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type marks struct{ second, third string }
	ann := map[string]marks{}
	sc := bufio.NewScanner(f)
	for line := 0; sc.Scan(); line++ {
		p := strings.Split(sc.Text(), "\t")
		if line == 0 || len(p) != 3 {
			if line != 0 {
				t.Fatalf("replies-annotators.tsv:%d: %d columns, want 3", line+1, len(p))
			}
			continue
		}
		ann[p[0]] = marks{p[1], p[2]}
	}
	const annotatedRounds = 39 // the rounds the file covers (the fortieth round's four test rows have no second label)
	var rows, agree, adjudicated, right, rightAgreed, falseSupp int
	for _, r := range readReplies(t) {
		if r.split != "test" || collectionRound(t, r.id) > annotatedRounds {
			continue
		}
		m, ok := ann[r.id]
		if !ok {
			t.Fatalf("%s: a test row without a second annotator's label", r.id)
		}
		delete(ann, r.id)
		rows++
		got := Verdict(c.Classify(r.reply, LabelledHints(r.reply)))
		label := r.action
		if m.second == r.action {
			agree++
			if got == label {
				rightAgreed++
			}
		} else {
			switch m.third {
			case r.action:
			case m.second:
				label = m.second
			default:
				continue // all three differ
			}
		}
		adjudicated++
		if got == label {
			right++
		}
		if got == "suppress" && label != "suppress" {
			falseSupp++
		}
	}
	if len(ann) > 0 {
		t.Fatalf("%d annotated ids are not test rows of the first thirty-nine rounds", len(ann))
	}
	t.Logf("second annotator agrees with the corpus on %d/%d = %.2f%%; classifier on those rows %d/%d = %.2f%%; "+
		"against the adjudicated labels %d/%d = %.2f%%, %d false suppressions",
		agree, rows, pct(agree, rows), rightAgreed, agree, pct(rightAgreed, agree), right, adjudicated, pct(right, adjudicated), falseSupp)
	// Floors at the figures measured (2,891/3,358 = 86.09 %, 24 false suppressions, with the
	// fortieth round's rules and the model retrained on its dev rows; 2,892/3,358 = 86.12 %, 24, once a
	// reply that lost its first basic code was read from its enhanced code, session 17;
	// 2,893/3,358 = 86.15 %, 24, once the fallback read replies without a code; 2,863/3,358 = 85.26 %, 24, with the
	// negations without apostrophe; 2,862/3,358 = 85.23 %, 24 false suppressions, once spacing
	// and spelling stopped deciding, session 16; 2,863/3,358 = 85.26 %, 23 false suppressions, thirty-nine
	// rounds less the 23 test rows without a named repository; 2,883/3,381 = 85.27 %, 23 false suppressions, thirty-nine
	// rounds, the second annotator agreeing on all 22 of the round's test rows; 2,865/3,359 = 85.29 %, 23 false suppressions, thirty-eight
	// rounds, the new one the round's fresh row; 2,808/3,298 = 85.14 %, 22 false suppressions, thirty-seven
	// rounds, the same with host names skipped; 2,765/3,241 = 85.31 %, 22 false suppressions, thirty-six
	// rounds, the three new ones the round's fresh rows; 2,736/3,191 = 85.74 %, 19 false suppressions, thirty-five
	// rounds, the two new ones the round's fresh rows; 2,666/3,107 = 85.81 %, 17 false suppressions, thirty-four
	// rounds; 2,632/3,070 = 85.73 %, 17 false suppressions, thirty-three
	// rounds, 2,631 before the round's change; 2,612/3,047 = 85.72 %, 17 over thirty-two
	// rounds, 2,613 before the round's change, the new false suppression the round's fresh row;
	// 2,603/3,022 = 86.14 %, 16 over thirty-one rounds, the same before the round's change; 2,577/2,989 = 86.22 %, 16 over thirty
	// rounds, 2,575 before the round's change; 2,531/2,937 = 86.18 %, 16 over twenty-nine
	// rounds, 2,528 before the round's change; 2,491/2,887 = 86.28 %, 16 over twenty-eight
	// rounds; 2,448/2,837 = 86.29 %, 18 over twenty-seven, the new false suppression the round's fresh row; 2,398/2,773 = 86.48 %, 17 over twenty-six, 2,399 before the round's change (the retrained model's one row); 2,374/2,735 = 86.80 %, 17 over twenty-five, 2,373 before the round's change, the new false suppression its fresh row; 2,347/2,705 = 86.77 %, 16 over twenty-four, 2,345 before that round's change; 2,308/2,661 = 86.73 %, 16 over twenty-three; 2,284/2,631 = 86.81 % over twenty-two, 2,283 before recipient.list_unknown; 2,228/2,561 = 87.00 %, 16 over twenty-one; 2,190/2,511 = 87.22 %, 16 over twenty; 2,143/2,456 = 87.26 %, 16 over nineteen,
	// with the message rail; 2,142 and 17 before it; eighteen rounds 2,058/2,350 =
	// 87.57 % and 14 since the our-side rail, 2,055 and 17 before it).
	if a := pct(right, adjudicated); a < 86.0 || falseSupp > 24 {
		t.Errorf("against the adjudicated labels: %.2f%% right (floor 86.0%%), %d false suppressions (at most 24)", a, falseSupp)
	}
}
