package guard_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

const outage = "outage.example"

// clock is an injected clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type bundle struct {
	ctx     context.Context
	clock   *clock
	store   *suppress.Store
	alerts  *alert.Store
	metrics *metrics.Metrics
	guard   *guard.Guard
	mb      policy.MassBounce
	rdb     redis.UniversalClient
}

func setup(t *testing.T) *bundle {
	t.Helper()
	return setupLog(t, zaptest.NewLogger(t))
}

func setupLog(t *testing.T, log *zap.Logger) *bundle {
	t.Helper()
	rdb := testsvc.RedisClient(t)
	prefix := testsvc.Prefix(t, rdb)
	clk := &clock{t: time.Now().Truncate(time.Millisecond)}
	ctx := context.Background()
	st := suppress.New(rdb, suppress.Options{Prefix: prefix, Now: clk.Now})
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	as := alert.NewStore(rdb, alert.StoreOptions{Prefix: prefix, Now: clk.Now})
	m := metrics.New()
	g := guard.New(guard.Config{Redis: rdb, Prefix: prefix, Store: st, Alerts: as, Metrics: m, Log: log, Now: clk.Now})
	if err := g.Load(ctx); err != nil {
		t.Fatal(err)
	}
	return &bundle{ctx: ctx, clock: clk, store: st, alerts: as, metrics: m, guard: g, rdb: rdb,
		mb: policy.MassBounce{Enabled: true, Window: 10 * time.Minute, Threshold: 3, HoldFor: time.Hour, OnRecovery: "hold"}}
}

func hard(id, addr string) suppress.Change {
	return suppress.Change{EventID: "generic:" + id, ESP: "generic", Address: addr, Action: suppress.ActionSuppress,
		Reason: "recipient_unknown", Class: "recipient_unknown", Code: "5.1.1", Reply: "550 5.1.1 unknown"}
}

// batch runs one batch of hard bounces to <id>@domain through the guard as the process
// role does: the held ones count into the domain's incident, the others are written.
func (b *bundle) batch(t *testing.T, domain string, ids ...string) []guard.Verdict {
	t.Helper()
	changes := make([]suppress.Change, len(ids))
	for i, id := range ids {
		changes[i] = hard(id, id+"@"+domain)
	}
	vs, err := b.guard.Check(b.ctx, b.mb, changes, nil)
	if err != nil {
		t.Fatal(err)
	}
	var obs []alert.Observation
	write := changes
	for i, v := range vs {
		if !v.Held {
			continue
		}
		write[i].Action = suppress.ActionHeld // history only: the guard keeps it pending
		obs = append(obs, alert.Observation{EventID: changes[i].EventID, Class: alert.ClassMassBounce, Severity: "high",
			ReceivingDomain: v.Domain, Recipient: changes[i].Address, Code: "5.1.1", Rule: "mass_bounce_guard", Fix: guard.FixSteps(v.Domain)})
	}
	if _, err := b.store.Apply(b.ctx, write); err != nil {
		t.Fatal(err)
	}
	if _, err := b.alerts.Observe(b.ctx, obs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// heldPerDomain runs changes through the guard and counts the held ones per domain.
func (b *bundle) heldPerDomain(t *testing.T, changes []suppress.Change) map[string]int {
	t.Helper()
	vs, err := b.guard.Check(b.ctx, b.mb, changes, nil)
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]int{}
	for _, v := range vs {
		if v.Held {
			held[v.Domain]++
		}
	}
	return held
}

func (b *bundle) incident(t *testing.T, domain string) alert.Incident {
	t.Helper()
	inc, err := b.alerts.Get(b.ctx, guard.IncidentID(domain))
	if err != nil {
		t.Fatalf("incident of %s: %v", domain, err)
	}
	return inc
}

func (b *bundle) suppressed(t *testing.T, addr string) *suppress.Record {
	t.Helper()
	rec, err := b.store.Suppression(b.ctx, "", addr)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestKeysKeepTheirStrings(t *testing.T) {
	t.Parallel()
	k := guard.NewKeys("rebound:")
	for got, want := range map[string]string{
		k.Recipients("x.example"): "rebound:g{x.example}:rcpts",
		k.State("x.example"):      "rebound:g{x.example}",
		k.Pending("x.example"):    "rebound:g{x.example}:pending",
		k.HeldDomains():           "rebound:idx:held",
		// Added with per-tenant holds; the domain-wide keys above are unchanged.
		k.Tenants("x.example"):                  "rebound:g{x.example}:tenants",
		k.TenantRecipients("x.example", "acme"): "rebound:g{x.example}:t:acme:rcpts",
		k.TenantPending("x.example", "acme"):    "rebound:g{x.example}:t:acme:pending",
	} {
		if got != want {
			t.Errorf("key %q, want %q (existing holds must stay readable)", got, want)
		}
	}
}

func TestDecideIsOneVerdictPerChange(t *testing.T) {
	t.Parallel()
	acme := func(c suppress.Change) suppress.Change { c.EventTenant = "acme"; return c }
	changes := []suppress.Change{
		hard("1", "a@held.example"),
		{EventID: "generic:2", Address: "b@held.example", Action: suppress.ActionSoft},
		hard("3", "c@held.example"),
		hard("4", "d@fine.example"),
		hard("5", "e@held.example"), // a complaint, say: not eligible
		acme(hard("6", "f@held.example")),
		hard("7", "g@held.example"),
		acme(hard("8", "h@held.example")),
	}
	eligible := func(i int) bool { return i != 4 }
	by := guard.Group(changes, eligible)
	if len(by) != 2 || len(by["held.example"]) != 5 || len(by["fine.example"]) != 1 || by["held.example"][2].EventID != "generic:6" {
		t.Fatalf("Group = %+v, want a, c, f, g, h in order for held.example, d for fine.example", by)
	}
	vs := guard.Decide(changes, eligible, map[string]guard.Result{
		"held.example": {Held: true, NewlyHeld: true, Count: 7,
			Tenants: map[string]guard.TenantResult{"": {Count: 2}, "acme": {Held: true, NewlyHeld: true, Count: 3}},
			Changes: []guard.HeldBy{guard.NotHeld, guard.HeldByDomain, guard.HeldByTenant, guard.HeldByDomain, guard.HeldByTenant}},
		"fine.example": {Count: 1, Changes: []guard.HeldBy{guard.NotHeld}},
	})
	want := []guard.Verdict{
		{Domain: "held.example", Count: 7}, // before the threshold: applied
		{},
		{Domain: "held.example", Held: true, Scope: guard.ScopeDomain, NewlyHeld: true, Count: 7},
		{Domain: "fine.example", Count: 1},
		{},
		{Domain: "held.example", Tenant: "acme", Held: true, Scope: guard.ScopeTenant, NewlyHeld: true, Count: 3},
		{Domain: "held.example", Held: true, Scope: guard.ScopeDomain, Count: 7}, // each hold announced once
		{Domain: "held.example", Tenant: "acme", Held: true, Scope: guard.ScopeTenant, Count: 3},
	}
	if len(vs) != len(want) {
		t.Fatalf("Decide = %+v, want %d verdicts", vs, len(want))
	}
	for i := range want {
		if vs[i] != want[i] {
			t.Errorf("verdict %d = %+v, want %+v", i, vs[i], want[i])
		}
	}
}

func TestCheckDoesNothingWhenDisabledOrNothingToGuard(t *testing.T) {
	t.Parallel()
	b := setup(t)
	off := b.mb
	off.Enabled = false
	off.Threshold = 2
	changes := []suppress.Change{hard("1", "a@"+outage), hard("2", "b@"+outage)}
	if vs, err := b.guard.Check(b.ctx, off, changes, nil); err != nil || vs != nil {
		t.Fatalf("Check when disabled = %+v, %v, want nothing", vs, err)
	}
	if vs, err := b.guard.Check(b.ctx, b.mb, changes, func(int) bool { return false }); err != nil || vs != nil {
		t.Fatalf("Check with nothing eligible = %+v, %v, want nothing", vs, err)
	}
	if n, err := b.guard.Count(b.ctx, outage, b.mb.Window); err != nil || n != 0 {
		t.Fatalf("Count = %d, %v, want nothing counted", n, err)
	}
}

func TestHoldsAtTheThresholdAndAppliesOnRelease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if vs := b.batch(t, outage, "a", "b"); vs[0].Held || vs[1].Held || vs[1].Count != 2 {
		t.Fatalf("two recipients = %+v, want not held", vs)
	}
	if vs := b.batch(t, outage, "a"); vs[0].Held || vs[0].Count != 2 {
		t.Fatalf("a repeated recipient = %+v, want it counted once", vs)
	}
	heldAt := b.clock.Now()
	vs := b.batch(t, outage, "c", "d")
	if !vs[0].Held || !vs[0].NewlyHeld || vs[1].NewlyHeld || !vs[1].Held || vs[0].Count != 4 {
		t.Fatalf("at the threshold = %+v, want both held, the hold announced once", vs)
	}
	b.clock.Add(time.Minute)
	if vs := b.batch(t, outage, "e"); !vs[0].Held || vs[0].NewlyHeld {
		t.Fatalf("while held = %+v, want held, not newly", vs)
	}
	if rec := b.suppressed(t, "c@"+outage); rec != nil {
		t.Fatalf("held suppression written: %+v", rec)
	}
	held, err := b.guard.Held(b.ctx)
	if err != nil || len(held) != 1 || held[0].Domain != outage || held[0].Pending != 3 || held[0].Count != 5 || !held[0].Since.Equal(heldAt) {
		t.Fatalf("Held = %+v, %v; want %s with 3 pending (c, d, e) of 5 recipients, since %s", held, err, outage, heldAt)
	}
	if inc := b.incident(t, outage); !inc.State.Firing() || inc.Messages != 3 {
		t.Fatalf("incident = %+v, want open with the 3 held events", inc)
	}

	label := b.metrics.Suppressions.WithLabelValues("recipient_unknown")
	before := counter(t, label)
	b.clock.Add(time.Hour)
	releasedAt := b.clock.Now()
	n, err := b.guard.Release(b.ctx, outage, true)
	if err != nil || n != 3 {
		t.Fatalf("Release(apply) = %d, %v, want 3", n, err)
	}
	for _, id := range []string{"c", "d", "e"} {
		rec := b.suppressed(t, id+"@"+outage)
		// The record is the held one as it would have been written then: the event's
		// own ID and the time it was held, not the release's.
		if rec == nil || rec.Reason != "recipient_unknown" || rec.Class != "recipient_unknown" || rec.EventID != "generic:"+id || rec.ExpiresAt != nil ||
			rec.FirstSeen.After(heldAt.Add(time.Minute)) || rec.FirstSeen.Before(heldAt) {
			t.Errorf("%s after apply = %+v, want the held permanent suppression with its reason, event ID and the time it was held", id, rec)
		}
		// The recipient's log keeps both: held, then released, as entries of their own.
		st, err := b.store.Recipient(b.ctx, "", id+"@"+outage)
		if err != nil || len(st.History) != 2 || st.History[0].Action != "released" || st.History[0].EventID != "generic:"+id+":released" ||
			!st.History[0].At.Equal(releasedAt) || st.History[1].Action != string(suppress.ActionHeld) {
			t.Errorf("history of %s = %+v, %v, want the hold and then the release", id, st.History, err)
		}
	}
	if got := counter(t, label) - before; got != 3 {
		t.Errorf("rebound_suppressions_total{reason=recipient_unknown} grew by %v, want 3", got)
	}
	if inc := b.incident(t, outage); inc.State != alert.StateResolved || inc.ResolvedBy != "mass-bounce apply" {
		t.Fatalf("incident after apply = %s by %q, want resolved by mass-bounce apply", inc.State, inc.ResolvedBy)
	}
	if got := counter(t, b.metrics.IncidentsResolved.WithLabelValues(alert.ClassMassBounce, "manual")); got != 1 {
		t.Errorf("incidents resolved (manual) = %v, want 1", got)
	}
	if held, _ := b.guard.Held(b.ctx); len(held) != 0 {
		t.Fatalf("still held after release: %+v", held)
	}
	if _, err := b.guard.Release(b.ctx, outage, true); !errors.Is(err, guard.ErrNotHeld) {
		t.Fatalf("second release = %v, want ErrNotHeld", err)
	}
	// Applying again changes nothing: each release is logged once.
	if outs, err := b.store.Apply(b.ctx, []suppress.Change{func() suppress.Change { c := hard("c", "c@"+outage); c.Released = true; return c }()}); err != nil || !outs[0].Duplicate {
		t.Fatalf("the release again = %+v, %v, want a duplicate", outs, err)
	}
	// The hold ended: the domain counts afresh.
	if vs := b.batch(t, outage, "f"); vs[0].Held || vs[0].Count != 1 {
		t.Fatalf("after the release = %+v, want counted afresh, not held", vs)
	}
}

func TestDiscardDropsWhatIsHeldAndResolves(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.batch(t, outage, "a", "b", "c", "d")
	label := b.metrics.Suppressions.WithLabelValues("recipient_unknown")
	n, err := b.guard.Release(b.ctx, outage, false)
	if err != nil || n != 2 {
		t.Fatalf("Release(discard) = %d, %v, want 2 (c and d: a and b came before the threshold)", n, err)
	}
	for _, id := range []string{"c", "d"} {
		if rec := b.suppressed(t, id+"@"+outage); rec != nil {
			t.Errorf("discarded suppression of %s written: %+v", id, rec)
		}
	}
	if got := counter(t, label); got != 0 {
		t.Errorf("rebound_suppressions_total grew by %v on discard, want 0", got)
	}
	if inc := b.incident(t, outage); inc.State != alert.StateResolved || inc.ResolvedBy != "mass-bounce discard" {
		t.Fatalf("incident after discard = %s by %q, want resolved by mass-bounce discard", inc.State, inc.ResolvedBy)
	}
	if _, err := b.guard.Release(b.ctx, outage, false); !errors.Is(err, guard.ErrNotHeld) {
		t.Fatalf("second discard = %v, want ErrNotHeld", err)
	}
}

func TestReleaseOfADomainNeverHeld(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.guard.Release(b.ctx, "never.example", true); !errors.Is(err, guard.ErrNotHeld) {
		t.Fatalf("apply = %v, want ErrNotHeld", err)
	}
	if _, err := b.guard.Release(b.ctx, "never.example", false); !errors.Is(err, guard.ErrNotHeld) {
		t.Fatalf("discard = %v, want ErrNotHeld", err)
	}
}

func TestReleaseWithoutAnIncident(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Held without the observations the process role makes: no incident to resolve.
	if _, err := b.guard.Hold(b.ctx, b.mb, map[string][]suppress.Change{outage: {hard("a", "a@"+outage), hard("b", "b@"+outage), hard("c", "c@"+outage), hard("d", "d@"+outage)}}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.guard.Release(b.ctx, outage, true); err != nil || n != 2 {
		t.Fatalf("Release(apply) without an incident = %d, %v, want 2 (c, d) and no error", n, err)
	}
	if _, err := b.alerts.Get(b.ctx, guard.IncidentID(outage)); !errors.Is(err, alert.ErrNotFound) {
		t.Fatalf("incident = %v, want none", err)
	}
}

// TestHeldDomainLeftOutOfTheIndexIsPutBack: a held domain removed from the index by hand
// (which docs/operations.md warns against: the batch script then skips its hold state) is
// listed again by its next held batch; here the window still holds the threshold, so the
// next suppression is held whatever the index said.
func TestHeldDomainLeftOutOfTheIndexIsPutBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.batch(t, outage, "a", "b", "c")
	if err := b.rdb.SRem(b.ctx, b.guard.Keys().HeldDomains(), outage).Err(); err != nil {
		t.Fatal(err)
	}
	if held, _ := b.guard.Held(b.ctx); len(held) != 0 {
		t.Fatalf("Held = %+v, want the domain missing from the index", held)
	}
	b.batch(t, outage, "d")
	if held, err := b.guard.Held(b.ctx); err != nil || len(held) != 1 || held[0].Pending != 2 {
		t.Fatalf("Held after the next held batch = %+v, %v, want %s back with 2 pending (c, d)", held, err, outage)
	}
}

func TestSweeperOnRecovery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		onRecovery string
		released   bool // the hold ends
		written    bool // the held suppressions are written
		by         string
	}{
		{"apply", true, true, "recovery: apply"},
		{"discard", true, false, "recovery: discard"},
		{"hold", false, false, ""},
	} {
		t.Run(tc.onRecovery, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.mb.OnRecovery = tc.onRecovery
			b.batch(t, outage, "a", "b")
			b.batch(t, outage, "c", "d") // held
			// Still bouncing: nothing to recover from.
			if got := b.guard.SweepOnce(b.ctx, b.mb); len(got) != 0 {
				t.Fatalf("sweep while above the threshold = %+v, want nothing", got)
			}
			b.clock.Add(b.mb.Window + time.Second)
			got := b.guard.SweepOnce(b.ctx, b.mb)
			if !tc.released {
				if len(got) != 0 {
					t.Fatalf("sweep with on_recovery hold = %+v, want nothing", got)
				}
				if held, _ := b.guard.Held(b.ctx); len(held) != 1 || held[0].Pending != 2 {
					t.Fatalf("Held = %+v, want the domain still held for the operator", held)
				}
				if inc := b.incident(t, outage); !inc.State.Firing() {
					t.Fatalf("incident = %s, want it left open", inc.State)
				}
				return
			}
			if len(got) != 1 || got[0].Domain != outage || got[0].Count != 2 || got[0].Applied != tc.written {
				t.Fatalf("sweep = %+v, want %s ended with its 2 held suppressions", got, outage)
			}
			if rec := b.suppressed(t, "d@"+outage); (rec != nil) != tc.written {
				t.Fatalf("held suppression of d after the sweep = %+v, want written %t", rec, tc.written)
			}
			if inc := b.incident(t, outage); inc.State != alert.StateResolved || inc.ResolvedBy != tc.by {
				t.Fatalf("incident = %s by %q, want resolved by %q", inc.State, inc.ResolvedBy, tc.by)
			}
			if held, _ := b.guard.Held(b.ctx); len(held) != 0 {
				t.Fatalf("Held after the sweep = %+v, want none", held)
			}
			if again := b.guard.SweepOnce(b.ctx, b.mb); len(again) != 0 {
				t.Fatalf("second sweep = %+v, want nothing left", again)
			}
		})
	}
}

func TestRunSweeperStopsWithItsContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pol := &policy.Policy{MassBounce: b.mb}
	pol.MassBounce.OnRecovery = "discard"
	b.batch(t, outage, "a", "b", "c")
	b.clock.Add(b.mb.Window + time.Second)
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan struct{})
	go func() {
		b.guard.RunSweeper(ctx, func() *policy.Policy { return pol }, 10*time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		held, err := b.guard.Held(b.ctx)
		if err == nil && len(held) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sweeper did not release the recovered domain: %+v, %v", held, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunSweeper did not return after cancel")
	}
}

func TestManyDomainsInOneBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var changes []suppress.Change
	for d := range 3 {
		for i := range d + 2 { // 2, 3 and 4 recipients: the last two domains are held
			changes = append(changes, hard(fmt.Sprintf("%d-%d", d, i), fmt.Sprintf("r%d@d%d.example", i, d)))
		}
	}
	held := b.heldPerDomain(t, changes)
	if len(held) != 2 || held["d1.example"] != 1 || held["d2.example"] != 2 {
		t.Fatalf("held per domain = %v, want d1 (1: its 3rd) and d2 (2: its 3rd and 4th)", held)
	}
	list, err := b.guard.Held(b.ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("Held = %+v, %v, want two domains", list, err)
	}
}

// TestNothingHeldDuringAReleaseIsLost releases a domain while its bounces keep coming:
// every recipient ends up suppressed (written directly, or held and applied) or still
// pending in a hold that started again. None is dropped.
func TestNothingHeldDuringAReleaseIsLost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.batch(t, outage, "a", "b", "c")
	const n = 300
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for i := range n {
			c := hard(fmt.Sprintf("x%d", i), fmt.Sprintf("x%d@%s", i, outage))
			vs, err := b.guard.Check(b.ctx, b.mb, []suppress.Change{c}, nil)
			if err == nil && !vs[0].Held {
				_, err = b.store.Apply(b.ctx, []suppress.Change{c})
			}
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(5 * time.Millisecond)
	if _, err := b.guard.Release(b.ctx, outage, true); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	pending, err := b.rdb.HGetAll(b.ctx, b.guard.Keys().Pending(outage)).Result()
	if err != nil {
		t.Fatal(err)
	}
	tenantPending, err := b.rdb.HGetAll(b.ctx, b.guard.Keys().TenantPending(outage, "")).Result()
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(pending, tenantPending)
	for _, id := range append([]string{"a", "b", "c"}, func() (ids []string) {
		for i := range n {
			ids = append(ids, fmt.Sprintf("x%d", i))
		}
		return ids
	}()...) {
		addr := id + "@" + outage
		if _, ok := pending["|"+addr]; !ok && b.suppressed(t, addr) == nil {
			t.Errorf("%s is neither suppressed nor pending: lost by the release", addr)
		}
	}
}

// TestBatchesSeeHoldsOfEarlierBatches: the batch script reads a domain's hold state only
// when the held-domains index names it, so the index must name a hold from the step that
// starts it. A hold started in one batch of several domains holds the domain's next
// change in the next such batch, while the other domains keep being written; once it is
// released, the domain's changes are written again.
func TestBatchesSeeHoldsOfEarlierBatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	changes := func(round int, perDomain map[string]int) []suppress.Change {
		var cs []suppress.Change
		for _, d := range []string{"d1.example", "d2.example", "d3.example"} {
			for i := range perDomain[d] {
				cs = append(cs, hard(fmt.Sprintf("%d-%s-%d", round, d, i), fmt.Sprintf("r%d-%d@%s", round, i, d)))
			}
		}
		return cs
	}
	heldPerDomain := func(cs []suppress.Change) map[string]int { t.Helper(); return b.heldPerDomain(t, cs) }
	// d1 reaches the threshold (3) in the first batch; d2 and d3 stay below it.
	if held := heldPerDomain(changes(1, map[string]int{"d1.example": 3, "d2.example": 1, "d3.example": 1})); fmt.Sprint(held) != "map[d1.example:1]" {
		t.Fatalf("first batch held %v, want d1's third change", held)
	}
	// Past the window: d1's count is back to zero, but its hold stays on until decided.
	b.clock.Add(b.mb.Window + time.Minute)
	if held := heldPerDomain(changes(2, map[string]int{"d1.example": 1, "d2.example": 1})); fmt.Sprint(held) != "map[d1.example:1]" {
		t.Fatalf("second batch held %v, want d1's change only (d1 is held, d2 has 1 of 3)", held)
	}
	// With a hold in the index, an unlisted domain still counts and holds on its own.
	if held := heldPerDomain(changes(3, map[string]int{"d2.example": 2, "d3.example": 1})); fmt.Sprint(held) != "map[d2.example:1]" {
		t.Fatalf("third batch held %v, want d2's third change", held)
	}
	for _, d := range []string{"d1.example", "d2.example"} {
		if _, err := b.guard.Release(b.ctx, d, false); err != nil {
			t.Fatalf("release %s: %v", d, err)
		}
	}
	if n, err := b.rdb.SCard(b.ctx, b.guard.Keys().HeldDomains()).Result(); err != nil || n != 0 {
		t.Fatalf("held-domains index after the releases = %d, %v, want empty", n, err)
	}
	if held := heldPerDomain(changes(4, map[string]int{"d1.example": 1, "d2.example": 1})); len(held) != 0 {
		t.Fatalf("fourth batch held %v, want nothing (both released: they count afresh)", held)
	}
}
