package suppress_test

import (
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/suppress"
)

func TestRemoveKeepsAnAuditRecord(t *testing.T) {
	t.Parallel()
	b := setup(t)
	apply(t, b, hard("generic:rm1", "gone@example.com"))
	b.clock.Add(time.Second)
	rem, err := b.store.Remove(b.ctx, "", "gone@example.com", "ops@example.org", "customer asked")
	if err != nil || rem == nil || rem.Record == nil || rem.Record.Reason != "recipient_unknown" {
		t.Fatalf("Remove = %+v, %v; want the removed record", rem, err)
	}
	if rec, _ := b.store.Suppression(b.ctx, "", "gone@example.com"); rec != nil {
		t.Fatalf("still suppressed after removal: %+v", rec)
	}
	if list, _ := b.store.ListSuppressions(b.ctx, "", 0, 10); len(list) != 0 {
		t.Fatalf("still listed after removal: %+v", list)
	}
	log, err := b.store.Removals(b.ctx, 10)
	if err != nil || len(log) != 1 || log[0].By != "ops@example.org" || log[0].Note != "customer asked" {
		t.Fatalf("removal log = %+v, %v", log, err)
	}
	st, _ := b.store.Recipient(b.ctx, "", "gone@example.com")
	if len(st.History) != 2 || st.History[0].Action != "removed" {
		t.Fatalf("history = %+v, want the removal on top of the bounce", st.History)
	}
	if again, err := b.store.Remove(b.ctx, "", "gone@example.com", "ops", ""); again != nil || err != nil {
		t.Fatalf("second Remove = %+v, %v; want nothing to remove", again, err)
	}
	// The event that suppressed it was remembered: redelivering it does not re-suppress.
	if out := apply(t, b, hard("generic:rm1", "gone@example.com")); !out[0].Duplicate || out[0].Suppressed {
		t.Fatalf("redelivery after removal = %+v, want a duplicate that changes nothing", out[0])
	}
}

func TestCheckManyLooksAtGlobalAndTenant(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tenantHard := hard("generic:c1", "t@example.com")
	tenantHard.Tenant = "acme"
	tenantHard.SuppressTTL = 24 * time.Hour
	apply(t, b, hard("generic:c0", "g@example.com"), tenantHard)
	res, err := b.store.CheckMany(b.ctx, "acme", []string{"g@example.com", "t@example.com", "ok@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Suppressed || res[0].Scope != "global" || !res[1].Suppressed || res[1].Scope != "tenant" || res[1].ExpiresAt == nil || res[2].Suppressed {
		t.Fatalf("CheckMany = %+v", res)
	}
	other, _ := b.store.CheckMany(b.ctx, "other", []string{"t@example.com"})
	if other[0].Suppressed {
		t.Fatal("a tenant's suppression leaked into another tenant")
	}
	if rec, _ := b.store.Lookup(b.ctx, "acme", "g@example.com"); rec == nil {
		t.Fatal("Lookup for a tenant does not see the global suppression")
	}
}

func TestGuardHoldsPastTheThresholdAndReleases(t *testing.T) {
	t.Parallel()
	b := setup(t)
	g := suppress.GuardSettings{Window: 10 * time.Minute, Threshold: 3, HoldFor: time.Hour}
	batch := func(ids ...string) map[string]suppress.Change {
		out := map[string]suppress.Change{}
		for _, id := range ids {
			out[id] = hard("generic:"+id, id+"@outage.example")
		}
		return out
	}
	run := func(ids ...string) suppress.GuardResult {
		t.Helper()
		var cs []suppress.Change
		for _, c := range batch(ids...) {
			cs = append(cs, c)
		}
		res, err := b.store.Guard(b.ctx, g, map[string][]suppress.Change{"outage.example": cs})
		if err != nil {
			t.Fatal(err)
		}
		return res["outage.example"]
	}
	if r := run("a", "b"); r.Held || r.Count != 2 {
		t.Fatalf("two recipients = %+v, want not held", r)
	}
	if r := run("a"); r.Held || r.Count != 2 {
		t.Fatalf("a repeated recipient = %+v, want it counted once", r)
	}
	r := run("c", "d")
	if !r.Held || !r.NewlyHeld || r.Count != 4 {
		t.Fatalf("past the threshold = %+v, want newly held", r)
	}
	if r := run("e"); !r.Held || r.NewlyHeld {
		t.Fatalf("while held = %+v, want held, not newly", r)
	}
	held, err := b.store.HeldDomains(b.ctx)
	if err != nil || len(held) != 1 || held[0].Pending != 3 {
		t.Fatalf("held domains = %+v, %v; want one with 3 pending (c, d, e)", held, err)
	}
	n, err := b.store.ReleaseHeld(b.ctx, "outage.example", true)
	if err != nil || n != 3 {
		t.Fatalf("ReleaseHeld(apply) = %d, %v", n, err)
	}
	for _, addr := range []string{"c@outage.example", "d@outage.example", "e@outage.example"} {
		if rec, _ := b.store.Suppression(b.ctx, "", addr); rec == nil || rec.Reason != "recipient_unknown" {
			t.Errorf("%s after apply = %+v, want suppressed with its original reason", addr, rec)
		}
	}
	if _, err := b.store.ReleaseHeld(b.ctx, "outage.example", false); err != suppress.ErrNotHeld {
		t.Fatalf("second release = %v, want ErrNotHeld", err)
	}
	if held, _ := b.store.HeldDomains(b.ctx); len(held) != 0 {
		t.Fatalf("still held after release: %+v", held)
	}
	// Discard: hold again, then drop what is held.
	run("f", "g", "h")
	if n, err := b.store.ReleaseHeld(b.ctx, "outage.example", false); err != nil || n != 3 {
		t.Fatalf("ReleaseHeld(discard) = %d, %v", n, err)
	}
	if rec, _ := b.store.Suppression(b.ctx, "", "f@outage.example"); rec != nil {
		t.Fatalf("discarded suppression was written: %+v", rec)
	}
}
