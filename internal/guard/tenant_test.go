package guard_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/suppress"
)

// tenantBatch is batch for changes of named tenants: each id is "tenant/local".
func (b *bundle) tenantBatch(t *testing.T, domain string, ids ...string) []guard.Verdict {
	t.Helper()
	changes := make([]suppress.Change, len(ids))
	for i, id := range ids {
		tenant, local, _ := cut(id)
		changes[i] = hard(tenant+"-"+local, local+"@"+domain)
		changes[i].EventTenant = tenant
	}
	vs, err := b.guard.Check(b.ctx, b.mb, changes, nil)
	if err != nil {
		t.Fatal(err)
	}
	var obs []alert.Observation
	for i, v := range vs {
		if v.Held {
			changes[i].Action = suppress.ActionHeld
			obs = append(obs, alert.Observation{EventID: changes[i].EventID, Class: alert.ClassMassBounce, Severity: "high",
				ReceivingDomain: v.Domain, Recipient: changes[i].Address, Code: "5.1.1", Rule: "mass_bounce_guard"})
		}
	}
	if _, err := b.store.Apply(b.ctx, changes); err != nil {
		t.Fatal(err)
	}
	if _, err := b.alerts.Observe(b.ctx, obs); err != nil {
		t.Fatal(err)
	}
	return vs
}

func cut(id string) (string, string, bool) {
	for i := range id {
		if id[i] == '/' {
			return id[:i], id[i+1:], true
		}
	}
	return "", id, false
}

func heldIDs(vs []guard.Verdict, ids []string) []string {
	var out []string
	for i, v := range vs {
		if v.Held {
			out = append(out, ids[i])
		}
	}
	return out
}

// TestOutcomeDoesNotDependOnBatching posts the same hard bounces as one batch, one by
// one, and cut in two odd places: in every case the ones before the threshold are
// applied and the rest held, and the count the hold announces is the one the listing
// shows. (Before, one batch held everything, the ones before the threshold included.)
func TestOutcomeDoesNotDependOnBatching(t *testing.T) {
	t.Parallel()
	ids := []string{"a", "b", "a", "c", "d", "e", "b", "f"} // a and b repeat: counted once
	// The threshold (3) is crossed by c, the 4th event: a, b, a apply; c and after are held.
	want := []string{"c", "d", "e", "b", "f"}
	for name, cuts := range map[string][]int{"one batch": {len(ids)}, "one by one": {1, 1, 1, 1, 1, 1, 1, 1}, "cut 2+5+1": {2, 5, 1}, "cut 3+5": {3, 5}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var got []string
			var announced []guard.Verdict
			at := 0
			for _, n := range cuts {
				part := ids[at : at+n]
				at += n
				vs := b.batch(t, outage, part...)
				got = append(got, heldIDs(vs, part)...)
				for _, v := range vs {
					if v.NewlyHeld {
						announced = append(announced, v)
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("held %v, want %v", got, want)
			}
			for _, id := range []string{"a", "b"} {
				if rec := b.suppressed(t, id+"@"+outage); rec == nil {
					t.Errorf("%s, before the threshold, is not suppressed", id)
				}
			}
			held, err := b.guard.Held(b.ctx)
			if err != nil || len(held) != 1 || held[0].Pending != 5 {
				t.Fatalf("Held = %+v, %v, want one hold with c, d, e, b, f pending", held, err)
			}
			if len(announced) != 1 {
				t.Fatalf("hold announced %d times: %+v", len(announced), announced)
			}
			// What `mass-bounce list` shows is the number the log line gave when the
			// batch that started the hold was the last one.
			if name == "one batch" && announced[0].Count != held[0].Count {
				t.Errorf("announced %d recipients in window, listed %d", announced[0].Count, held[0].Count)
			}
			if held[0].Count != 6 {
				t.Errorf("listed %d recipients in window, want 6 (a to f)", held[0].Count)
			}
		})
	}
}

// TestOneTenantsImportHoldsOnlyThatTenant: tenant "bad" hard-bounces many recipients of
// a big domain (a bad list import) and only its suppressions are held; the others'
// keep being applied, and its own further bounces do not count toward the domain. When
// many tenants bounce at once (an outage), the domain-wide hold takes every tenant.
func TestOneTenantsImportHoldsOnlyThatTenant(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mb.Threshold, b.mb.TenantThreshold = 6, 3
	const gmail = "gmail.example"
	ids := []string{"bad/a", "bad/b", "good/x", "bad/c", "bad/d", "bad/e", "bad/f", "bad/g", "good/y"}
	vs := b.tenantBatch(t, gmail, ids...)
	if got := heldIDs(vs, ids); fmt.Sprint(got) != "[bad/c bad/d bad/e bad/f bad/g]" {
		t.Fatalf("held %v, want bad's from its 3rd on, and none of good's", got)
	}
	// Its count is the hold's after the batch (a to g): the number the listing shows.
	if v := vs[3]; v.Scope != guard.ScopeTenant || v.Tenant != "bad" || !v.NewlyHeld || v.Count != 7 {
		t.Fatalf("the hold's verdict = %+v, want a new hold of tenant bad, 7 recipients", v)
	}
	for _, a := range []string{"x", "y", "a", "b"} {
		if b.suppressed(t, a+"@"+gmail) == nil {
			t.Errorf("%s is not suppressed: only bad's from its threshold on may be held", a)
		}
	}
	// The domain counts bad's a and b (before its hold) and good's x and y: 4 of 6.
	if n, err := b.guard.Count(b.ctx, gmail, b.mb.Window); err != nil || n != 4 {
		t.Fatalf("domain count = %d, %v, want 4 (a held tenant's bounces do not count toward the domain)", n, err)
	}
	held, err := b.guard.Held(b.ctx)
	if err != nil || len(held) != 1 || held[0].Scope != guard.ScopeTenant || held[0].Tenant != "bad" || held[0].Pending != 5 || held[0].Count != 7 {
		t.Fatalf("Held = %+v, %v, want tenant bad's hold: 5 pending of 7 recipients", held, err)
	}

	// An outage: two more tenants bounce; the domain reaches 6 (q) and holds everyone's,
	// while bad's go on into its own hold.
	ids = []string{"t1/p", "t2/q", "t1/r", "bad/h", "good/z"}
	vs = b.tenantBatch(t, gmail, ids...)
	if got := heldIDs(vs, ids); fmt.Sprint(got) != "[t2/q t1/r bad/h good/z]" {
		t.Fatalf("held %v, want the domain held from its 6th recipient (q) on", got)
	}
	if vs[1].Scope != guard.ScopeDomain || !vs[1].NewlyHeld || vs[3].Scope != guard.ScopeTenant {
		t.Fatalf("verdicts = %+v, want q starting the domain-wide hold and bad's h in bad's hold", vs)
	}
	held, _ = b.guard.Held(b.ctx)
	if len(held) != 2 || held[0].Scope != guard.ScopeDomain || held[0].Pending != 3 || held[1].Tenant != "bad" || held[1].Pending != 6 {
		t.Fatalf("Held = %+v, want the domain-wide hold (q, r, z) and bad's (6)", held)
	}

	// Deciding bad's hold alone leaves the domain-wide one, and the incident, open.
	n, err := b.guard.ReleaseTenant(b.ctx, gmail, "bad", false)
	if err != nil || n != 6 {
		t.Fatalf("ReleaseTenant(bad, discard) = %d, %v, want 6", n, err)
	}
	if _, err := b.guard.ReleaseTenant(b.ctx, gmail, "bad", false); !errors.Is(err, guard.ErrNotHeld) {
		t.Fatalf("second ReleaseTenant = %v, want ErrNotHeld", err)
	}
	if inc := b.incident(t, gmail); !inc.State.Firing() {
		t.Fatalf("incident after bad's release = %s, want open: the domain is still held", inc.State)
	}
	if held, _ := b.guard.Held(b.ctx); len(held) != 1 || held[0].Scope != guard.ScopeDomain {
		t.Fatalf("Held after bad's release = %+v, want the domain-wide hold only", held)
	}
	// Release of the domain decides what is left and resolves the incident.
	if n, err := b.guard.Release(b.ctx, gmail, true); err != nil || n != 3 {
		t.Fatalf("Release(apply) = %d, %v, want 3", n, err)
	}
	if b.suppressed(t, "z@"+gmail) == nil || b.suppressed(t, "c@"+gmail) != nil {
		t.Fatal("after the releases z must be suppressed (applied) and c not (discarded)")
	}
	if inc := b.incident(t, gmail); inc.State != alert.StateResolved || inc.ResolvedBy != "mass-bounce apply" {
		t.Fatalf("incident = %s by %q, want resolved by mass-bounce apply", inc.State, inc.ResolvedBy)
	}
	// bad counts afresh, and its earlier recipients left the domain's count with it.
	if vs := b.tenantBatch(t, gmail, "bad/i"); vs[0].Held {
		t.Fatalf("bad after its release = %+v, want counted afresh", vs)
	}
}

// TestSweeperRecoversATenantHold: a tenant's hold ends on recovery like the domain's,
// by its own count and threshold.
func TestSweeperRecoversATenantHold(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.mb.Threshold, b.mb.TenantThreshold, b.mb.OnRecovery = 10, 2, "apply"
	b.tenantBatch(t, outage, "acme/a", "acme/b", "acme/c")
	if got := b.guard.SweepOnce(b.ctx, b.mb); len(got) != 0 {
		t.Fatalf("sweep while bouncing = %+v, want nothing", got)
	}
	b.clock.Add(b.mb.Window + time.Second)
	got := b.guard.SweepOnce(b.ctx, b.mb)
	if len(got) != 1 || got[0].Scope != guard.ScopeTenant || got[0].Tenant != "acme" || !got[0].Applied || got[0].Count != 2 || got[0].Expired {
		t.Fatalf("sweep = %+v, want acme's hold applied (b, c)", got)
	}
	if inc := b.incident(t, outage); inc.State != alert.StateResolved || inc.ResolvedBy != "recovery: apply" {
		t.Fatalf("incident = %s by %q, want resolved by recovery: apply", inc.State, inc.ResolvedBy)
	}
}

// TestUndecidedHoldExpiresLoudly: a hold nobody decides on is discarded by the sweeper
// once hold_for has passed since it started — counted, logged at warn and noted on the
// incident — and not silently by Redis: the keys live KeyGrace longer.
func TestUndecidedHoldExpiresLoudly(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	b := setupLog(t, zap.New(core))
	b.mb.Threshold, b.mb.TenantThreshold, b.mb.HoldFor = 4, 2, time.Hour // on_recovery: hold
	b.tenantBatch(t, outage, "acme/a", "acme/b", "acme/c")               // acme's hold: b, c
	b.tenantBatch(t, outage, "x/p", "y/q", "z/r", "w/s")                 // the domain's (a, p, q, r): r, s
	pending := b.guard.Keys().TenantPending(outage, "acme")
	if ttl, err := b.rdb.PTTL(b.ctx, pending).Result(); err != nil || ttl <= b.mb.HoldFor+guard.KeyGrace-time.Minute {
		t.Fatalf("TTL of the pending suppressions = %s, %v, want hold_for + %s: the sweeper must get there first", ttl, err, guard.KeyGrace)
	}
	b.clock.Add(b.mb.HoldFor - time.Second)
	if got := b.guard.SweepOnce(b.ctx, b.mb); len(got) != 0 {
		t.Fatalf("sweep before hold_for = %+v, want nothing", got)
	}
	b.clock.Add(time.Second)
	got := b.guard.SweepOnce(b.ctx, b.mb)
	if len(got) != 2 || !got[0].Expired || got[0].Scope != guard.ScopeDomain || got[0].Count != 2 || !got[1].Expired || got[1].Tenant != "acme" || got[1].Count != 2 {
		t.Fatalf("sweep at hold_for = %+v, want both holds expired (2 suppressions each)", got)
	}
	if held, _ := b.guard.Held(b.ctx); len(held) != 0 {
		t.Fatalf("Held after the expiry = %+v, want none", held)
	}
	if n, _ := b.rdb.Exists(b.ctx, pending).Result(); n != 0 {
		t.Fatal("the expired hold's pending suppressions are still there")
	}
	if b.suppressed(t, "c@"+outage) != nil {
		t.Fatal("an expired hold's suppression was applied; it must be discarded")
	}
	if got := counter(t, b.metrics.GuardHoldsExpired); got != 2 {
		t.Errorf("rebound_guard_holds_expired_total = %v, want 2", got)
	}
	if got := counter(t, b.metrics.GuardExpiredSuppressions); got != 4 {
		t.Errorf("rebound_guard_expired_suppressions_total = %v, want 4", got)
	}
	if got := counter(t, b.metrics.IncidentsResolved.WithLabelValues(alert.ClassMassBounce, "expired")); got != 1 {
		t.Errorf("rebound_incidents_resolved_total{how=expired} = %v, want 1", got)
	}
	if inc := b.incident(t, outage); inc.State != alert.StateResolved || inc.ResolvedBy != "expired after hold_for: 4 held suppressions discarded" {
		t.Fatalf("incident = %s by %q, want resolved by the expiry with the count", inc.State, inc.ResolvedBy)
	}
	warned := logs.FilterMessageSnippet("expired").FilterLevelExact(zapcore.WarnLevel).All()
	if len(warned) != 2 {
		t.Fatalf("warn lines about the expiry = %d (%+v), want one per hold", len(warned), logs.All())
	}
	if f := warned[1].ContextMap(); f["receiving_domain"] != outage || f["tenant"] != "acme" || f["suppressions"] != int64(2) {
		t.Errorf("expiry log fields = %v", f)
	}
	if got := b.guard.SweepOnce(b.ctx, b.mb); len(got) != 0 {
		t.Fatalf("second sweep = %+v, want nothing left", got)
	}
}

// TestHoldsFromBeforeTenantsStayReadable: a domain-wide hold written before per-tenant
// counting (the same keys, pending changes without a held time) is listed and released
// as before.
func TestHoldsFromBeforeTenantsStayReadable(t *testing.T) {
	t.Parallel()
	b := setup(t)
	k := b.guard.Keys()
	since := b.clock.Now().Add(-time.Minute).UnixMilli()
	old := `{"EventID":"generic:old","ESP":"generic","Tenant":"","Address":"old@` + outage + `","Action":"suppress","Reason":"recipient_unknown","Class":"recipient_unknown","Rule":"","Code":"5.1.1","Reply":"550","SuppressTTL":0,"SoftWindow":0,"SoftThreshold":0,"SoftTTL":0,"Protected":true}`
	if err := b.rdb.HSet(b.ctx, k.State(outage), "held", 1, "since", since, "count", 120, "last_seen", since).Err(); err != nil {
		t.Fatal(err)
	}
	b.rdb.HSet(b.ctx, k.Pending(outage), "|old@"+outage, old)
	b.rdb.SAdd(b.ctx, k.HeldDomains(), outage)
	held, err := b.guard.Held(b.ctx)
	if err != nil || len(held) != 1 || held[0].Scope != guard.ScopeDomain || held[0].Count != 120 || held[0].Pending != 1 {
		t.Fatalf("Held = %+v, %v, want the old hold, domain-wide", held, err)
	}
	// While it is on, new bounces of the domain are held by it.
	if vs := b.batch(t, outage, "new"); !vs[0].Held || vs[0].Scope != guard.ScopeDomain {
		t.Fatalf("during the old hold = %+v, want held by it", vs)
	}
	if n, err := b.guard.Release(b.ctx, outage, true); err != nil || n != 2 {
		t.Fatalf("Release = %d, %v, want 2", n, err)
	}
	if rec := b.suppressed(t, "old@"+outage); rec == nil || rec.EventID != "generic:old" {
		t.Fatalf("old held suppression after apply = %+v", rec)
	}
}
