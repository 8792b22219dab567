package alert_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// clock is the injected clock: tests move it by hand instead of sleeping, so a quiet
// period of 30 minutes or a day's give-up time costs nothing.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock starts at a fixed instant (whole seconds) so that times read back from
// Redis, which keeps milliseconds, compare equal.
func newClock() *clock { return &clock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// env is one test's store on the shared Redis under a private prefix.
type env struct {
	rdb    *redis.Client
	prefix string
	clk    *clock
	st     *alert.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rdb := testsvc.RedisClient(t)
	e := &env{rdb: rdb, prefix: testsvc.Prefix(t, rdb), clk: newClock()}
	e.st = e.store()
	if err := e.st.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	return e
}

// store returns another Store value on the same Redis, prefix and clock: what a second
// replica of the process or notify role has.
func (e *env) store() *alert.Store {
	return alert.NewStore(e.rdb, alert.StoreOptions{Prefix: e.prefix, Now: e.clk.Now})
}

// obs530 is one event of the canonical sender-side fault: SMTP 530, our own
// credentials rejected, for one sending path.
func obs530(id, rcpt string) alert.Observation {
	return alert.Observation{
		EventID: id, Tenant: "acme", Class: "auth_required", Severity: "critical",
		SendingDomain: "mail.example.com", SendingIP: "192.0.2.10", Recipient: rcpt,
		Code: "530", Rule: "smtp-530", ESP: "sendgrid", Reply: "530 5.7.0 Authentication required",
		Fix: []string{"Check the SMTP credentials.", "Rotate the API key."},
	}
}

// observe observes a batch and fails the test on any error, the batch's or an event's.
func (e *env) observe(t *testing.T, obs ...alert.Observation) []alert.Outcome {
	t.Helper()
	out, err := e.st.Observe(t.Context(), obs)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	for i, o := range out {
		if o.Err != nil {
			t.Fatalf("Observe event %d: %v", i, o.Err)
		}
	}
	return out
}

func (e *env) get(t *testing.T, id string) alert.Incident {
	t.Helper()
	inc, err := e.st.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return inc
}

// kinds lists the transitions' kinds, oldest first.
func kinds(ts []alert.Transition) []string {
	out := make([]string, len(ts))
	for i, tr := range ts {
		out[i] = tr.Kind
	}
	return out
}

// fakeReceiver stands in for an integration: it records what it was sent and answers
// with scripted errors, so the delivery machinery is tested without any network.
type fakeReceiver struct {
	mu       sync.Mutex
	got      []receiver.Notification     // accepted sends, in order
	attempts []receiver.Notification     // every call, accepted or not
	script   []error                     // answers for the next calls, in order; then down, then nil
	down     error                       // answer while set (after the script is used up)
	onSend   func(receiver.Notification) // runs inside Send, e.g. to cancel the caller's context
}

var _ receiver.Receiver = (*fakeReceiver)(nil)

func (f *fakeReceiver) Send(_ context.Context, n receiver.Notification) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts = append(f.attempts, n)
	if f.onSend != nil {
		f.onSend(n)
	}
	var err error
	switch {
	case len(f.script) > 0:
		err, f.script = f.script[0], f.script[1:]
	case f.down != nil:
		err = f.down
	}
	if err == nil {
		f.got = append(f.got, n)
	}
	return err
}

// setDown makes every later send fail with err (nil: the receiver is back).
func (f *fakeReceiver) setDown(err error) { f.mu.Lock(); f.down = err; f.mu.Unlock() }

func (f *fakeReceiver) answer(errs ...error) {
	f.mu.Lock()
	f.script = append(f.script, errs...)
	f.mu.Unlock()
}

// sent returns "kind:id:seq" for each accepted notification, in order.
func (f *fakeReceiver) sent() []string { f.mu.Lock(); defer f.mu.Unlock(); return describe(f.got) }

func (f *fakeReceiver) tried() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return describe(f.attempts)
}

func (f *fakeReceiver) notes() []receiver.Notification {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]receiver.Notification(nil), f.got...)
}

func describe(ns []receiver.Notification) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, string(n.Kind)+":"+short(n.ID)+":"+strconv.FormatInt(n.Seq, 10))
	}
	return out
}

// short keeps test failure messages readable: incident IDs are 24 hex digits.
func short(id string) string {
	if len(id) > 6 {
		return id[:6]
	}
	return id
}

// Errors a receiver can answer with, as the real ones build them.
var (
	errUnavailable = &receiver.Error{Status: 503, Retry: true, Reason: "server_error", Err: errors.New("Service Unavailable")}
	errBadRequest  = &receiver.Error{Status: 400, Reason: "client_error", Err: errors.New("invalid payload")}
	errNoAnswer    = &receiver.Error{Retry: true, Reason: "network", Err: errors.New("connection refused")}
)
