package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestMassBounceCommand lists a held domain, applies it, and resolves its incident,
// through `worker mass-bounce` against the shared Redis.
func TestMassBounceCommand(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	prefix := testsvc.Prefix(t, rdb)
	ctx := context.Background()
	st := suppress.New(rdb, suppress.Options{Prefix: prefix})
	as := alert.NewStore(rdb, alert.StoreOptions{Prefix: prefix})
	g := guard.New(guard.Config{Redis: rdb, Prefix: prefix, Store: st, Alerts: as})
	mb := policy.MassBounce{Enabled: true, Window: 10 * time.Minute, Threshold: 2, HoldFor: time.Hour}
	var cs []suppress.Change
	for _, id := range []string{"a", "b", "c"} { // held from the threshold on: b and c
		cs = append(cs, suppress.Change{EventID: "generic:" + id, ESP: "generic", Address: id + "@outage.example", Action: suppress.ActionSuppress,
			Reason: "recipient_unknown", Class: "recipient_unknown"})
		if _, err := as.Observe(ctx, []alert.Observation{{EventID: "generic:" + id, Class: alert.ClassMassBounce, ReceivingDomain: "outage.example", Recipient: id + "@outage.example"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.Hold(ctx, mb, map[string][]suppress.Change{"outage.example": cs}); err != nil {
		t.Fatal(err)
	}
	run := setup(t, map[string]string{"REBOUND_REDIS_URL": testsvc.Redis(t), "REBOUND_REDIS_PREFIX": prefix})

	if r := run(nil, "mass-bounce", "list"); r.code != 0 || !strings.Contains(r.stdout, "outage.example") || !strings.Contains(r.stdout, "PENDING") {
		t.Fatalf("list = %d %q %q, want the held domain", r.code, r.stdout, r.stderr)
	}
	// A tenant's hold of another domain, decided alone with --tenant.
	acme := suppress.Change{EventID: "generic:t", ESP: "generic", EventTenant: "acme", Action: suppress.ActionSuppress, Reason: "recipient_unknown", Class: "recipient_unknown"}
	var ts []suppress.Change
	for _, l := range []string{"p", "q"} {
		c := acme
		c.EventID, c.Address = "generic:"+l, l+"@gmail.example"
		ts = append(ts, c)
	}
	if _, err := g.Hold(ctx, mb, map[string][]suppress.Change{"gmail.example": ts}); err != nil {
		t.Fatal(err)
	}
	if r := run(nil, "mass-bounce", "list"); r.code != 0 || !strings.Contains(r.stdout, "TENANT") || !regexp.MustCompile(`gmail\.example\s+tenant\s+acme\s+\S+\s+2\s+1\n`).MatchString(r.stdout) {
		t.Fatalf("list = %d %q %q, want acme's hold of gmail.example: 2 recipients, 1 pending", r.code, r.stdout, r.stderr)
	}
	if r := run(nil, "mass-bounce", "discard", "gmail.example", "--tenant", "beta"); r.code != 1 || !strings.Contains(r.stderr, "not held") {
		t.Fatalf("discard of a tenant not held = %d %q", r.code, r.stderr)
	}
	if r := run(nil, "mass-bounce", "discard", "gmail.example", "--tenant", "acme"); r.code != 0 || r.stdout != "gmail.example (tenant \"acme\"): discarded 1 held suppression(s)\n" {
		t.Fatalf("discard --tenant acme = %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(nil, "mass-bounce", "apply", "Outage.Example"); r.code != 0 || r.stdout != "Outage.Example: applied 2 held suppression(s)\n" {
		t.Fatalf("apply = %d %q %q", r.code, r.stdout, r.stderr)
	}
	if rec, err := st.Suppression(ctx, "", "b@outage.example"); err != nil || rec == nil {
		t.Fatalf("applied suppression = %v, %v", rec, err)
	}
	if inc, err := as.Get(ctx, guard.IncidentID("outage.example")); err != nil || inc.State != alert.StateResolved || inc.ResolvedBy != "mass-bounce apply" {
		t.Fatalf("incident = %+v, %v, want resolved by mass-bounce apply", inc, err)
	}
	if r := run(nil, "mass-bounce", "list"); r.code != 0 || r.stdout != "No domain is held.\n" {
		t.Fatalf("list after apply = %d %q", r.code, r.stdout)
	}
	if r := run(nil, "mass-bounce", "discard", "outage.example"); r.code != 1 || !strings.Contains(r.stderr, "not held") {
		t.Fatalf("discard of a domain not held = %d %q, want exit 1 naming it not held", r.code, r.stderr)
	}
}
