package alert_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// lifecycle is the policy's incident settings as the notifier asks for them.
type lifecycle struct {
	resolve map[string]time.Duration // by class
	def     time.Duration
	remind  time.Duration
}

func (l lifecycle) ResolveAfter(class string) time.Duration {
	if d, ok := l.resolve[class]; ok {
		return d
	}
	return l.def
}
func (l lifecycle) Severity(string) string     { return "critical" }
func (l lifecycle) RemindEvery() time.Duration { return l.remind }

// newNotifier is the notify role on the test's store and clock.
func newNotifier(e *env, cfg *alert.Config, targets ...alert.Target) *alert.Notifier {
	return &alert.Notifier{
		Store: e.st, Config: cfg, Targets: targets, Log: zap.NewNop(), Now: e.clk.Now,
		Lifecycle: func() alert.Lifecycle { return lifecycle{def: 30 * time.Minute} },
	}
}

// deliverAll runs one delivery pass for every target, as the notifier's loops do.
func deliverAll(t *testing.T, n *alert.Notifier) {
	t.Helper()
	for _, tg := range n.Targets {
		n.DeliverDue(t.Context(), tg)
	}
}

func parse(t *testing.T, y string) *alert.Config {
	t.Helper()
	c, err := alert.Parse([]byte(y), t.TempDir())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// forIncident keeps the notifications ("kind:id:seq") of one incident.
func forIncident(sent []string, id string) []string {
	var out []string
	for _, s := range sent {
		if strings.Contains(s, ":"+short(id)+":") {
			out = append(out, s)
		}
	}
	return out
}

func note(kind, id string, seq int) string { return fmt.Sprintf("%s:%s:%d", kind, short(id), seq) }

// Any number of notifier replicas, each running a loop per receiver, page once per
// transition and receiver: the claim's lease in Redis picks one sender.
func TestDeliverOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ids []string
	for i := range 4 {
		o := obs530(fmt.Sprintf("sg:%d", i), "a@example.com")
		o.SendingIP = fmt.Sprintf("192.0.2.%d", i)
		e.observe(t, o)
		ids = append(ids, o.Fingerprint())
	}
	pager, chat := &fakeReceiver{}, &fakeReceiver{}
	targets := []alert.Target{{Name: "pager", Receiver: pager}, {Name: "chat", Receiver: chat}}
	var replicas []*alert.Notifier
	for range 4 {
		n := newNotifier(e, alert.Default(), targets...)
		n.Store = e.store() // each replica has its own Store on the same Redis
		replicas = append(replicas, n)
	}
	race := func() {
		var wg sync.WaitGroup
		for _, n := range replicas {
			for _, tg := range n.Targets {
				for range 3 { // several loops of one replica, too
					wg.Go(func() {
						for range 10 {
							n.DeliverDue(t.Context(), tg)
						}
					})
				}
			}
		}
		wg.Wait()
	}
	race()
	for _, id := range ids {
		if _, err := e.st.Resolve(t.Context(), id, "ops"); err != nil {
			t.Fatal(err)
		}
	}
	race()
	for name, fr := range map[string]*fakeReceiver{"pager": pager, "chat": chat} {
		sent := fr.sent()
		if len(sent) != 2*len(ids) {
			t.Errorf("%s got %d notifications, want %d: %v", name, len(sent), 2*len(ids), sent)
		}
		for _, id := range ids {
			if got, want := forIncident(sent, id), []string{note("trigger", id, 1), note("resolve", id, 2)}; !slices.Equal(got, want) {
				t.Errorf("%s got %v for %s, want %v", name, got, short(id), want)
			}
		}
	}
	if due, _ := e.st.Due(t.Context(), 100); len(due) != 0 {
		t.Errorf("still due after everything was delivered: %v", due)
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := parse(t, `
receivers:
  - name: a
    webhook: {url: "https://a.example.com/hook"}
  - name: b
    webhook: {url: "https://b.example.com/hook"}
routes:
  - match: {severity: critical}
    receivers: [a]
default_receivers: [b]
`)
	crit := obs530("sg:1", "a@example.com")
	warn := obs530("sg:2", "a@example.com")
	warn.Class, warn.Severity, warn.Code = "throttled", "warning", "421"
	e.observe(t, crit, warn)
	a, b, logr := &fakeReceiver{}, &fakeReceiver{}, &fakeReceiver{}
	n := newNotifier(e, cfg, alert.Target{Name: "a", Receiver: a}, alert.Target{Name: "b", Receiver: b},
		alert.Target{Name: alert.ReceiverLog, Receiver: logr, All: true})
	deliverAll(t, n)
	deliverAll(t, n)
	if got, want := a.sent(), []string{note("trigger", crit.Fingerprint(), 1)}; !slices.Equal(got, want) {
		t.Errorf("a (critical only) got %v, want %v", got, want)
	}
	if got, want := b.sent(), []string{note("trigger", warn.Fingerprint(), 1)}; !slices.Equal(got, want) {
		t.Errorf("b (everything else) got %v, want %v", got, want)
	}
	if got := logr.sent(); len(got) != 2 {
		t.Errorf("the built-in receiver got %v, want both triggers", got)
	}
	if due, _ := e.st.Due(t.Context(), 100); len(due) != 0 {
		t.Errorf("still due: %v", due)
	}
}

// A receiver that answers "try later" gets the same transition again after the
// back-off, and the later ones after it, in order.
func TestRetryableErrorIsRetriedInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.observe(t, obs530("sg:1", "a@example.com"))
	fr := &fakeReceiver{}
	fr.answer(errUnavailable)
	n := newNotifier(e, alert.Default(), alert.Target{Name: "pager", Receiver: fr})
	failedAt := e.clk.Now()
	deliverAll(t, n)
	if len(fr.tried()) != 1 || len(fr.sent()) != 0 {
		t.Fatalf("tried %v, sent %v, want one failed try", fr.tried(), fr.sent())
	}
	inc := e.get(t, fp530)
	if len(inc.Deliveries) != 1 {
		t.Fatalf("deliveries = %+v", inc.Deliveries)
	}
	// A detailed list reads the deliveries too, in its own round trips.
	if list, err := e.st.List(t.Context(), alert.Filter{Detail: true}); err != nil || len(list) != 1 || !reflect.DeepEqual(list[0].Deliveries, inc.Deliveries) {
		t.Fatalf("List(Detail) = %+v, %v; want the deliveries Get gives, %+v", list, err, inc.Deliveries)
	}
	if list, err := e.st.List(t.Context(), alert.Filter{}); err != nil || len(list) != 1 || len(list[0].Deliveries) != 0 {
		t.Fatalf("List = %+v, %v; want no deliveries without Detail", list, err)
	}
	d := inc.Deliveries[0]
	// The first retry waits the initial back-off (5s) ± 20 %.
	if wait := d.NextTry.Sub(failedAt); d.Receiver != "pager" || d.Sent != 0 || d.Tries != 1 || wait < 4*time.Second || wait > 6*time.Second || !strings.Contains(d.LastError, "HTTP 503") {
		t.Fatalf("delivery after a 503 = %+v (retry in %s), want one try, a retry in 4-6s, the error", d, wait)
	}
	if inc.State != alert.StateOpen {
		t.Errorf("state = %s, want open: nobody was told yet", inc.State)
	}

	// The incident resolves meanwhile; the receiver is in back-off, so nothing is sent
	// before the retry time, however often the loop runs.
	if _, err := e.st.Resolve(ctx, fp530, "ops"); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(3 * time.Second)
	for range 3 {
		deliverAll(t, n)
	}
	if len(fr.tried()) != 1 {
		t.Fatalf("tried %v before the back-off ended", fr.tried())
	}
	e.clk.Add(4 * time.Second)
	deliverAll(t, n)
	if got, want := fr.sent(), []string{note("trigger", fp530, 1), note("resolve", fp530, 2)}; !slices.Equal(got, want) {
		t.Fatalf("sent %v, want %v", got, want)
	}
	d = e.get(t, fp530).Deliveries[0]
	if d.Sent != 2 || d.Tries != 0 || !d.NextTry.IsZero() || d.LastError != "" || !d.LastOK.Equal(e.clk.Now()) {
		t.Errorf("delivery after success = %+v, want sent 2, no tries, no error, ok now", d)
	}
}

// A receiver's Retry-After wins over a shorter back-off, up to the maximum back-off.
func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.observe(t, obs530("sg:1", "a@example.com"))
	fr := &fakeReceiver{}
	fr.answer(&receiver.Error{Status: 429, Retry: true, RetryAfter: time.Minute, Reason: "rate_limited", Err: fmt.Errorf("slow down")},
		&receiver.Error{Status: 503, Retry: true, RetryAfter: time.Hour, Reason: "server_error", Err: fmt.Errorf("maintenance")})
	n := newNotifier(e, alert.Default(), alert.Target{Name: "pager", Receiver: fr})
	deliverAll(t, n)
	if d := e.get(t, fp530).Deliveries[0]; !d.NextTry.Equal(e.clk.Now().Add(time.Minute)) {
		t.Errorf("next try = %v, want in 1m (Retry-After)", d.NextTry.Sub(e.clk.Now()))
	}
	e.clk.Add(time.Minute)
	deliverAll(t, n)
	if d := e.get(t, fp530).Deliveries[0]; !d.NextTry.Equal(e.clk.Now().Add(5*time.Minute)) || d.Tries != 2 {
		t.Errorf("next try = %v after %d tries, want in 5m (Retry-After 1h capped at max_backoff)", d.NextTry.Sub(e.clk.Now()), d.Tries)
	}
}

// A receiver that refuses a notification (HTTP 400) would refuse it again: it is
// dropped, not retried, and the next transition is still delivered.
func TestNonRetryableErrorDropsTheTransition(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.observe(t, obs530("sg:1", "a@example.com"))
	fr := &fakeReceiver{}
	fr.answer(errBadRequest)
	n := newNotifier(e, alert.Default(), alert.Target{Name: "pager", Receiver: fr})
	deliverAll(t, n)
	d := e.get(t, fp530).Deliveries[0]
	if d.Sent != 1 || d.Tries != 0 || !d.NextTry.IsZero() || !strings.Contains(d.LastError, "HTTP 400") {
		t.Fatalf("delivery after a 400 = %+v, want the trigger dropped (sent 1), the error kept", d)
	}
	if due, _ := e.st.Due(ctx, 10); len(due) != 0 {
		t.Fatalf("still due after the drop: %v", due)
	}
	for range 3 {
		e.clk.Add(time.Hour)
		deliverAll(t, n)
	}
	if got := fr.tried(); len(got) != 1 {
		t.Fatalf("tried %v, want the refused trigger tried once", got)
	}
	if _, err := e.st.Ack(ctx, fp530, "token:alice"); err != nil {
		t.Fatal(err)
	}
	deliverAll(t, n)
	if got, want := fr.sent(), []string{note("ack", fp530, 2)}; !slices.Equal(got, want) {
		t.Errorf("sent %v, want the ack after the dropped trigger", got)
	}
	if s := e.get(t, fp530).State; s != alert.StateOpen {
		t.Errorf("state = %s, want open: the trigger never reached anyone", s)
	}
}

// A notification that could not be delivered within give_up_after is stale: dropped
// as expired, and the later ones still go out.
func TestExpiredNotificationIsDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	cfg := parse(t, "delivery: {give_up_after: 1h, max_backoff: 10m}\n")
	e.observe(t, obs530("sg:1", "a@example.com"))
	fr := &fakeReceiver{}
	fr.setDown(errNoAnswer)
	n := newNotifier(e, cfg, alert.Target{Name: "pager", Receiver: fr})
	for range 12 { // two hours of retries, at most 10 minutes apart
		deliverAll(t, n)
		e.clk.Add(10 * time.Minute)
	}
	tries := len(fr.tried())
	if tries < 6 || len(fr.sent()) != 0 {
		t.Fatalf("tried %d times, sent %v, want retries and nothing sent", tries, fr.sent())
	}
	d := e.get(t, fp530).Deliveries[0]
	if d.Sent != 1 || d.LastError != "expired after 1h0m0s" {
		t.Fatalf("delivery = %+v, want the trigger dropped as expired", d)
	}
	// Back up: the trigger is not sent late, the resolve is.
	fr.setDown(nil)
	if _, err := e.st.Resolve(ctx, fp530, "ops"); err != nil {
		t.Fatal(err)
	}
	deliverAll(t, n)
	if got, want := fr.sent(), []string{note("resolve", fp530, 2)}; !slices.Equal(got, want) {
		t.Errorf("sent %v, want only the resolve", got)
	}
}

// A receiver that is down while the incident opens and resolves gets both once it is
// back: the trigger first, then the resolve.
func TestReceiverDownDuringTriggerAndResolve(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.observe(t, obs530("sg:1", "a@example.com"))
	down, up := &fakeReceiver{}, &fakeReceiver{}
	down.setDown(errNoAnswer)
	n := newNotifier(e, alert.Default(), alert.Target{Name: "down", Receiver: down}, alert.Target{Name: "up", Receiver: up})
	step := func(d time.Duration) { e.clk.Add(d); deliverAll(t, n) }
	step(0)
	step(time.Minute)
	e.clk.Add(10 * time.Minute)
	if _, err := e.st.ResolveIfQuiet(ctx, fp530, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	step(0)
	step(5 * time.Minute)
	if len(down.sent()) != 0 || len(down.tried()) < 3 {
		t.Fatalf("down receiver: sent %v, tried %v", down.sent(), down.tried())
	}
	if got, want := up.sent(), []string{note("trigger", fp530, 1), note("resolve", fp530, 2)}; !slices.Equal(got, want) {
		t.Fatalf("the receiver that was up got %v, want %v", got, want)
	}
	down.setDown(nil)
	step(5 * time.Minute) // past the longest back-off
	if got, want := down.sent(), []string{note("trigger", fp530, 1), note("resolve", fp530, 2)}; !slices.Equal(got, want) {
		t.Errorf("the receiver that was down got %v once back, want %v", got, want)
	}
	for _, ns := range down.notes() {
		if ns.Kind == receiver.KindResolve && ns.ResolvedAt.IsZero() {
			t.Errorf("late resolve without ResolvedAt: %+v", ns)
		}
	}
	step(time.Hour)
	if len(up.tried()) != 2 || len(down.sent()) != 2 {
		t.Errorf("more sends after everything was delivered: up %v, down %v", up.tried(), down.sent())
	}
}

func TestStateNotifiedAfterTheFirstTrigger(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.observe(t, obs530("sg:1", "a@example.com"))
	pager, chat := &fakeReceiver{}, &fakeReceiver{}
	chat.setDown(errUnavailable)
	n := newNotifier(e, alert.Default(), alert.Target{Name: "pager", Receiver: pager}, alert.Target{Name: "chat", Receiver: chat})
	if s := e.get(t, fp530).State; s != alert.StateOpen {
		t.Fatalf("state before delivery = %s, want open", s)
	}
	n.DeliverDue(ctx, n.Targets[1]) // chat fails first: still nobody told
	if s := e.get(t, fp530).State; s != alert.StateOpen {
		t.Fatalf("state after a failed delivery = %s, want open", s)
	}
	n.DeliverDue(ctx, n.Targets[0])
	inc := e.get(t, fp530)
	if inc.State != alert.StateNotified {
		t.Fatalf("state after the trigger reached pager = %s, want notified", inc.State)
	}
	// Get shows each receiver's progress.
	if len(inc.Deliveries) != 2 {
		t.Fatalf("deliveries = %+v, want chat and pager", inc.Deliveries)
	}
	c, p := inc.Deliveries[0], inc.Deliveries[1]
	if c.Receiver != "chat" || c.Sent != 0 || c.Tries != 1 || c.NextTry.IsZero() || !strings.Contains(c.LastError, "503") {
		t.Errorf("chat delivery = %+v, want one failed try and a retry time", c)
	}
	if p.Receiver != "pager" || p.Sent != 1 || p.Tries != 0 || !p.LastOK.Equal(e.clk.Now()) || p.LastError != "" {
		t.Errorf("pager delivery = %+v, want sent 1, ok now", p)
	}

	// Notified stays notified through an ack; a reopened incident is notified again.
	if _, err := e.st.Ack(ctx, fp530, "ops"); err != nil {
		t.Fatal(err)
	}
	n.DeliverDue(ctx, n.Targets[0])
	if _, err := e.st.Resolve(ctx, fp530, "ops"); err != nil {
		t.Fatal(err)
	}
	n.DeliverDue(ctx, n.Targets[0])
	e.observe(t, obs530("sg:2", "a@example.com"))
	if s := e.get(t, fp530).State; s != alert.StateReopened {
		t.Fatalf("state = %s, want reopened", s)
	}
	n.DeliverDue(ctx, n.Targets[0])
	if s := e.get(t, fp530).State; s != alert.StateNotified {
		t.Errorf("state after the new trigger = %s, want notified", s)
	}
	if got, want := pager.sent(), []string{note("trigger", fp530, 1), note("ack", fp530, 2), note("resolve", fp530, 3), note("trigger", fp530, 4)}; !slices.Equal(got, want) {
		t.Errorf("pager got %v, want %v", got, want)
	}
}

func TestSweepOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	auth := obs530("sg:1", "a@example.com")
	thr := obs530("sg:2", "a@example.com")
	thr.Class = "throttled"
	mb := alert.Observation{EventID: "sg:3", Class: alert.ClassMassBounce, ReceivingDomain: "example.net", Recipient: "x@example.net"}
	acked := obs530("sg:4", "a@example.com")
	acked.Class, acked.SendingIP = "throttled", "192.0.2.44"
	e.observe(t, auth, thr, mb, acked)
	if _, err := e.st.Ack(ctx, acked.Fingerprint(), "ops"); err != nil {
		t.Fatal(err)
	}
	n := newNotifier(e, alert.Default())
	n.Lifecycle = func() alert.Lifecycle {
		return lifecycle{resolve: map[string]time.Duration{"auth_required": 30 * time.Minute, "throttled": 2 * time.Hour}, def: time.Hour, remind: 40 * time.Minute}
	}
	want := map[string][]string{
		auth.Fingerprint(): {"trigger"}, thr.Fingerprint(): {"trigger"},
		mb.Fingerprint(): {"trigger"}, acked.Fingerprint(): {"trigger", "ack"},
	}
	check := func(when string) {
		t.Helper()
		for id, w := range want {
			if got := kinds(e.get(t, id).Transitions); !slices.Equal(got, w) {
				t.Errorf("%s: %s has %v, want %v", when, short(id), got, w)
			}
		}
	}
	e.clk.Add(29 * time.Minute)
	n.SweepOnce(ctx)
	check("after 29m")

	// 45 minutes: auth_required (30m) resolves; the others are reminded (40m) unless acked.
	e.clk.Add(16 * time.Minute)
	n.SweepOnce(ctx)
	want[auth.Fingerprint()] = append(want[auth.Fingerprint()], "resolve")
	want[thr.Fingerprint()] = append(want[thr.Fingerprint()], "reminder")
	want[mb.Fingerprint()] = append(want[mb.Fingerprint()], "reminder")
	check("after 45m")
	n.SweepOnce(ctx) // running again changes nothing
	check("after 45m, twice")

	// 61 minutes: the mass bounce (the default, 1h) resolves.
	e.clk.Add(16 * time.Minute)
	n.SweepOnce(ctx)
	want[mb.Fingerprint()] = append(want[mb.Fingerprint()], "resolve")
	check("after 61m")

	// 2 hours: throttled resolves (reminded once more at 85m on the way).
	e.clk.Add(24 * time.Minute)
	n.SweepOnce(ctx)
	want[thr.Fingerprint()] = append(want[thr.Fingerprint()], "reminder")
	check("after 85m")
	e.clk.Add(35 * time.Minute)
	n.SweepOnce(ctx)
	want[thr.Fingerprint()] = append(want[thr.Fingerprint()], "resolve")
	want[acked.Fingerprint()] = append(want[acked.Fingerprint()], "resolve")
	check("after 2h")
	if active, _ := e.st.Active(ctx, 100); len(active) != 0 {
		t.Errorf("active after every incident resolved: %v", active)
	}
	if inc := e.get(t, auth.Fingerprint()); inc.ResolvedBy != "quiet for 30m0s" {
		t.Errorf("resolved by %q, want the quiet period", inc.ResolvedBy)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	const initial, maxDelay = 5 * time.Second, 5 * time.Minute
	for _, tc := range []struct {
		tries   int64
		initial time.Duration
		max     time.Duration
		base    time.Duration // before jitter
	}{
		{0, initial, maxDelay, 5 * time.Second},
		{1, initial, maxDelay, 10 * time.Second},
		{3, initial, maxDelay, 40 * time.Second},
		{5, initial, maxDelay, 160 * time.Second},
		{6, initial, maxDelay, maxDelay}, // 320s: capped
		{20, initial, maxDelay, maxDelay},
		{29, initial, maxDelay, maxDelay},
		{1000, initial, maxDelay, maxDelay},
		// initial<<tries overflows int64 here: still the cap, not a wrapped value
		// (34.359738369s<<29 wraps to a positive 0.54s).
		{27, time.Minute, maxDelay, maxDelay},
		{28, time.Minute, maxDelay, maxDelay},
		{25, 5 * time.Minute, time.Hour, time.Hour},
		{29, 34359738369, maxDelay, maxDelay},
		{40, time.Hour, 2 * time.Hour, 2 * time.Hour},
		{62, time.Nanosecond, time.Hour, time.Hour},
	} {
		lo, hi := tc.base-tc.base/5, tc.base+tc.base/5
		seen := map[time.Duration]bool{}
		for range 200 {
			d := alert.Backoff(tc.tries, tc.initial, tc.max)
			if d < lo || d > hi {
				t.Errorf("Backoff(%d, %s, %s) = %s, want %s ± 20%% [%s, %s]", tc.tries, tc.initial, tc.max, d, tc.base, lo, hi)
				break
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("Backoff(%d, %s, %s) took %d values in 200 calls: no jitter", tc.tries, tc.initial, tc.max, len(seen))
		}
	}
	// Before the cap every try waits longer than any wait of the one before.
	for tries := int64(0); tries < 5; tries++ {
		if a, b := alert.Backoff(tries, initial, maxDelay), alert.Backoff(tries+1, initial, maxDelay); b <= a {
			t.Errorf("Backoff(%d) = %s, Backoff(%d) = %s: not growing", tries, a, tries+1, b)
		}
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	first := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	auth := alert.Incident{ID: fp530, Class: "auth_required", Code: "530", SendingDomain: "mail.example.com", SendingIP: "192.0.2.10",
		Messages: 1243, Recipients: 1201, FirstSeen: first, LastSeen: first.Add(5 * time.Minute)}
	with := func(f func(*alert.Incident)) alert.Incident { inc := auth; f(&inc); return inc }
	for _, tc := range []struct {
		name  string
		inc   alert.Incident
		title string
		want  string
	}{
		{"530", auth, "Authentication required",
			"SMTP 530 Authentication required for mail.example.com via 192.0.2.10 — 1,243 messages to 1,201 recipients in 5 min"},
		{"no title", auth, "", "SMTP 530 for mail.example.com via 192.0.2.10 — 1,243 messages to 1,201 recipients in 5 min"},
		{"one of each", with(func(i *alert.Incident) { i.Messages, i.Recipients, i.LastSeen = 1, 1, first.Add(59*time.Second) }), "Authentication required",
			"SMTP 530 Authentication required for mail.example.com via 192.0.2.10 — 1 message to 1 recipient in under a minute"},
		{"tenant, hours, no IP", with(func(i *alert.Incident) {
			i.Tenant, i.SendingIP, i.Messages, i.LastSeen = "acme", "", 1234567, first.Add(2*time.Hour+10*time.Minute)
		}), "Authentication required",
			"SMTP 530 Authentication required for mail.example.com (tenant acme) — 1,234,567 messages to 1,201 recipients in 2 h 10 min"},
		{"whole hours", with(func(i *alert.Incident) { i.LastSeen = first.Add(3 * time.Hour) }), "Authentication required",
			"SMTP 530 Authentication required for mail.example.com via 192.0.2.10 — 1,243 messages to 1,201 recipients in 3 h"},
		{"no code, no domain", with(func(i *alert.Incident) {
			i.Code, i.SendingDomain, i.SendingIP, i.Messages, i.Recipients = "", "", "", 999, 0
		}), "",
			"auth_required for an unknown sending domain — 999 messages to 0 recipients in 5 min"},
		{"mass bounce", alert.Incident{Class: alert.ClassMassBounce, ReceivingDomain: "example.net", Code: "5.1.1", Messages: 1500, Recipients: 1432,
			FirstSeen: first, LastSeen: first.Add(12 * time.Minute)}, "Bad destination mailbox address",
			"Mass bounce at example.net: 1,432 recipients answered 5.1.1 in 12 min; new suppressions for the domain are held"},
		{"mass bounce without a code", alert.Incident{Class: alert.ClassMassBounce, ReceivingDomain: "example.net", Recipients: 200, FirstSeen: first, LastSeen: first}, "",
			"Mass bounce at example.net: 200 recipients answered hard bounces in under a minute; new suppressions for the domain are held"},
	} {
		if got := alert.Summary(&tc.inc, tc.title); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// catalogStub is the catalog as the notifier asks it.
type catalogStub map[string]catalog.Entry

func (c catalogStub) Entry(code string) (catalog.Entry, bool) { e, ok := c[code]; return e, ok }

func TestNotification(t *testing.T) {
	t.Parallel()
	cfg := parse(t, `
runbook_url: "https://runbooks.example.com/rebound/{class}?code={code}&severity={severity}&id={id}"
external_url: "https://rebound.example.com/"
`)
	first := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	inc := alert.Incident{ID: fp530, State: alert.StateNotified, Class: "auth_required", Severity: "critical", Tenant: "acme",
		SendingDomain: "mail.example.com", SendingIP: "192.0.2.10", Code: "530", Rule: "smtp-530", ESP: "sendgrid",
		Messages: 1243, Recipients: 1201, FirstSeen: first, LastSeen: first.Add(5 * time.Minute), Reopened: 1,
		Examples: []string{"530 5.7.0 Authentication required"}, Domains: []string{"example.com"}, Fix: []string{"Check the credentials."}}
	cat := catalogStub{"530": {Code: "530", Title: "Authentication required", Meaning: "The server wants the client to log in."}}

	n := cfg.Notification(&inc, alert.Transition{Seq: 3, Kind: "trigger", At: first}, cat)
	if n.Kind != receiver.KindTrigger || n.ID != fp530 || n.Seq != 3 || !n.At.Equal(first) || n.State != "notified" || n.Reopened != 1 {
		t.Errorf("notification identity = %+v", n)
	}
	if n.CodeTitle != "Authentication required" || n.Meaning != "The server wants the client to log in." {
		t.Errorf("catalog fields = %q, %q", n.CodeTitle, n.Meaning)
	}
	if want := "SMTP 530 Authentication required for mail.example.com via 192.0.2.10 (tenant acme) — 1,243 messages to 1,201 recipients in 5 min"; n.Summary != want {
		t.Errorf("summary = %q, want %q", n.Summary, want)
	}
	if want := "https://runbooks.example.com/rebound/auth_required?code=530&severity=critical&id=" + fp530; n.RunbookURL != want {
		t.Errorf("runbook URL = %q, want %q", n.RunbookURL, want)
	}
	if want := "https://rebound.example.com/v1/alerts/" + fp530; n.IncidentURL != want {
		t.Errorf("incident URL = %q, want %q", n.IncidentURL, want)
	}
	if !slices.Equal(n.Examples, inc.Examples) || !slices.Equal(n.ReceivingDomains, inc.Domains) || !slices.Equal(n.Fix, inc.Fix) ||
		n.Messages != 1243 || n.Recipients != 1201 || n.Tenant != "acme" || n.ESP != "sendgrid" || n.Rule != "smtp-530" {
		t.Errorf("incident fields not carried: %+v", n)
	}

	// The transition's kind, and what a late resolve or an ack needs from it.
	resolvedAt := first.Add(time.Hour)
	for _, tc := range []struct {
		tr   alert.Transition
		kind receiver.Kind
	}{
		{alert.Transition{Seq: 4, Kind: "reminder", At: resolvedAt}, receiver.KindReminder},
		{alert.Transition{Seq: 4, Kind: "ack", At: resolvedAt, By: "token:alice"}, receiver.KindAck},
		{alert.Transition{Seq: 4, Kind: "resolve", At: resolvedAt, By: "ops"}, receiver.KindResolve},
	} {
		n := cfg.Notification(&inc, tc.tr, nil)
		if n.Kind != tc.kind {
			t.Errorf("%s: kind = %s", tc.tr.Kind, n.Kind)
		}
		if n.CodeTitle != "" || n.Summary != "SMTP 530 for mail.example.com via 192.0.2.10 (tenant acme) — 1,243 messages to 1,201 recipients in 5 min" {
			t.Errorf("%s without a catalog: title %q, summary %q", tc.tr.Kind, n.CodeTitle, n.Summary)
		}
		switch tc.kind {
		case receiver.KindAck:
			if n.AckedBy != "token:alice" {
				t.Errorf("ack by %q, want the transition's token:alice", n.AckedBy)
			}
		case receiver.KindResolve:
			if !n.ResolvedAt.Equal(resolvedAt) {
				t.Errorf("resolve at %v, want the transition's %v", n.ResolvedAt, resolvedAt)
			}
		}
	}
	// Without runbook and external URL, no links.
	if n := alert.Default().Notification(&inc, alert.Transition{Seq: 1, Kind: "trigger"}, nil); n.RunbookURL != "" || n.IncidentURL != "" {
		t.Errorf("links without configuration: %q, %q", n.RunbookURL, n.IncidentURL)
	}
}

// The notify role stops (SIGTERM) while a send is in flight and the receiver accepts
// it: the delivery is recorded all the same, or the next replica would page again
// once the lease ran out.
func TestShutdownDuringASendRecordsTheDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.observe(t, obs530("sg:1", "a@example.com"))
	ctx, cancel := context.WithCancel(t.Context())
	fr := &fakeReceiver{onSend: func(receiver.Notification) { cancel() }}
	n := newNotifier(e, alert.Default(), alert.Target{Name: "pager", Receiver: fr})
	n.DeliverDue(ctx, n.Targets[0])
	if d := e.get(t, fp530).Deliveries; len(d) != 1 || d[0].Sent != 1 {
		t.Fatalf("deliveries after a send during shutdown = %+v, want the trigger recorded as sent", d)
	}
	// Another replica, after the lease would have run out, has nothing to send.
	e.clk.Add(time.Hour)
	fr.onSend = nil
	other := newNotifier(e, alert.Default(), alert.Target{Name: "pager", Receiver: fr})
	other.Store = e.store()
	deliverAll(t, other)
	if got := fr.tried(); len(got) != 1 {
		t.Errorf("sends = %v, want the one trigger", got)
	}
}

// A resolve delivered late, after the incident reopened, still says who resolved it
// and when: the transition knows, the incident no longer does.
func TestLateResolveAfterReopen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.observe(t, obs530("sg:1", "a@example.com"))
	fr := &fakeReceiver{}
	fr.setDown(errNoAnswer)
	n := newNotifier(e, alert.Default(), alert.Target{Name: "pager", Receiver: fr})
	deliverAll(t, n)
	e.clk.Add(time.Minute)
	resolvedAt := e.clk.Now()
	if _, err := e.st.Resolve(ctx, fp530, "token:ops"); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(time.Minute)
	e.observe(t, obs530("sg:2", "a@example.com")) // reopens
	fr.setDown(nil)
	e.clk.Add(10 * time.Minute)
	deliverAll(t, n)
	got := fr.notes()
	if len(got) != 3 || got[1].Kind != receiver.KindResolve || got[2].Kind != receiver.KindTrigger {
		t.Fatalf("sent %v, want trigger, resolve, trigger", fr.sent())
	}
	if r := got[1]; !r.ResolvedAt.Equal(resolvedAt) || r.ResolvedBy != "token:ops" || !r.At.Equal(resolvedAt) {
		t.Errorf("late resolve: resolved at %v by %q, want %v by token:ops", r.ResolvedAt, r.ResolvedBy, resolvedAt)
	}
}

// A notifier used without Run (the API's test hook, a one-off delivery) has no clock
// set: it uses the wall clock rather than panic.
func TestNotifierWithoutClock(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	st := alert.NewStore(rdb, alert.StoreOptions{Prefix: testsvc.Prefix(t, rdb)})
	o := obs530("sg:1", "a@example.com")
	if _, err := st.Observe(t.Context(), []alert.Observation{o}); err != nil {
		t.Fatal(err)
	}
	fr := &fakeReceiver{}
	n := &alert.Notifier{Store: st, Config: alert.Default(), Targets: []alert.Target{{Name: "pager", Receiver: fr}}, Log: zap.NewNop(),
		Lifecycle: func() alert.Lifecycle { return lifecycle{def: time.Hour} }}
	n.DeliverDue(t.Context(), n.Targets[0])
	n.SweepOnce(t.Context())
	if got := fr.sent(); len(got) != 1 {
		t.Errorf("sent %v, want the trigger", got)
	}
}

// What the notifier counts: each attempt's outcome by receiver, kind and reason.
func TestDeliveryMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.observe(t, obs530("sg:1", "a@example.com"))
	fr := &fakeReceiver{}
	fr.answer(errUnavailable, nil, errBadRequest)
	n := newNotifier(e, alert.Default(), alert.Target{Name: "pager", Receiver: fr})
	n.Metrics = metrics.New()
	deliverAll(t, n) // trigger: 503, retried
	e.clk.Add(time.Minute)
	deliverAll(t, n) // trigger: sent
	if _, err := e.st.Ack(ctx, fp530, "ops"); err != nil {
		t.Fatal(err)
	}
	deliverAll(t, n) // ack: 400, dropped
	e.clk.Add(time.Hour)
	n.SweepOnce(ctx) // quiet for the default 30m: resolved
	m := n.Metrics
	for name, tc := range map[string]struct {
		got  float64
		want float64
	}{
		"sent trigger":         {value(t, m.AlertSent.WithLabelValues("pager", "trigger")), 1},
		"failed server_error":  {value(t, m.AlertFailed.WithLabelValues("pager", "server_error")), 1},
		"failed client_error":  {value(t, m.AlertFailed.WithLabelValues("pager", "client_error")), 1},
		"retried":              {value(t, m.AlertRetried.WithLabelValues("pager")), 1},
		"dropped client_error": {value(t, m.AlertDropped.WithLabelValues("pager", "client_error")), 1},
		"resolved quiet":       {value(t, m.IncidentsResolved.WithLabelValues("auth_required", "quiet")), 1},
		"active":               {value(t, m.IncidentsActive), 1}, // as the sweep found them, before resolving
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", name, tc.got, tc.want)
		}
	}
}

// An incident that expired (retention) while still queued leaves the due and active
// sets on the next pass instead of being looked at forever.
func TestVanishedIncidentLeavesTheQueues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.observe(t, obs530("sg:1", "a@example.com"))
	if err := e.rdb.Del(ctx, e.prefix+"alerts{a}:inc:"+fp530).Err(); err != nil {
		t.Fatal(err)
	}
	fr := &fakeReceiver{}
	n := newNotifier(e, alert.Default(), alert.Target{Name: "pager", Receiver: fr})
	deliverAll(t, n)
	e.clk.Add(time.Hour)
	n.SweepOnce(ctx)
	if due, _ := e.st.Due(ctx, 10); len(due) != 0 {
		t.Errorf("due = %v, want empty", due)
	}
	if active, _ := e.st.Active(ctx, 10); len(active) != 0 {
		t.Errorf("active = %v, want empty", active)
	}
	if len(fr.tried()) != 0 {
		t.Errorf("sent %v for a vanished incident", fr.tried())
	}
}

// value reads a counter or gauge.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
