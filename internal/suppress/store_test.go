package suppress_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// clock is an injected clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type bundle struct {
	store *suppress.Store
	clock *clock
	ctx   context.Context
}

func setup(t *testing.T) bundle {
	t.Helper()
	rdb := testsvc.RedisClient(t)
	clk := &clock{t: time.Now().Truncate(time.Millisecond)}
	st := suppress.New(rdb, suppress.Options{Prefix: testsvc.Prefix(t, rdb), Now: clk.Now})
	ctx := context.Background()
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	return bundle{store: st, clock: clk, ctx: ctx}
}

func hard(id, addr string) suppress.Change {
	return suppress.Change{EventID: id, ESP: "generic", Address: addr, Action: suppress.ActionSuppress,
		Reason: "recipient_unknown", Class: "recipient_unknown", Code: "5.1.1", Reply: "550 5.1.1 unknown"}
}

func soft(id, addr string) suppress.Change {
	return suppress.Change{EventID: id, ESP: "generic", Address: addr, Action: suppress.ActionSoft,
		Class: "mailbox_full", SoftWindow: 7 * 24 * time.Hour, SoftThreshold: 3, SoftTTL: 30 * 24 * time.Hour}
}

func apply(t *testing.T, b bundle, cs ...suppress.Change) []suppress.Outcome {
	t.Helper()
	out, err := b.store.Apply(b.ctx, cs)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for i, o := range out {
		if o.Err != nil {
			t.Fatalf("change %d: %v", i, o.Err)
		}
	}
	return out
}

func TestHardBounceSuppressesOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	out := apply(t, b, hard("generic:1", "a@example.com"))
	if !out[0].Suppressed || !out[0].Permanent || out[0].Duplicate {
		t.Fatalf("first apply = %+v, want a new permanent suppression", out[0])
	}
	again := apply(t, b, hard("generic:1", "a@example.com"))
	if !again[0].Duplicate || !again[0].Suppressed {
		t.Fatalf("redelivery = %+v, want duplicate and still suppressed", again[0])
	}
	rec, err := b.store.Suppression(b.ctx, "", "a@example.com")
	if err != nil || rec == nil {
		t.Fatalf("Suppression = %v, %v", rec, err)
	}
	if rec.Events != 1 || rec.EventID != "generic:1" || rec.ExpiresAt != nil || rec.Code != "5.1.1" {
		t.Fatalf("record = %+v, want one event, permanent, code 5.1.1", rec)
	}
	st, err := b.store.Recipient(b.ctx, "", "a@example.com")
	if err != nil || len(st.History) != 1 {
		t.Fatalf("history = %+v, %v; want exactly one entry after a redelivery", st.History, err)
	}
	list, err := b.store.ListSuppressions(b.ctx, "", 0, 10)
	if err != nil || len(list) != 1 || list[0].Address != "a@example.com" {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if r, _ := b.store.Suppression(b.ctx, "other-tenant", "a@example.com"); r != nil {
		t.Fatalf("suppression leaked into another tenant: %+v", r)
	}
}

func TestSoftBouncesSuppressAtThresholdAndDeliveredLifts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	addr := "full@example.com"
	for i, id := range []string{"generic:s1", "generic:s2"} {
		out := apply(t, b, soft(id, addr))
		if out[0].Suppressed || out[0].SoftCount != i+1 {
			t.Fatalf("soft %d = %+v, want count %d and not suppressed", i+1, out[0], i+1)
		}
		b.clock.Add(time.Hour)
	}
	// A redelivered soft bounce must not count twice.
	if out := apply(t, b, soft("generic:s2", addr)); out[0].SoftCount != 2 || !out[0].Duplicate {
		t.Fatalf("redelivered soft = %+v, want duplicate with count 2", out[0])
	}
	out := apply(t, b, soft("generic:s3", addr))
	if !out[0].Suppressed || out[0].Permanent || out[0].ExpiresAt.IsZero() {
		t.Fatalf("third soft = %+v, want a suppression with expiry", out[0])
	}
	if want := b.clock.Now().Add(30 * 24 * time.Hour); !out[0].ExpiresAt.Equal(want.UTC()) {
		t.Fatalf("expires_at = %v, want %v", out[0].ExpiresAt, want)
	}
	del := suppress.Change{EventID: "generic:d1", ESP: "generic", Address: addr, Action: suppress.ActionReset}
	out = apply(t, b, del)
	if !out[0].Lifted || out[0].Suppressed || out[0].SoftCount != 0 {
		t.Fatalf("delivered = %+v, want the soft suppression lifted and the window cleared", out[0])
	}
	if list, _ := b.store.ListSuppressions(b.ctx, "", 0, 10); len(list) != 0 {
		t.Fatalf("lifted suppression still listed: %+v", list)
	}
}

func TestSoftWindowSlides(t *testing.T) {
	t.Parallel()
	b := setup(t)
	addr := "slow@example.com"
	apply(t, b, soft("generic:w1", addr))
	b.clock.Add(8 * 24 * time.Hour) // past the 7-day window
	apply(t, b, soft("generic:w2", addr))
	out := apply(t, b, soft("generic:w3", addr))
	if out[0].Suppressed || out[0].SoftCount != 2 {
		t.Fatalf("= %+v, want the old bounce forgotten (count 2, not suppressed)", out[0])
	}
	st, err := b.store.RecipientWindow(b.ctx, "", addr, 7*24*time.Hour)
	if err != nil || st.SoftBounces != 2 || st.SoftSince == nil || !st.SoftSince.Equal(b.clock.Now().UTC()) {
		t.Fatalf("RecipientWindow = %d since %v, %v; want 2 since now (the old one is outside the window even if not trimmed yet)", st.SoftBounces, st.SoftSince, err)
	}
}

func TestDeliveredNeverLiftsHardSuppression(t *testing.T) {
	t.Parallel()
	b := setup(t)
	apply(t, b, hard("generic:h1", "gone@example.com"))
	out := apply(t, b, suppress.Change{EventID: "generic:d", ESP: "generic", Address: "gone@example.com", Action: suppress.ActionReset})
	if out[0].Lifted || !out[0].Suppressed {
		t.Fatalf("= %+v, want the hard suppression kept", out[0])
	}
}

func TestPermanentIsNotShortenedBySoftThreshold(t *testing.T) {
	t.Parallel()
	b := setup(t)
	addr := "x@example.com"
	apply(t, b, hard("generic:p1", addr))
	for _, id := range []string{"generic:q1", "generic:q2", "generic:q3"} {
		apply(t, b, soft(id, addr))
	}
	rec, _ := b.store.Suppression(b.ctx, "", addr)
	if rec == nil || rec.ExpiresAt != nil || rec.Reason != "recipient_unknown" {
		t.Fatalf("record = %+v, want the permanent hard suppression unchanged", rec)
	}
}

func TestRecoversFromFlushedScriptCache(t *testing.T) {
	t.Parallel()
	// A private server: SCRIPT FLUSH would disturb tests sharing the common one.
	p := testsvc.StartRedis(t)
	rdb := testsvc.RedisClientAt(t, p.Addr)
	st := suppress.New(rdb, suppress.Options{Prefix: "t:"})
	ctx := context.Background()
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	out, err := st.Apply(ctx, []suppress.Change{hard("generic:n1", "n@example.com")})
	if err != nil || out[0].Err != nil || !out[0].Suppressed {
		t.Fatalf("after SCRIPT FLUSH: %+v, %v", out, err)
	}
}

func TestRedisDownFailsTheBatch(t *testing.T) {
	t.Parallel()
	p := testsvc.StartRedis(t)
	rdb := testsvc.RedisClientAt(t, p.Addr)
	st := suppress.New(rdb, suppress.Options{Prefix: "t:"})
	p.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := st.Apply(ctx, []suppress.Change{hard("generic:k1", "k@example.com")}); err == nil {
		t.Fatal("Apply with Redis down returned no error: the caller would ack an event that was not stored")
	}
}
