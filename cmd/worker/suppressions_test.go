package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reboundhq/rebound/internal/testsvc"
)

// `worker suppressions import` reads an ESP's list, prints the summary with each
// rejected line's reason, resumes from its checkpoint, and `export` writes what an
// import of its output reads back the same.
func TestSuppressionsImportExport(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	run := setup(t, map[string]string{"REBOUND_REDIS_URL": testsvc.Redis(t), "REBOUND_REDIS_PREFIX": testsvc.Prefix(t, rdb)})
	dir := t.TempDir()
	in := filepath.Join(dir, "bounces.csv")
	list := "email,created,reason,status\n" +
		"gone@example.com,2026-02-01 10:15:00,550 5.1.1 no such user here,5.1.1\n" +
		"auth@example.com,2026-02-01 10:15:00,530 5.7.0 Authentication required,5.7.0\n" +
		"not an address,2026-02-01 10:15:00,550 5.1.1 no such user,5.1.1\n"
	if err := os.WriteFile(in, []byte(list), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(nil, "suppressions", "import", "--tenant", "acme", in)
	if r.code != 0 || !strings.Contains(r.stdout, "imported: 1\n") || !strings.Contains(r.stdout, "rejected: 2\n") ||
		!strings.Contains(r.stdout, "line 3: reply classified auth_required") || !strings.Contains(r.stdout, "line 4: address") {
		t.Fatalf("import: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(in + ".import-state"); !os.IsNotExist(err) {
		t.Fatalf("a finished import left its checkpoint: %v", err)
	}
	r = run(nil, "suppressions", "import", "--tenant", "acme", "--json", in)
	var sum struct{ Imported, Duplicate, Rejected int }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &sum) != nil || sum.Imported != 0 || sum.Duplicate != 1 {
		t.Fatalf("second import: %d %s %s, want 1 duplicate", r.code, r.stdout, r.stderr)
	}

	// A checkpoint from an interrupted run: its lines are skipped.
	state := filepath.Join(dir, "state.json")
	if err := os.WriteFile(state, []byte(`{"input":"bounces.csv","size":`+itoa(len(list))+`,"tenant":"beta","line":2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(nil, "suppressions", "import", "--tenant", "other", "--resume", "--state", state, in); r.code == 0 {
		t.Fatal("a checkpoint of another tenant was accepted")
	}
	r = run(nil, "suppressions", "import", "--tenant", "beta", "--resume", "--state", state, in)
	if r.code != 0 || !strings.Contains(r.stdout, "imported: 0\n") || !strings.Contains(r.stdout, "skipped, done by an earlier run: 1\n") {
		t.Fatalf("resumed import: %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	out := filepath.Join(dir, "acme.csv")
	if r := run(nil, "suppressions", "export", "--tenant", "acme", "--format", "csv", "--out", out); r.code != 0 {
		t.Fatalf("export: %d %s", r.code, r.stderr)
	}
	if r := run(nil, "suppressions", "import", "--tenant", "copy", out); r.code != 0 || !strings.Contains(r.stdout, "imported: 1\n") {
		t.Fatalf("import of the export: %d %s %s", r.code, r.stdout, r.stderr)
	}
	again := run(nil, "suppressions", "export", "--tenant", "copy", "--format", "csv")
	first, _ := os.ReadFile(out)
	if again.code != 0 || again.stdout != string(first) || !strings.Contains(again.stdout, "gone@example.com,recipient_unknown") {
		t.Fatalf("re-export differs:\n%s\nvs\n%s", again.stdout, first)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
