package suppress_test

import (
	"testing"
	"time"
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
	if err != nil || len(log) != 1 || log[0].By != "ops@example.org" || log[0].Reason != "customer asked" {
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
