package alert

import (
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/testsvc"
)

// testClock is the injected clock of the internal tests (the external ones have
// their own; the two test packages cannot share it).
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newTestStore(t *testing.T) (*Store, *testClock, *redis.Client, string) {
	t.Helper()
	rdb := testsvc.RedisClient(t)
	prefix := testsvc.Prefix(t, rdb)
	clk := &testClock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	return NewStore(rdb, StoreOptions{Prefix: prefix, Now: clk.Now}), clk, rdb, prefix
}

func openIncident(t *testing.T, s *Store) string {
	t.Helper()
	o := Observation{EventID: "sg:1", Tenant: "acme", Class: "auth_required", SendingDomain: "mail.example.com", Recipient: "a@example.com"}
	out, err := s.Observe(t.Context(), []Observation{o})
	if err != nil || out[0].Err != nil || !out[0].Opened {
		t.Fatalf("Observe = %+v, %v", out, err)
	}
	return out[0].Fingerprint
}

func mustClaim(t *testing.T, s *Store, id, r, token string, want claimResult) Claim {
	t.Helper()
	c, res, err := s.claim(t.Context(), id, r, token, 30*time.Second)
	if err != nil || res != want {
		t.Fatalf("claim(%s, %s) = %+v, %d, %v; want result %d", r, token, c, res, err, want)
	}
	return c
}

func mustFinish(t *testing.T, s *Store, c Claim, outcome string, next time.Time, want bool) {
	t.Helper()
	ok, err := s.finish(t.Context(), c, outcome, next, "boom")
	if err != nil || ok != want {
		t.Fatalf("finish(%s, %s, %s) = %v, %v; want %v", c.Receiver, c.token, outcome, ok, err, want)
	}
}

// The lease: one claimer at a time, a finish counts only with the lease, a lease that
// ran out passes to the next claimer and its old holder can no longer record anything.
func TestClaimLease(t *testing.T) {
	t.Parallel()
	s, clk, _, _ := newTestStore(t)
	id := openIncident(t, s)

	a := mustClaim(t, s, id, "pager", "A", claimed)
	if a.Transition.Seq != 1 || a.Transition.Kind != "trigger" || a.Tries != 0 {
		t.Fatalf("claim = %+v, want the trigger, no tries", a)
	}
	mustClaim(t, s, id, "pager", "B", leased)
	mustClaim(t, s, id, "chat", "C", claimed) // leases are per receiver
	mustFinish(t, s, Claim{ID: id, Receiver: "pager", Transition: a.Transition, token: "B"}, "done", time.Time{}, false)

	// A retry: nothing to claim until the retry time, then the same transition with
	// its tries counted.
	mustFinish(t, s, a, "retry", clk.Now().Add(10*time.Second), true)
	mustClaim(t, s, id, "pager", "D", later)
	clk.Add(10 * time.Second)
	d := mustClaim(t, s, id, "pager", "D", claimed)
	if d.Transition.Seq != 1 || d.Tries != 1 {
		t.Fatalf("claim after the retry time = %+v, want the trigger again, 1 try", d)
	}

	// D's holder stalls past its lease: E takes over; D can neither finish nor undo E.
	clk.Add(31 * time.Second)
	e := mustClaim(t, s, id, "pager", "E", claimed)
	mustFinish(t, s, d, "retry", clk.Now().Add(time.Hour), false)
	mustFinish(t, s, e, "done", time.Time{}, true)
	mustFinish(t, s, d, "done", time.Time{}, false)
	mustClaim(t, s, id, "pager", "F", upToDate)

	inc, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if inc.State != StateNotified {
		t.Errorf("state = %s, want notified", inc.State)
	}
	for _, dl := range inc.Deliveries {
		if dl.Receiver == "pager" && (dl.Sent != 1 || dl.Tries != 0 || !dl.NextTry.IsZero() || dl.LastError != "") {
			t.Errorf("pager delivery = %+v, want sent 1 and clean", dl)
		}
	}
}

// A receiver further behind than the kept transitions resumes at the oldest kept one.
func TestClaimSkipsTrimmedTransitions(t *testing.T) {
	t.Parallel()
	s, clk, _, _ := newTestStore(t)
	id := openIncident(t, s)
	for range 3 * keepTransitions {
		clk.Add(time.Hour)
		if ok, err := s.Remind(t.Context(), id, time.Hour); !ok || err != nil {
			t.Fatalf("Remind = %v, %v", ok, err)
		}
	}
	seq := int64(3*keepTransitions + 1)
	c := mustClaim(t, s, id, "late", "A", claimed)
	if want := seq - keepTransitions + 1; c.Transition.Seq != want || c.Transition.Kind != "reminder" {
		t.Errorf("claim of a receiver behind = %+v, want the oldest kept (seq %d)", c.Transition, want)
	}
	mustFinish(t, s, c, "drop", time.Time{}, true)
	if c := mustClaim(t, s, id, "late", "B", claimed); c.Transition.Seq != seq-keepTransitions+2 {
		t.Errorf("next claim = seq %d, want %d", c.Transition.Seq, seq-keepTransitions+2)
	}
}

// settle keeps the incident on the due set exactly as long as a routed receiver is
// behind, at the earliest time one of them can be tried.
func TestSettle(t *testing.T) {
	t.Parallel()
	s, clk, rdb, _ := newTestStore(t)
	ctx := t.Context()
	id := openIncident(t, s)
	due := func() float64 {
		t.Helper()
		v, err := rdb.ZScore(ctx, s.keys.due(), id).Result()
		if err == redis.Nil {
			return -1
		}
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ms := func(tm time.Time) float64 { return float64(tm.UnixMilli()) }
	settle := func(receivers ...string) {
		t.Helper()
		if err := s.settle(ctx, id, receivers); err != nil {
			t.Fatal(err)
		}
	}

	// Both behind, one in back-off: due now, for the other.
	a := mustClaim(t, s, id, "a", "A", claimed)
	mustFinish(t, s, a, "retry", clk.Now().Add(time.Minute), true)
	settle("a", "b")
	if got := due(); got != ms(clk.Now()) {
		t.Errorf("due = %v, want now %v", got, ms(clk.Now()))
	}
	// b up to date: due when a's retry is.
	b := mustClaim(t, s, id, "b", "B", claimed)
	settle("a", "b")
	if got := due(); got != ms(clk.Now().Add(30*time.Second)) {
		t.Errorf("due with b's lease held = %v, want the lease end", got)
	}
	mustFinish(t, s, b, "done", time.Time{}, true)
	settle("a", "b")
	if got := due(); got != ms(clk.Now().Add(time.Minute)) {
		t.Errorf("due = %v, want a's retry time %v", got, ms(clk.Now().Add(time.Minute)))
	}
	// Routed to b only (the routes changed): nothing pending, off the due set.
	settle("b")
	if got := due(); got != -1 {
		t.Errorf("due = %v, want off the due set", got)
	}
	// A new transition puts it back, for everyone.
	if _, err := s.Ack(ctx, id, "ops"); err != nil {
		t.Fatal(err)
	}
	if got := due(); got != ms(clk.Now()) {
		t.Errorf("due after an ack = %v, want now", got)
	}
}
