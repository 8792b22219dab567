package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/reboundhq/rebound/internal/catalog"
)

// corpusHeader is the first line of the project's own corpus
// (internal/catalog/testdata/replies.tsv), which score also reads.
const corpusHeader = "id\tsplit\tsource\tfamily\texpected_action\treply"

// scoreCmd measures the catalog (with REBOUND_CATALOG_RULES) on replies someone
// labelled: `worker score FILE|-`. The file holds one `VERDICT<TAB>REPLY` per line
// (VERDICT: suppress, soft, alert or none; blank lines and lines starting with # are
// skipped), or is the corpus's own TSV. It prints the corpus's figures and the
// misses, and fails when the catalog suppressed a reply labelled otherwise: the one
// error that cuts a recipient off, so a rules file that makes one should not ship.
// On the corpus, --split picks its dev or test part, and the misses of test rows are
// counted but never listed: rules are tuned on dev rows only (docs/classification.md).
func scoreCmd(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("worker score", flag.ContinueOnError)
	fs.SetOutput(stderr)
	maxMisses := fs.Int("misses", 50, "how many misses to list (0: none)")
	split := fs.String("split", "all", "the corpus's part to score: all, dev or test")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want one file of labelled replies (VERDICT<TAB>REPLY per line), or - for stdin")
	}
	in := stdin
	name := fs.Arg(0)
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	} else {
		name = "stdin"
	}
	if *split != "all" && *split != "dev" && *split != "test" {
		return fmt.Errorf("--split %q: want all, dev or test", *split)
	}
	rows, hidden, err := readLabelled(in, name, *split)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("%s: no labelled reply", name)
	}
	cat, err := loadCatalog(getenv)
	if err != nil {
		return err
	}
	s := cat.Score(rows)
	printScore(stdout, s, hidden, *maxMisses)
	if s.FalseSuppressions > 0 {
		return fmt.Errorf("%d false suppressions: replies labelled otherwise were decided suppress", s.FalseSuppressions)
	}
	return nil
}

// readLabelled reads VERDICT<TAB>REPLY lines, or the corpus's TSV when the first line
// is its header (then only the rows of split, and hidden names the lines of its test
// rows). A malformed line is an error naming it: a score over part of a file would
// mislead.
func readLabelled(r io.Reader, name, split string) (rows []catalog.LabelledReply, hidden map[int]bool, err error) {
	hidden = map[int]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	corpus := false
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if n == 1 && line == corpusHeader {
			corpus = true
			continue
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var want, reply string
		if corpus {
			p := strings.Split(line, "\t")
			if len(p) != 6 {
				return nil, nil, fmt.Errorf("%s:%d: %d columns, want the corpus's 6", name, n, len(p))
			}
			if split != "all" && p[1] != split {
				continue
			}
			hidden[n] = p[1] == "test"
			want, reply = p[4], p[5]
		} else {
			var ok bool
			if want, reply, ok = strings.Cut(line, "\t"); !ok {
				return nil, nil, fmt.Errorf("%s:%d: want VERDICT<TAB>REPLY", name, n)
			}
		}
		want = strings.TrimSpace(want)
		if !slices.Contains(catalog.Verdicts, want) {
			return nil, nil, fmt.Errorf("%s:%d: verdict %q, want one of %s", name, n, want, strings.Join(catalog.Verdicts, ", "))
		}
		if strings.TrimSpace(reply) == "" {
			return nil, nil, fmt.Errorf("%s:%d: empty reply", name, n)
		}
		rows = append(rows, catalog.LabelledReply{Line: n, Want: want, Reply: reply})
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	return rows, hidden, nil
}

// printScore prints the figures and up to maxMisses misses, leaving out the lines in
// hidden (the corpus's test rows).
func printScore(w io.Writer, s catalog.Scorecard, hidden map[int]bool, maxMisses int) {
	pct := func(a, b int) float64 {
		if b == 0 {
			return 0
		}
		return 100 * float64(a) / float64(b)
	}
	fmt.Fprintf(w, "replies             %d\n", s.Rows)
	fmt.Fprintf(w, "right verdict       %d = %.2f%%\n", s.Right, pct(s.Right, s.Rows))
	fmt.Fprintf(w, "false suppressions  %d\n", s.FalseSuppressions)
	fmt.Fprintf(w, "missed hard bounces %d of %d\n", s.MissedHardBounces, s.HardBounces)
	fmt.Fprintf(w, "sender-side caught  %d of %d\n", s.SenderCaught, s.SenderSide)
	fmt.Fprintf(w, "4xx suppressed      %d\n", s.TransientSuppressed)
	fmt.Fprintln(w, "\nlabelled (rows) against decided (columns):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\t"+strings.Join(catalog.Verdicts, "\t")+"\t")
	for _, want := range catalog.Verdicts {
		line := want
		for _, got := range catalog.Verdicts {
			line += fmt.Sprintf("\t%d", s.Confusion[[2]string{want, got}])
		}
		fmt.Fprintln(tw, line+"\t")
	}
	tw.Flush()
	var shown []catalog.Miss
	for _, m := range s.Misses {
		if !hidden[m.Line] {
			shown = append(shown, m)
		}
	}
	if n := len(s.Misses) - len(shown); n > 0 {
		fmt.Fprintf(w, "\n%d misses in the corpus's test part: counted, not listed\n", n)
	}
	if maxMisses <= 0 || len(shown) == 0 {
		return
	}
	fmt.Fprintf(w, "\nmisses (%d", len(shown))
	if len(shown) > maxMisses {
		fmt.Fprintf(w, ", first %d", maxMisses)
	}
	fmt.Fprintln(w, "):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tLABELLED\tDECIDED\tRULE\tREPLY")
	for _, m := range shown[:min(len(shown), maxMisses)] {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", m.Line, m.Want, m.Got, m.Rule, m.Reply)
	}
	tw.Flush()
}
