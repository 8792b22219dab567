package catalog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultLoads(t *testing.T) {
	t.Parallel()
	c := setup(t)
	if len(c.rules) < 50 || len(c.Entries()) < 150 {
		t.Errorf("catalog unexpectedly small: %d rules, %d entries", len(c.rules), len(c.Entries()))
	}
}

func TestLoadOverride(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/good-rules.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	cl := c.Classify("550 nobody by that name", Hints{})
	if cl.Rule != "site.custom_unknown" || cl.Class != ClassRecipientUnknown {
		t.Errorf("site rule not applied: %+v", cl)
	}
	if steps := c.FixSteps(cl); len(steps) != 1 || !strings.Contains(steps[0], "CRM") {
		t.Errorf("site rule fix steps = %q", steps)
	}
	// Operator rules come before embedded ones.
	if cl := c.Classify("421 4.7.0 [TSS04] Messages temporarily deferred", Hints{}); cl.Rule != "site.override_tss04" {
		t.Errorf("operator rule did not take precedence: %+v", cl)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, path string
		want       []string // substrings the error must contain
	}{
		{"bad class names file and line", "testdata/bad-rules.yaml", []string{"testdata/bad-rules.yaml:9", "site.bad_class", "unknown class", "recipient_gone"}},
		{"missing file", filepath.Join(dir, "nope.yaml"), []string{"nope.yaml"}},
		{"duplicate id", write("dup.yaml", "rules:\n  - id: a\n    class: unknown\n    match: [x]\n  - id: a\n    class: unknown\n    match: [y]\n"), []string{"dup.yaml:5", "duplicate rule id", "dup.yaml:2"}},
		{"duplicate of embedded id", write("dup2.yaml", "rules:\n  - id: yahoo.tss04\n    class: unknown\n    match: [x]\n"), []string{"duplicate rule id", "data/rules.yaml"}},
		{"empty pattern", write("empty.yaml", "rules:\n  - id: a\n    class: unknown\n    match: [\"\"]\n"), []string{"empty.yaml:4", "empty pattern"}},
		{"no patterns", write("nomatch.yaml", "rules:\n  - id: a\n    class: unknown\n"), []string{"nomatch.yaml:2", "match must list"}},
		{"unknown scope", write("scope.yaml", "rules:\n  - id: a\n    class: unknown\n    scope: everyone\n    match: [x]\n"), []string{"scope.yaml:4", "unknown scope"}},
		{"unknown field", write("field.yaml", "rules:\n  - id: a\n    class: unknown\n    patern: [x]\n"), []string{"field.yaml:4", "unknown field", "patern"}},
		{"bad code", write("code.yaml", "rules:\n  - id: a\n    class: unknown\n    codes: [\"5.x\"]\n    match: [x]\n"), []string{"code.yaml:4", "5.x"}},
		{"not yaml", write("junk.yaml", "rules: [\n"), []string{"junk.yaml"}},
		{"wrong top level", write("top.yaml", "rulez: []\n"), []string{"top.yaml:1", "rulez"}},
		{"bad confidence", write("conf.yaml", "rules:\n  - id: a\n    class: unknown\n    confidence: 2\n    match: [x]\n"), []string{"conf.yaml:4", "confidence"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(tc.path)
			if err == nil {
				t.Fatalf("Load(%s) succeeded", tc.path)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestCodesValidation feeds broken code/class data to the loaders, which
// only ever see embedded files in production.
func TestCodesValidation(t *testing.T) {
	t.Parallel()
	base := func(t *testing.T) *Catalog {
		c := &Catalog{entries: map[string]*entrySpec{}, classes: map[Class]*classInfo{}, byID: map[string]*rule{}}
		b, err := dataFS.ReadFile("data/classes.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.loadClasses("data/classes.yaml", b); err != nil {
			t.Fatal(err)
		}
		return c
	}
	entry := "    title: T\n    rfc: RFC 1\n    severity: low\n    category: C\n    meaning: M\n    causes: [a]\n    fix: [b]\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown class", "basic:\n  - code: \"550\"\n    scope: sender\n    class: nope\n" + entry + "enhanced: []\n", "codes.yaml:2: 550: unknown class"},
		{"scope mismatch", "basic:\n  - code: \"550\"\n    scope: sender\n    class: recipient_unknown\n" + entry + "enhanced: []\n", "disagrees"},
		{"X.7 recipient", "basic: []\nenhanced:\n  - code: X.7.99\n    scope: recipient\n    class: recipient_unknown\n" + entry, "must not have scope recipient"},
		{"bad basic code", "basic:\n  - code: \"55\"\n    scope: sender\n    class: auth_failed\n" + entry + "enhanced: []\n", "three-digit"},
		{"duplicate", "basic:\n  - code: \"535\"\n    scope: sender\n    class: auth_failed\n" + entry + "  - code: \"535\"\n    scope: sender\n    class: auth_failed\n" + entry + "enhanced: []\n", "duplicate entry 535"},
		{"bad severity", "basic:\n  - code: \"535\"\n    scope: sender\n    class: auth_failed\n" + strings.Replace(entry, "low", "huge", 1) + "enhanced: []\n", "severity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := base(t).loadCodes("codes.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("loadCodes error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	c := &Catalog{classes: map[Class]*classInfo{}}
	err := c.loadClasses("classes.yaml", []byte("classes:\n  - class: recipient_unknown\n    scope: unknown\n    description: d\n"))
	if err == nil || !strings.Contains(err.Error(), "classes.yaml:2") {
		t.Errorf("loadClasses error = %v, want file:line", err)
	}
}

// TestLargeOverride: an operator file big enough that the pattern and rule
// sets no longer fit the stack buffers still classifies (the sets move to the
// heap); slicing the buffers first panicked once the embedded catalog alone
// passed 2,048 patterns.
func TestLargeOverride(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range 1200 {
		fmt.Fprintf(&b, "  - id: site.bulk_%d\n    class: recipient_unknown\n    match: [\"bulk marker %d alpha\", \"bulk marker %d beta\", \"bulk marker %d gamma\"]\n", i, i, i, i)
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.nwords <= stackPatWords || c.nrwords <= stackRuleWords {
		t.Fatalf("override too small to test the heap path: %d pattern words, %d rule words", c.nwords, c.nrwords)
	}
	if cl := c.Classify("550 bulk marker 1199 gamma", Hints{}); cl.Rule != "site.bulk_1199" {
		t.Errorf("rule = %q, want site.bulk_1199", cl.Rule)
	}
	if cl := c.Classify("550 5.1.1 user unknown", Hints{}); cl.Class != ClassRecipientUnknown {
		t.Errorf("embedded rules lost: %+v", cl)
	}
}
