package catalog

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
)

// The sisimai corpus (testdata/sisimai.tsv, BSD-2-Clause, see
// testdata/LICENSE-sisimai) is 626 real bounces with sisimai's verdicts.
// Labels are sisimai's decisions, not ground truth; the bar below is the one
// corpus/README.md sets for Rebound. Verdicts that differ on purpose:
//   - Yahoo [TSS04] is throttling of our traffic (rate_limited → alert);
//     sisimai says rejected/badreputation.
//   - Gmail "out of storage space and inactive" (OverQuotaPerm) is an
//     abandoned account we suppress; sisimai says mailboxfull.
//   - Exim/Postfix replies given to MAIL FROM are about our sender address
//     even when they say "user unknown" or "no such domain".
//   - Gmail's DNS-error bounces carry DSN status 4.0.0: an NXDOMAIN or empty
//     answer there is a soft bounce (rule gmail.dns_answer), in agreement
//     with sisimai's networkerror, while a null MX in the same wording is
//     suppressed (sisimai: notaccept).
//   - A transcript whose first failing reply is 4xx ("450 busy … 551 not our
//     customer") is classified on that first reply, as transient.

var (
	corpusSkip  = set("feedback", "delivered", "vacation")
	corpusHard  = set("userunknown", "hostunknown", "hasmoved")
	corpusAlert = set("authfailure", "securityerror", "requireptr", "norelaying", "blocked", "badreputation")
	corpusNever = set("exceedlimit", "mesgtoobig", "expired", "networkerror", "systemerror", "systemfull",
		"mailererror", "authfailure", "securityerror", "requireptr", "norelaying", "blocked", "badreputation",
		"rejected", "spamdetected", "virusdetected", "policyviolation", "failedstarttls", "speeding",
		"toomanyconn", "syntaxerror", "notcompliantrfc", "contenterror")
)

func set(xs ...string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

type corpusRow struct {
	file, text, status, reason string
}

func readCorpus(t testing.TB) []corpusRow {
	t.Helper()
	f, err := os.Open("testdata/sisimai.tsv")
	if err != nil {
		t.Fatalf("open corpus: %v", err)
	}
	defer f.Close()
	var rows []corpusRow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 0; sc.Scan(); line++ {
		if line == 0 {
			continue // header
		}
		p := strings.Split(sc.Text(), "\t")
		if len(p) != 4 {
			t.Fatalf("sisimai.tsv:%d: %d columns, want 4", line+1, len(p))
		}
		rows = append(rows, corpusRow{p[0], p[1], p[2], p[3]})
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read corpus: %v", err)
	}
	return rows
}

// corpusHints passes the DSN Status as the ESP-given enhanced code, as SES
// or SendGrid would. sisimai's pseudo-codes X.0.9nn are its own invention
// (no status was present), so they are not passed.
func corpusHints(status string) Hints {
	if p := strings.Split(status, "."); len(p) == 3 && p[1] == "0" && len(p[2]) == 3 && p[2][0] == '9' {
		return Hints{}
	}
	return Hints{Enhanced: status}
}

func TestCorpusSisimai(t *testing.T) {
	t.Parallel()
	c := setup(t)
	rows := readCorpus(t)
	if len(rows) != 626 {
		t.Fatalf("corpus has %d rows, want 626", len(rows))
	}
	// The same rules without the statistical fallback (model.go): both must
	// meet the bar, and the log shows what the fallback changes.
	bare, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	bare.model = nil
	// Two scored passes: with the DSN status as an ESP hint (what SES or
	// SendGrid hand us), and on the text alone (an ESP that reports only the
	// diagnostic string, or a raw DSN). Both must meet the bar.
	for _, cat := range []struct {
		name string
		c    *Catalog
	}{{"", c}, {"no-fallback/", bare}} {
		for _, pass := range []struct {
			name  string
			hints func(corpusRow) Hints
		}{
			{"with-status-hint", func(r corpusRow) Hints { return corpusHints(r.status) }},
			{"text-only", func(corpusRow) Hints { return Hints{} }},
		} {
			t.Run(cat.name+pass.name, func(t *testing.T) {
				t.Parallel()
				scoreCorpus(t, cat.c, rows, pass.hints)
			})
		}
	}
}

// scoreCorpus classifies every scored row, logs the three figures and the
// confusion by reason, and fails when a figure misses the bar.
func scoreCorpus(t *testing.T, c *Catalog, rows []corpusRow, hints func(corpusRow) Hints) {
	t.Helper()
	confusion := map[string]map[string]int{}
	var never, falseSupp, hard, hardSupp, alert, alerted int
	for _, r := range rows {
		if corpusSkip[r.reason] {
			continue
		}
		cl := c.Classify(r.text, hints(r))
		act := Verdict(cl)
		if confusion[r.reason] == nil {
			confusion[r.reason] = map[string]int{}
		}
		confusion[r.reason][act]++
		if corpusNever[r.reason] {
			never++
			if act == "suppress" {
				falseSupp++
				t.Logf("false suppression %s (%s): %s → %s/%s", r.file, r.reason, trunc(r.text), cl.Class, cl.Rule)
			}
		}
		if corpusHard[r.reason] {
			hard++
			if act == "suppress" {
				hardSupp++
			} else if testing.Verbose() {
				t.Logf("hard bounce not suppressed %s (%s): %s → %s/%s", r.file, r.reason, trunc(r.text), cl.Class, cl.Rule)
			}
		}
		if corpusAlert[r.reason] {
			alert++
			if act == "alert" {
				alerted++
			} else if testing.Verbose() {
				t.Logf("sender-side not alerted %s (%s): %s → %s/%s", r.file, r.reason, trunc(r.text), cl.Class, cl.Rule)
			}
		}
	}

	fsRate := float64(falseSupp) / float64(never)
	hardRecall := float64(hardSupp) / float64(hard)
	alertRecall := float64(alerted) / float64(alert)
	t.Logf("false suppressions: %d/%d = %.2f%% (bar ≤ 1%%)", falseSupp, never, 100*fsRate)
	t.Logf("hard-bounce recall: %d/%d = %.2f%% (bar ≥ 90%%)", hardSupp, hard, 100*hardRecall)
	t.Logf("sender-side recall: %d/%d = %.2f%% (bar ≥ 85%%)", alerted, alert, 100*alertRecall)

	reasons := make([]string, 0, len(confusion))
	for r := range confusion {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s %8s %8s %8s %8s\n", "reason", "suppress", "soft", "alert", "none")
	for _, r := range reasons {
		m := confusion[r]
		fmt.Fprintf(&b, "%-16s %8d %8d %8d %8d\n", r, m["suppress"], m["soft"], m["alert"], m["none"])
	}
	t.Logf("confusion by reason:\n%s", b.String())

	if fsRate > 0.01 {
		t.Errorf("false suppression rate %.2f%% > 1%%", 100*fsRate)
	}
	if hardRecall < 0.90 {
		t.Errorf("hard-bounce recall %.2f%% < 90%%", 100*hardRecall)
	}
	if alertRecall < 0.85 {
		t.Errorf("sender-side recall %.2f%% < 85%%", 100*alertRecall)
	}
}

func trunc(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}
