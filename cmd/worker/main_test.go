package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// result is one invocation of run.
type result struct {
	code           int
	stdout, stderr string
}

// setup returns a runner with an empty environment but for the given variables, so no
// test reads the process environment.
func setup(t *testing.T, env map[string]string) func(stdin io.Reader, args ...string) result {
	t.Helper()
	getenv := func(k string) string { return env[k] }
	return func(stdin io.Reader, args ...string) result {
		t.Helper()
		if stdin == nil {
			stdin = strings.NewReader("")
		}
		var stdout, stderr bytes.Buffer
		code := run(args, stdin, &stdout, &stderr, getenv)
		return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	}
}

// classifyLines decodes the JSON lines `worker classify` printed, checking the keys
// that are its contract.
func classifyLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", sc.Text(), err)
		}
		for _, k := range []string{"class", "scope", "permanent", "action", "rule", "code"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %q lacks key %q", sc.Text(), k)
			}
		}
		lines = append(lines, m)
	}
	return lines
}

// The two replies every operator meets first: a sender-side 530 that must never
// suppress, and a recipient-side 5.1.1 that must.
const (
	reply530 = "530 5.7.0 Authentication required"
	reply550 = "550 5.1.1 user unknown"
)

type verdict struct {
	scope     string
	permanent *bool // nil = not checked
	action    string
}

var (
	permanent = true
	verdicts  = map[string]verdict{
		reply530: {scope: "sender", action: "alert"},
		reply550: {scope: "recipient", permanent: &permanent, action: "suppress"},
	}
)

func checkVerdicts(t *testing.T, lines []map[string]any, replies []string) {
	t.Helper()
	if len(lines) != len(replies) {
		t.Fatalf("got %d lines, want %d: %v", len(lines), len(replies), lines)
	}
	for i, reply := range replies {
		m, w := lines[i], verdicts[reply]
		if m["reply"] != reply {
			t.Errorf("line %d reply = %v, want %q (one line per reply, in order)", i, m["reply"], reply)
		}
		if m["scope"] != w.scope {
			t.Errorf("%q: scope = %v, want %s", reply, m["scope"], w.scope)
		}
		if m["action"] != w.action {
			t.Errorf("%q: action = %v, want %s", reply, m["action"], w.action)
		}
		if w.permanent != nil && m["permanent"] != *w.permanent {
			t.Errorf("%q: permanent = %v, want %v", reply, m["permanent"], *w.permanent)
		}
		if m["rule"] == "" {
			t.Errorf("%q: empty rule", reply)
		}
	}
}

func TestClassifyArgs(t *testing.T) {
	t.Parallel()
	r := setup(t, nil)(nil, "classify", reply530, reply550)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	checkVerdicts(t, classifyLines(t, r.stdout), []string{reply530, reply550})
}

// --sender gives the catalog our sender address, as an event would: the same reply
// about it is our side's, not the recipient's.
func TestClassifySender(t *testing.T) {
	t.Parallel()
	const reply = "553 <bounces@acme.example> Invalid email address."
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"classify", reply}, "suppress"},
		{[]string{"classify", "--sender", "bounces@acme.example", reply}, "alert"},
	} {
		r := setup(t, nil)(nil, tc.args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d, stderr %s", tc.args, r.code, r.stderr)
		}
		if lines := classifyLines(t, r.stdout); len(lines) != 1 || lines[0]["action"] != tc.want {
			t.Fatalf("%v: %v, want action %s", tc.args, lines, tc.want)
		}
	}
}

func TestClassifyStdin(t *testing.T) {
	t.Parallel()
	stdin := strings.NewReader("\n" + reply550 + "\n   \n\t\n" + reply530 + "\r\n\n")
	r := setup(t, nil)(stdin, "classify")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	// Blank and white-space lines are skipped; a CRLF ending is not part of the reply.
	checkVerdicts(t, classifyLines(t, r.stdout), []string{reply550, reply530})
}

func TestClassifyEmptyStdin(t *testing.T) {
	t.Parallel()
	r := setup(t, nil)(strings.NewReader("\n\n  \n"), "classify")
	if r.code != 0 || r.stdout != "" {
		t.Errorf("exit %d, stdout %q: want 0 and nothing printed for blank input", r.code, r.stdout)
	}
}

func TestClassifyBadCatalogRules(t *testing.T) {
	t.Parallel()
	r := setup(t, map[string]string{"REBOUND_CATALOG_RULES": "/nonexistent/rules.yaml"})(nil, "classify", reply530)
	if r.code != 1 || !strings.Contains(r.stderr, "REBOUND_CATALOG_RULES") {
		t.Errorf("exit %d, stderr %q: want 1 and an error naming REBOUND_CATALOG_RULES", r.code, r.stderr)
	}
}

func TestExplain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // substrings of stdout
		stderrIn string
	}{
		{"basic code", []string{"explain", "530"}, 0, []string{"530", "What it means", "How to fix", "scope: sender"}, ""},
		{"enhanced code", []string{"explain", "5.1.1"}, 0, []string{"5.1.1", "scope: recipient", "How to fix"}, ""},
		{"unknown code", []string{"explain", "999"}, 1, nil, "999"},
		{"no code", []string{"explain"}, 1, nil, "want exactly one code"},
		{"two codes", []string{"explain", "530", "550"}, 1, nil, "want exactly one code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := setup(t, nil)(nil, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", r.code, tt.code, r.stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			if tt.stderrIn != "" && !strings.Contains(r.stderr, tt.stderrIn) {
				t.Errorf("stderr %q lacks %q", r.stderr, tt.stderrIn)
			}
			if tt.code != 0 && r.stdout != "" {
				t.Errorf("failed explain printed to stdout: %q", r.stdout)
			}
		})
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		code     int
		stderrIn []string
		stdoutIn string
	}{
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderrIn: []string{`unknown command "frobnicate"`, "Usage:"}},
		{name: "help", args: []string{"help"}, code: 0, stdoutIn: "Usage:"},
		{name: "serve with a bad role", env: map[string]string{"REBOUND_ROLES": "bogus"}, args: []string{"serve"}, code: 1, stderrIn: []string{"REBOUND_ROLES", "bogus"}},
		{name: "default command is serve", env: map[string]string{"REBOUND_ROLES": "bogus"}, code: 1, stderrIn: []string{"worker serve", "REBOUND_ROLES"}},
		{name: "serve with an unknown flag", args: []string{"serve", "--no-such-flag"}, code: 1, stderrIn: []string{"no-such-flag"}},
		{name: "serve -h", args: []string{"serve", "-h"}, code: 0, stderrIn: []string{"REBOUND_ROLES"}},
		{name: "-h lists the sub-commands", args: []string{"-h"}, code: 0, stdoutIn: "worker alerts"},
		{name: "alerts without a command", args: []string{"alerts"}, code: 1, stderrIn: []string{"alerts list"}},
		{name: "alerts check a missing file", args: []string{"alerts", "check", "/nonexistent/alerts.yaml"}, code: 1, stderrIn: []string{"no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := setup(t, tt.env)(nil, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %s", r.code, tt.code, r.stderr)
			}
			for _, s := range tt.stderrIn {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			if !strings.Contains(r.stdout, tt.stdoutIn) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdoutIn, r.stdout)
			}
		})
	}
}

func TestAlertsCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if err := os.WriteFile(filepath.Join(dir, "pd.key"), []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := write("good.yaml", `receivers:
  - name: oncall
    pagerduty: {routing_key_file: pd.key}
  - name: chat
    slack: {url: "https://hooks.slack.com/services/T000/B000/XXXX"}
routes:
  - match: {severity: critical}
    receivers: [oncall, chat]
`)
	bad := write("bad.yaml", `receivers:
  - name: chat
    slack: {url: "https://hooks.slack.com/services/T000/B000/SECRETPART"}
routes:
  - match: {severity: critical}
    receivers: [pager]
`)
	run := setup(t, nil)
	if r := run(nil, "alerts", "check", good); r.code != 0 || !strings.Contains(r.stdout, "valid: 2 receiver(s), 1 route(s)") {
		t.Fatalf("check good = %d %q %q", r.code, r.stdout, r.stderr)
	}
	r := run(nil, "alerts", "check", bad)
	if r.code != 1 || !strings.Contains(r.stderr, "line 5") || !strings.Contains(r.stderr, `"pager" is not a receiver`) {
		t.Fatalf("check bad = %d %q, want the line and the unknown receiver named", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "SECRETPART") {
		t.Fatalf("the error shows a secret: %s", r.stderr)
	}
}

func TestScore(t *testing.T) {
	t.Parallel()
	run := setup(t, nil)
	r := run(strings.NewReader("# my replies\nsuppress\t550 5.1.1 user unknown\n\nalert\t530 5.7.0 Authentication required\r\nnone\t552 5.3.4 message too big\n"), "score", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "right verdict       3 = 100.00%") || !strings.Contains(r.stdout, "false suppressions  0") {
		t.Errorf("all right: exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
	}
	// A false suppression fails the command and is listed.
	r = run(strings.NewReader("none\t550 5.1.1 user unknown\nalert\t530 5.7.0 Authentication required\n"), "score", "-")
	if r.code != 1 || !strings.Contains(r.stderr, "1 false suppressions") || !strings.Contains(r.stdout, "1     none      suppress") {
		t.Errorf("false suppression: exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
	}
	// Bad input names the line and scores nothing.
	for _, in := range []string{"supress\t550 5.1.1 user unknown\n", "suppress 550 5.1.1 user unknown\n", "suppress\t  \n", "\n# nothing\n"} {
		r = run(strings.NewReader(in), "score", "-")
		if r.code != 1 || !strings.Contains(r.stderr, "stdin") || r.stdout != "" {
			t.Errorf("input %q: exit %d, stdout %q, stderr %q; want 1, nothing printed, an error naming stdin", in, r.code, r.stdout, r.stderr)
		}
	}
}

// TestScoreCorpus: the project's corpus format is read as well; its test rows' misses
// are counted, never listed, and --split picks a part.
func TestScoreCorpus(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "replies.tsv")
	corpus := corpusHeader + "\n" +
		"R1\tdev\tsrc\tother\tnone\t550 5.1.1 dev row the catalog suppresses\n" +
		"R2\ttest\tsrc\tother\tsuppress\t552 5.3.4 test row the catalog does not\n" +
		"R3\tdev\tsrc\tother\talert\t530 5.7.0 Authentication required\n"
	if err := os.WriteFile(path, []byte(corpus), 0o600); err != nil {
		t.Fatal(err)
	}
	run := setup(t, nil)
	r := run(nil, "score", path)
	if r.code != 1 || !strings.Contains(r.stdout, "replies             3") || !strings.Contains(r.stdout, "dev row the catalog suppresses") ||
		strings.Contains(r.stdout, "test row") || !strings.Contains(r.stdout, "1 misses in the corpus's test part") {
		t.Errorf("whole corpus: exit %d, stdout %s", r.code, r.stdout)
	}
	r = run(nil, "score", "--split", "test", path)
	if r.code != 0 || !strings.Contains(r.stdout, "replies             1") || strings.Contains(r.stdout, "test row") {
		t.Errorf("test part: exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
	}
	if r = run(nil, "score", "--split", "holdout", path); r.code != 1 || !strings.Contains(r.stderr, "--split") {
		t.Errorf("bad split: exit %d, stderr %s", r.code, r.stderr)
	}
}
