package process_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/process"
	"github.com/reboundhq/rebound/internal/stream"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

type bundle struct {
	js      jetstream.JetStream
	names   events.Names
	store   *suppress.Store
	alerts  *alert.Store
	guard   *guard.Guard
	metrics *metrics.Metrics
	proc    *process.Processor
	results chan process.Result
	cancel  context.CancelFunc
	done    chan error
}

var (
	catOnce sync.Once
	cat     *catalog.Catalog
)

func defaultCatalog(t *testing.T) *catalog.Catalog {
	catOnce.Do(func() {
		var err error
		if cat, err = catalog.Default(); err != nil {
			t.Fatalf("catalog: %v", err)
		}
	})
	return cat
}

// setup provisions a private stream and consumer, a private key prefix, and starts a
// processor on them. rdb may be a client of a private Redis (chaos tests).
func setup(t *testing.T, rdb redis.UniversalClient, maxDeliver int) *bundle {
	return setupWith(t, rdb, maxDeliver, policy.Default)
}

func setupWith(t *testing.T, rdb redis.UniversalClient, maxDeliver int, pol func() *policy.Policy) *bundle {
	t.Helper()
	return setupConfig(t, rdb, maxDeliver, pol, nil)
}

// setupConfig is setupWith with a last say on the processor's configuration.
func setupConfig(t *testing.T, rdb redis.UniversalClient, maxDeliver int, pol func() *policy.Policy, edit func(*process.Config)) *bundle {
	t.Helper()
	_, js := testsvc.JetStream(t)
	names := testsvc.Names(t, js)
	prefix := testsvc.Prefix(t, rdb)
	ctx := context.Background()
	settings := stream.DefaultSettings()
	settings.MaxDeliver = maxDeliver
	cons, err := stream.Provision(ctx, js, names, settings)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	store := suppress.New(rdb, suppress.Options{Prefix: prefix})
	alerts := alert.NewStore(rdb, alert.StoreOptions{Prefix: prefix})
	m := metrics.New()
	g := guard.New(guard.Config{Redis: rdb, Prefix: prefix, Store: store, Alerts: alerts, Metrics: m, Log: zaptest.NewLogger(t)})
	b := &bundle{js: js, names: names, store: store, alerts: alerts, guard: g, metrics: m, results: make(chan process.Result, 1000), done: make(chan error, 1)}
	cfg := process.Config{
		Consumer: cons, Store: store, Alerts: alerts, Guard: g, Catalog: defaultCatalog(t), Policy: pol,
		Publisher: stream.NewPublisher(js, names, 5*time.Second), Metrics: m,
		Log: zaptest.NewLogger(t), BatchSize: 64, MaxDeliver: maxDeliver, MaxBackoff: 2 * time.Second,
		OnProcessed: func(r process.Result) { b.results <- r },
	}
	if edit != nil {
		edit(&cfg)
	}
	p := process.New(cfg)
	b.proc = p
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
	return b
}

func event(id, rcpt, reply string) events.Event {
	return events.Event{ID: "generic:" + id, ESP: "generic", Type: events.TypeBounce, OccurredAt: time.Now().UTC(), Recipient: rcpt, SendingDomain: "mail.example.org", Reply: events.Reply{Text: reply}}
}

// publishRaw publishes without Nats-Msg-Id, as a redelivery or a second producer would,
// so JetStream's own de-duplication does not hide a duplicate from the worker.
func (b *bundle) publishRaw(t *testing.T, data []byte) {
	t.Helper()
	if _, err := b.js.Publish(context.Background(), b.names.EventSubject("generic"), data); err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) publish(t *testing.T, e events.Event) {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	b.publishRaw(t, data)
}

func (b *bundle) wait(t *testing.T, n int, timeout time.Duration) []process.Result {
	t.Helper()
	var out []process.Result
	deadline := time.After(timeout)
	for len(out) < n {
		select {
		case r := <-b.results:
			out = append(out, r)
		case <-deadline:
			t.Fatalf("got %d of %d processed events within %s", len(out), n, timeout)
		}
	}
	return out
}

func TestProcessAppliesDecisionsOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, testsvc.RedisClient(t), 10)
	b.publish(t, event("u1", "gone@example.com", "550 5.1.1 user unknown"))
	b.publish(t, event("a1", "fine@example.com", "530 5.7.0 Authentication required"))
	b.publish(t, event("u1", "gone@example.com", "550 5.1.1 user unknown")) // duplicate
	res := b.wait(t, 3, 15*time.Second)

	byID := map[string][]process.Result{}
	for _, r := range res {
		byID[r.Event.ID] = append(byID[r.Event.ID], r)
	}
	// Two workers may report the copies in either order: exactly one takes effect.
	u := byID["generic:u1"]
	if len(u) != 2 || u[0].Outcome.Duplicate == u[1].Outcome.Duplicate {
		t.Fatalf("user-unknown results = %+v, want one effect and one duplicate", u)
	}
	if u[1].Outcome.Duplicate {
		u[0], u[1] = u[1], u[0]
	}
	if u[1].Decision.Action != policy.ActionSuppress || !u[1].Outcome.Suppressed {
		t.Fatalf("5.1.1 = %+v, want suppress", u[1])
	}
	a := byID["generic:a1"][0]
	if a.Classification.Scope != catalog.ScopeSender || a.Decision.Action != policy.ActionAlert || a.Outcome.Suppressed || a.Incident == nil || !a.Incident.Opened {
		t.Fatalf("530 = %+v, want a sender-side incident and no suppression", a)
	}
	ctx := context.Background()
	if rec, _ := b.store.Suppression(ctx, "", "fine@example.com"); rec != nil {
		t.Fatalf("530 recipient suppressed: %+v", rec)
	}
	if rec, _ := b.store.Suppression(ctx, "", "gone@example.com"); rec == nil || rec.Events != 1 {
		t.Fatalf("5.1.1 record = %+v, want one event despite the duplicate", rec)
	}
	b.assertDrained(t)
}

func TestUndecodableGoesToDeadLetterWithReason(t *testing.T) {
	t.Parallel()
	b := setup(t, testsvc.RedisClient(t), 10)
	b.publishRaw(t, []byte("{not json"))
	b.publishRaw(t, []byte(`{"id":"generic:x","esp":"generic","type":"bounce","occurred_at":"2026-11-26T10:00:00Z","recipient":"nobody"}`))
	b.publish(t, event("ok", "ok@example.com", "550 5.1.1 user unknown"))
	b.wait(t, 1, 15*time.Second)

	ctx := context.Background()
	dead, err := b.js.Stream(ctx, b.names.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := dead.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead-letter stream has %d messages, want 2", info.State.Msgs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Two workers may dead-letter them in either order.
	const bad = `{"id":"generic:x","esp":"generic","type":"bounce","occurred_at":"2026-11-26T10:00:00Z","recipient":"nobody"}`
	var found bool
	for seq := uint64(1); seq <= 2; seq++ {
		msg, err := dead.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		reason := msg.Header.Get(stream.HeaderReason)
		if reason == "" {
			t.Fatalf("dead letter %d has no reason", seq)
		}
		if string(msg.Data) == bad {
			found = true
			if !contains(reason, "recipient") {
				t.Fatalf("reason %q does not name the field", reason)
			}
		}
	}
	if !found {
		t.Fatal("the invalid event's raw bytes are not in the dead-letter stream")
	}
	b.assertDrained(t)
}

func TestRedisOutageIsRetriedNotDropped(t *testing.T) {
	t.Parallel()
	srv := testsvc.StartRedis(t)
	rdb := testsvc.RedisClientAt(t, srv.Addr)
	b := setup(t, rdb, 50)
	srv.Kill()
	b.publish(t, event("o1", "outage@example.com", "550 5.1.1 user unknown"))
	// Let it fail a few times against the dead server before bringing Redis back.
	time.Sleep(1500 * time.Millisecond)
	select {
	case r := <-b.results:
		t.Fatalf("event acknowledged while Redis was down: %+v", r)
	default:
	}
	srv2 := testsvc.StartRedisOn(t, srv.Port())
	_ = srv2
	res := b.wait(t, 1, 20*time.Second)
	if !res[0].Outcome.Suppressed {
		t.Fatalf("after recovery = %+v, want the suppression stored", res[0])
	}
	if rec, err := b.store.Suppression(context.Background(), "", "outage@example.com"); err != nil || rec == nil {
		t.Fatalf("suppression after outage = %v, %v", rec, err)
	}
}

func TestShutdownFinishesInFlightWork(t *testing.T) {
	t.Parallel()
	b := setup(t, testsvc.RedisClient(t), 10)
	const n = 300
	for i := range n {
		b.publish(t, event(fmt.Sprintf("s%d", i), fmt.Sprintf("r%d@example.com", i), "550 5.1.1 user unknown"))
	}
	b.wait(t, 10, 15*time.Second)
	b.cancel()
	select {
	case err := <-b.done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	b.done <- nil // for the cleanup
	// Every event the processor reported is acknowledged; nothing it reported is pending.
	cons, err := b.js.Consumer(context.Background(), b.names.Stream, b.names.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	reported := 10 + len(b.results)
	if int(info.AckFloor.Stream) < reported {
		t.Fatalf("ack floor %d below the %d events reported processed", info.AckFloor.Stream, reported)
	}
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		n    uint64
		want time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {7, time.Minute}, {100, time.Minute}} {
		if got := process.Backoff(tt.n, time.Minute); got != tt.want {
			t.Errorf("Backoff(%d) = %s, want %s", tt.n, got, tt.want)
		}
	}
}

// stop stops the processor and waits for Run to return.
func (b *bundle) stop(t *testing.T) {
	t.Helper()
	b.cancel()
	select {
	case err := <-b.done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	b.done <- nil // for the cleanup
}

func (b *bundle) assertDrained(t *testing.T) {
	t.Helper()
	cons, err := b.js.Consumer(context.Background(), b.names.Stream, b.names.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer not drained: pending %d, ack pending %d", info.NumPending, info.NumAckPending)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestMassBounceGuardHoldsSuppressions(t *testing.T) {
	t.Parallel()
	pol, err := policy.Parse([]byte("version: 1\nsoft: {threshold: 3, window: 7d, ttl: 30d}\nmass_bounce: {threshold: 3, window: 10m, hold_for: 1h}\n"), "guard.yaml", defaultCatalog(t))
	if err != nil {
		t.Fatal(err)
	}
	b := setupWith(t, testsvc.RedisClient(t), 10, func() *policy.Policy { return pol })
	// One at a time, so the order is known: the third distinct recipient trips the guard.
	var res []process.Result
	for i := range 5 {
		b.publish(t, event(fmt.Sprintf("m%d", i), fmt.Sprintf("u%d@outage.example", i), "550 5.1.1 user unknown"))
		res = append(res, b.wait(t, 1, 15*time.Second)...)
	}
	for i, r := range res {
		wantHeld := i >= 2
		if r.Held != wantHeld || r.Outcome.Suppressed == wantHeld {
			t.Errorf("event %d: held=%t suppressed=%t, want held=%t", i, r.Held, r.Outcome.Suppressed, wantHeld)
		}
	}
	if res[2].Incident == nil || !res[2].Incident.Opened || res[2].Incident.Class != alert.ClassMassBounce {
		t.Errorf("the event that tripped the guard did not open an incident: %+v", res[2].Incident)
	}
	ctx := context.Background()
	incs, _ := b.alerts.List(ctx, alert.Filter{})
	if len(incs) != 1 || incs[0].Class != "mass_bounce" || incs[0].ReceivingDomain != "outage.example" || len(incs[0].Fix) == 0 || incs[0].Messages != 3 {
		t.Fatalf("incidents = %+v, want one mass_bounce incident for outage.example", incs)
	}
	// The held events' history keeps their real class; the action says they were held.
	st, err := b.store.Recipient(ctx, "", "u4@outage.example")
	if err != nil || len(st.History) != 1 || st.History[0].Action != string(suppress.ActionHeld) || st.History[0].Class != "recipient_unknown" || st.Suppression != nil {
		t.Fatalf("held recipient = %+v, %v; want one history entry, action held, class recipient_unknown, no suppression", st, err)
	}
	// Other domains are not held.
	b.publish(t, event("other", "x@fine.example", "550 5.1.1 user unknown"))
	if r := b.wait(t, 1, 15*time.Second)[0]; r.Held || !r.Outcome.Suppressed {
		t.Fatalf("other domain = %+v, want suppressed", r)
	}
	before := counter(t, b.metrics.Suppressions.WithLabelValues("recipient_unknown"))
	if n, err := b.guard.Release(ctx, "outage.example", true); err != nil || n != 3 {
		t.Fatalf("apply held = %d, %v; want 3", n, err)
	}
	if rec, _ := b.store.Suppression(ctx, "", "u4@outage.example"); rec == nil || rec.Class != "recipient_unknown" || rec.Reason != "recipient_unknown" {
		t.Fatalf("held suppression after apply = %+v, want written with its class and reason", rec)
	}
	if got := counter(t, b.metrics.Suppressions.WithLabelValues("recipient_unknown")) - before; got != 3 {
		t.Errorf("rebound_suppressions_total{reason=recipient_unknown} grew by %v on apply, want 3", got)
	}
	if inc, err := b.alerts.Get(ctx, guard.IncidentID("outage.example")); err != nil || inc.State != alert.StateResolved || inc.ResolvedBy != "mass-bounce apply" {
		t.Fatalf("incident after apply = %+v, %v; want resolved by mass-bounce apply", inc, err)
	}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestUnknownRepliesAreCountedForReview: a reply no rule knows is recorded (redacted, by
// text) so that operators can list the ones worth a rule; a redelivery does not count. So
// is a reply only the statistical fallback decided: no rule knows it either.
func TestUnknownRepliesAreCountedForReview(t *testing.T) {
	t.Parallel()
	b := setup(t, testsvc.RedisClient(t), 10)
	odd := "frobnicated the quux for <zed@unknown.example>" // no code: no rule, no model
	modelled := "Forged IPs not accepted here"              // no rule; the fallback reads it as ours
	if cl := defaultCatalog(t).Classify(modelled, catalog.Hints{}); cl.Rule != "model.sender" {
		t.Fatalf("%q is decided by %s: pick a reply only the statistical fallback decides", modelled, cl.Rule)
	}
	b.publish(t, event("u1", "zed@unknown.example", odd))
	b.publish(t, event("u2", "amy@unknown.example", odd))
	b.publish(t, event("u1", "zed@unknown.example", odd)) // the same event again
	b.publish(t, event("u3", "bob@unknown.example", modelled))
	b.wait(t, 4, 15*time.Second)
	// The list is written beside the next batch; Run returns once it is.
	b.stop(t)
	list, err := b.store.UnknownReplies(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Count != 2 || strings.Contains(list[0].Reply, "zed@") || list[0].ESP != "generic" ||
		list[1].Reply != modelled || list[1].Count != 1 {
		t.Fatalf("unknown replies = %+v, want one redacted text counted twice and the fallback's reply once", list)
	}
}
