package process_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/process"
	"github.com/reboundhq/rebound/internal/stream"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// observed is a processor on a private stream and key prefix whose log is kept.
type observed struct {
	*bundle
	logs *observer.ObservedLogs
}

func setupObserved(t *testing.T, pol, shadow *policy.Policy) *observed {
	t.Helper()
	rdb := testsvc.RedisClient(t)
	_, js := testsvc.JetStream(t)
	names := testsvc.Names(t, js)
	prefix := testsvc.Prefix(t, rdb)
	ctx := context.Background()
	cons, err := stream.Provision(ctx, js, names, stream.DefaultSettings())
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	store := suppress.New(rdb, suppress.Options{Prefix: prefix})
	alerts := alert.NewStore(rdb, alert.StoreOptions{Prefix: prefix})
	m := metrics.New()
	g := guard.New(guard.Config{Redis: rdb, Prefix: prefix, Store: store, Alerts: alerts, Metrics: m, Log: log})
	b := &bundle{js: js, names: names, store: store, alerts: alerts, guard: g, metrics: m, results: make(chan process.Result, 1000), done: make(chan error, 1)}
	cfg := process.Config{
		Consumer: cons, Store: store, Alerts: alerts, Guard: g, Catalog: defaultCatalog(t), Policy: func() *policy.Policy { return pol },
		Publisher: stream.NewPublisher(js, names, 5*time.Second), Metrics: m, Log: log, BatchSize: 64, MaxDeliver: 10,
		OnProcessed: func(r process.Result) { b.results <- r },
	}
	if shadow != nil {
		cfg.Shadow = func() *policy.Policy { return shadow }
	}
	p := process.New(cfg)
	runCtx, cancel := context.WithCancel(ctx)
	b.cancel = cancel
	go func() { b.done <- p.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			t.Error("processor did not stop within 10s")
		}
	})
	return &observed{bundle: b, logs: logs}
}

func parsePolicy(t *testing.T, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(src), "test.yaml", defaultCatalog(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestShadowComparesEffectsNotActions is issue #15's case: a shadow policy that differs
// only in the soft threshold (3 → 1) disagrees at the first 4.2.2, since under it the
// recipient would be suppressed; one that differs only in a TTL disagrees on the hard
// bounce; a redelivered event is not counted twice.
func TestShadowComparesEffectsNotActions(t *testing.T) {
	t.Parallel()
	const base = "version: 1\nsoft: {threshold: %d, window: 7d, ttl: 30d}\nclasses:\n  recipient_unknown: {action: suppress%s}\n"
	live := parsePolicy(t, fmt.Sprintf(base, 3, ""))
	shadow := parsePolicy(t, fmt.Sprintf(base, 1, ", ttl: 7d"))
	b := setupObserved(t, live, shadow)
	full := event("f1", "full@example.com", "452 4.2.2 mailbox full")
	b.publish(t, full)
	b.publish(t, event("u1", "gone@example.com", "550 5.1.1 user unknown"))
	b.publish(t, event("a1", "fine@example.com", "530 5.7.0 Authentication required")) // same effect: no disagreement
	b.wait(t, 3, 15*time.Second)
	b.publish(t, full) // redelivered
	if r := b.wait(t, 1, 15*time.Second)[0]; !r.Outcome.Duplicate {
		t.Fatalf("redelivery = %+v, want a duplicate", r)
	}

	// Disagreements are written beside the batches (Processor.aside), so a batch's
	// entries may land after the next batch's result; Run returns once they are written.
	b.stop(t)
	counts, samples, err := b.store.ShadowReport(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, c := range counts {
		got[c.Class+"|"+c.Live+"|"+c.Shadow] = c.Count
	}
	want := map[string]int64{"mailbox_full|soft|suppress": 1, "recipient_unknown|suppress|suppress": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("shadow counts = %v, want %v", got, want)
	}
	if n := counter(t, b.metrics.ShadowDisagreements.WithLabelValues("mailbox_full", "soft", "suppress")); n != 1 {
		t.Errorf("rebound_policy_shadow_disagreements_total{mailbox_full,soft,suppress} = %v, want 1", n)
	}
	effects := map[string]policy.Disagreement{}
	for _, raw := range samples {
		var d policy.Disagreement
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		effects[d.Class] = d
		if d.Recipient == "full@example.com" || d.Recipient == "gone@example.com" {
			t.Errorf("sample names the recipient in clear: %+v", d)
		}
	}
	if d := effects["mailbox_full"]; d.LiveEffect != "soft 1/3 in 7d window (global)" || d.ShadowEffect != "soft 1/1 in 7d window → suppress for 30d (global)" {
		t.Errorf("mailbox_full sample = %+v", d)
	}
	if d := effects["recipient_unknown"]; d.LiveEffect != "suppress permanently (global)" || d.ShadowEffect != "suppress for 7d (global)" {
		t.Errorf("recipient_unknown sample = %+v", d)
	}
}

// TestMassBounceIncidentIsTheGuards: the guard's incident is counted and logged as class
// mass_bounce with the receiving domain — not the held event's class or sending domain —
// and the hold's log line gives the number `mass-bounce list` shows.
func TestMassBounceIncidentIsTheGuards(t *testing.T) {
	t.Parallel()
	pol := parsePolicy(t, "version: 1\nsoft: {threshold: 3, window: 7d, ttl: 30d}\nmass_bounce: {threshold: 3, window: 10m, hold_for: 1h}\n")
	b := setupObserved(t, pol, nil)
	for i := range 4 {
		b.publish(t, event(fmt.Sprintf("m%d", i), fmt.Sprintf("u%d@outage.example", i), "550 5.1.1 user unknown"))
		b.wait(t, 1, 15*time.Second)
	}
	if n := counter(t, b.metrics.IncidentsOpened.WithLabelValues(alert.ClassMassBounce)); n != 1 {
		t.Errorf("rebound_incidents_opened_total{class=mass_bounce} = %v, want 1", n)
	}
	if n := counter(t, b.metrics.IncidentsOpened.WithLabelValues("recipient_unknown")); n != 0 {
		t.Errorf("rebound_incidents_opened_total{class=recipient_unknown} = %v, want 0", n)
	}
	opened := b.logs.FilterMessage("incident opened").All()
	if len(opened) != 1 {
		t.Fatalf("incident opened lines = %+v, want 1", opened)
	}
	f := opened[0].ContextMap()
	if f["class"] != alert.ClassMassBounce || f["receiving_domain"] != "outage.example" || f["sending_domain"] != nil || f["id"] != guard.IncidentID("outage.example") {
		t.Errorf("incident opened fields = %v, want class mass_bounce and the receiving domain", f)
	}
	holds := b.logs.FilterMessageSnippet("holding new suppressions").All()
	if len(holds) != 1 || holds[0].ContextMap()["class"] != alert.ClassMassBounce || holds[0].ContextMap()["receiving_domain"] != "outage.example" {
		t.Fatalf("hold lines = %+v, want one, class mass_bounce, the receiving domain", holds)
	}
	held, err := b.guard.Held(context.Background())
	if err != nil || len(held) != 1 {
		t.Fatalf("Held = %+v, %v", held, err)
	}
	// The hold started at the 3rd recipient with 3 in the window; the 4th came after.
	if n := holds[0].ContextMap()["recipients_in_window"]; n != int64(3) || held[0].Count != 4 || held[0].Pending != 2 {
		t.Errorf("logged %v recipients in window, listed %d with %d pending; want 3, then 4 with 2 pending", n, held[0].Count, held[0].Pending)
	}
}

// TestOneTenantsBadImportIsHeldAlone: through the process role, the guard counts by the
// event's tenant even though hard bounces suppress globally: tenant bad's bounces to
// one domain are held from its threshold on, tenant good's to the same domain applied.
func TestOneTenantsBadImportIsHeldAlone(t *testing.T) {
	t.Parallel()
	pol := parsePolicy(t, "version: 1\nsoft: {threshold: 3, window: 7d, ttl: 30d}\nmass_bounce: {threshold: 10, tenant_threshold: 3, window: 10m, hold_for: 1h}\n")
	b := setupObserved(t, pol, nil)
	for i := range 5 {
		e := event(fmt.Sprintf("bad%d", i), fmt.Sprintf("b%d@big.example", i), "550 5.1.1 user unknown")
		e.Tenant = "bad"
		b.publish(t, e)
		if i < 2 { // below its own threshold
			g := event(fmt.Sprintf("good%d", i), fmt.Sprintf("g%d@big.example", i), "550 5.1.1 user unknown")
			g.Tenant = "good"
			b.publish(t, g)
		}
	}
	held := map[string]int{}
	for _, r := range b.wait(t, 7, 15*time.Second) {
		if r.Held {
			held[r.Event.Tenant]++
		} else if !r.Outcome.Suppressed {
			t.Errorf("%s: neither held nor suppressed", r.Event.ID)
		}
	}
	if held["bad"] != 3 || held["good"] != 0 {
		t.Fatalf("held per tenant = %v, want bad's 3rd to 5th only", held)
	}
	list, err := b.guard.Held(context.Background())
	if err != nil || len(list) != 1 || list[0].Scope != guard.ScopeTenant || list[0].Tenant != "bad" || list[0].Pending != 3 {
		t.Fatalf("Held = %+v, %v, want tenant bad's hold of big.example", list, err)
	}
}

// TestProcessDeadLetterNamesTheESP: a process-stage dead letter carries the ESP header
// that `deadletter list` shows, even for bytes that do not decode.
func TestProcessDeadLetterNamesTheESP(t *testing.T) {
	t.Parallel()
	b := setup(t, testsvc.RedisClient(t), 10)
	b.publishRaw(t, []byte("{not json"))
	ctx := context.Background()
	dead, err := b.js.Stream(ctx, b.names.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg, err := dead.GetMsg(ctx, 1)
		if err == nil {
			if got := msg.Header.Get(stream.HeaderESP); got != "generic" {
				t.Fatalf("Rebound-ESP = %q, want generic", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
