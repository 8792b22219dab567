package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/reboundhq/rebound/internal/testsvc"
)

// `worker recipients erase` removes what an import wrote; without an address hash key
// it says why no marker stays.
func TestRecipientsErase(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	run := setup(t, map[string]string{"REBOUND_REDIS_URL": testsvc.Redis(t), "REBOUND_REDIS_PREFIX": testsvc.Prefix(t, rdb)})
	list := "email,created\nforget.me@example.com,2026-02-04 12:00:00\nkeep.me@example.com,2026-02-04 12:00:00\n"
	if r := run(strings.NewReader(list), "suppressions", "import", "--tenant", "acme", "-"); r.code != 0 || !strings.Contains(r.stdout, "imported: 2") {
		t.Fatalf("import: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// As the README writes it: the flags after the address.
	r := run(nil, "recipients", "erase", "forget.me@EXAMPLE.com", "--tenant", "acme", "--reason", "request 7")
	var rep struct {
		KeysDeleted   int    `json:"keys_deleted"`
		Marker        bool   `json:"marker"`
		MarkerSkipped string `json:"marker_skipped"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil || rep.KeysDeleted != 2 || rep.Marker || rep.MarkerSkipped == "" {
		t.Fatalf("erase: %d %s %s", r.code, r.stdout, r.stderr)
	}
	out := run(nil, "suppressions", "export", "--tenant", "acme")
	if out.code != 0 || strings.Contains(out.stdout, "forget.me") || !strings.Contains(out.stdout, "keep.me@example.com") {
		t.Fatalf("export after the erasure: %d %s", out.code, out.stdout)
	}
	if r := run(nil, "recipients", "erase"); r.code == 0 {
		t.Fatal("erase without an address succeeded")
	}
}
