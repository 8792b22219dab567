package test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestTopology runs one state suite against every Redis topology Rebound supports
// (REBOUND_REDIS_URL, REBOUND_REDIS_SENTINEL_*, REBOUND_REDIS_CLUSTER_ADDRS all end in a
// go-redis UniversalClient): the shared single server, a Sentinel setup that fails
// over in the middle of the suite (planned, and by a crash of the master), and a
// three-master Cluster whose script caches are flushed in the middle.
func TestTopology(t *testing.T) {
	t.Parallel()
	t.Run("single", func(t *testing.T) {
		t.Parallel()
		stateSuite(t, testsvc.RedisClient(t), nil)
	})
	// Two Sentinel runs: a planned failover (SENTINEL FAILOVER) and a crash of the master
	// (SIGKILL, noticed after down-after-milliseconds). Both wait first until the replica
	// holds every write: replication is asynchronous, and a failover right after a write
	// may lose it in any Redis deployment. What they prove is that Rebound's state
	// (records, windows, idempotency keys, incidents, held suppressions) lives entirely
	// in replicated keys, and that the client follows the new master, which has no
	// scripts loaded (Apply falls back to EVAL).
	for _, crash := range []bool{false, true} {
		name := "sentinel/failover"
		if crash {
			name = "sentinel/crash"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := testsvc.StartSentinel(t)
			rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: []string{s.Addr}, DialTimeout: time.Second})
			t.Cleanup(func() { _ = rdb.Close() })
			stateSuite(t, rdb, func(t *testing.T) {
				old, err := s.MasterAddr(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				var addr string
				if crash {
					s.WaitReplicated(t)
					addr = s.KillMaster(t)
				} else {
					addr = s.Failover(t)
				}
				waitServedBy(t, rdb, addr)
				t.Logf("master %s → %s in %s", old, addr, time.Since(start).Round(time.Millisecond))
			})
		})
	}
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		c := testsvc.StartCluster(t)
		rdb := c.Client(t)
		// Load must put the scripts on every master, not only on the one a keyless
		// command happens to reach.
		prefix := testsvc.Prefix(t, rdb)
		st := suppress.New(rdb, suppress.Options{Prefix: prefix})
		if err := st.Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := guard.New(guard.Config{Redis: rdb, Prefix: prefix, Store: st}).Load(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, addr := range c.Addrs {
			info, err := testsvc.RedisClientAt(t, addr).Info(context.Background(), "memory").Result()
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := strconv.Atoi(infoField(info, "number_of_cached_scripts")); n < 3 {
				t.Fatalf("master %s has %d cached scripts after Store.Load and Guard.Load, want the 2 of suppress and the guard's", addr, n)
			}
		}
		stateSuite(t, rdb, func(t *testing.T) {
			// As after a restart of every master: the next batch meets NOSCRIPT on
			// whichever slots it touches and must fall back to EVAL.
			if err := rdb.ScriptFlush(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// stateSuite exercises the Redis state on any topology. mid, if set, runs after the
// first half has written its state (a failover, a script-cache flush); the second half
// checks that everything written before is intact, that replaying it changes nothing,
// and goes on writing.
func stateSuite(t *testing.T, rdb redis.UniversalClient, mid func(t *testing.T)) {
	ctx := context.Background()
	clk := &manualClock{t: time.Now().Truncate(time.Millisecond)}
	prefix := testsvc.Prefix(t, rdb)
	st := suppress.New(rdb, suppress.Options{Prefix: prefix, Now: clk.Now})
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// The incidents live in the alert package's keys, all on one slot: its scripts must
	// run on every topology too.
	as := alert.NewStore(rdb, alert.StoreOptions{Prefix: prefix, Now: clk.Now})
	if err := as.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// The mass-bounce guard's keys share one slot per receiving domain.
	gd := guard.New(guard.Config{Redis: rdb, Prefix: prefix, Store: st, Alerts: as, Now: clk.Now})
	if err := gd.Load(ctx); err != nil {
		t.Fatal(err)
	}
	const (
		gone   = "gone@example.com"
		full   = "full@example.net"
		outage = "outage.example"
	)
	var before []suppress.Change // every change of the first half, replayed after mid

	// A hard bounce suppresses once; its redelivery changes nothing.
	h := hardChange("generic:h1", gone)
	out := applyAll(t, st, h)
	if o := out[0]; !o.Suppressed || !o.Permanent || o.Duplicate {
		t.Fatalf("hard bounce = %+v, want a new permanent suppression", o)
	}
	if o := applyAll(t, st, h)[0]; !o.Duplicate || !o.Suppressed {
		t.Fatalf("hard bounce again = %+v, want a duplicate, still suppressed", o)
	}
	before = append(before, h)

	// Soft bounces count up and suppress, with an expiry, at the third in the window.
	for i := 1; i <= 3; i++ {
		s := softChange(fmt.Sprintf("generic:s%d", i), full)
		o := applyAll(t, st, s)[0]
		if o.SoftCount != i || o.Suppressed != (i == 3) {
			t.Fatalf("soft bounce %d = %+v, want count %d, suppressed %v", i, o, i, i == 3)
		}
		before = append(before, s)
	}
	if rec := suppression(t, st, full); rec.Reason != "soft_bounce_threshold" || rec.ExpiresAt == nil || !rec.ExpiresAt.Equal(clk.Now().Add(30*24*time.Hour)) {
		t.Fatalf("soft-threshold record = %+v, want reason soft_bounce_threshold expiring in 30 days", rec)
	}

	// A sender-side fault opens one incident however often it is seen, and queues one
	// notification; in one batch a repeated event ID counts once.
	a1, a2 := alertObservation("generic:a1", "x@example.com"), alertObservation("generic:a2", "y@example.com")
	incOut, err := as.Observe(ctx, []alert.Observation{a1, a2, a1})
	if err != nil {
		t.Fatal(err)
	}
	if !incOut[0].Opened || incOut[1].Opened || incOut[1].Count != 2 || !incOut[2].Duplicate || incOut[0].Err != nil {
		t.Fatalf("incident outcomes = %+v, want opened once, count 2, the repeat a duplicate", incOut)
	}

	// The mass-bounce guard: the third distinct recipient of one domain within the
	// window holds the domain; from then on its suppressions are pending, not written,
	// and each counts into the domain's mass_bounce incident (as the process role does).
	mb := policy.MassBounce{Enabled: true, Window: 10 * time.Minute, Threshold: 3, HoldFor: time.Hour, OnRecovery: "hold"}
	for i := 1; i <= 5; i++ {
		c := hardChange(fmt.Sprintf("generic:g%d", i), fmt.Sprintf("u%d@%s", i, outage))
		res, err := gd.Hold(ctx, mb, map[string][]suppress.Change{outage: {c}})
		if err != nil {
			t.Fatal(err)
		}
		// One tenant (the default one) holds at its threshold: that tenant's hold.
		r := res[outage]
		tr := r.Tenants[""]
		held := r.Changes[0] != guard.NotHeld
		if tr.Count != i || held != (i >= 3) || tr.Held != (i >= 3) || tr.NewlyHeld != (i == 3) {
			t.Fatalf("guard after %d recipients = %+v, want held from the 3rd, newly at the 3rd", i, r)
		}
		if !held {
			applyAll(t, st, c)
			before = append(before, c)
			continue
		}
		o, err := as.Observe(ctx, []alert.Observation{{EventID: c.EventID, Class: alert.ClassMassBounce, Severity: "high",
			ReceivingDomain: outage, Recipient: c.Address, Code: c.Code, Rule: "mass_bounce_guard", Fix: guard.FixSteps(outage)}})
		if err != nil || o[0].Err != nil || o[0].Opened != (i == 3) {
			t.Fatalf("mass-bounce observation %d = %+v, %v, want the incident opened by the first held", i, o, err)
		}
	}

	if mid != nil {
		mid(t)
	}

	// Everything written before is there, and replaying it (a redelivery after the
	// failover) is recognised as duplicates: the idempotency keys survived too.
	for i, o := range applyAll(t, st, before...) {
		if !o.Duplicate {
			t.Fatalf("replay of %s = %+v, want a duplicate", before[i].EventID, o)
		}
	}
	if rec := suppression(t, st, gone); rec.Events != 1 || rec.ExpiresAt != nil || rec.EventID != "generic:h1" {
		t.Fatalf("hard record = %+v, want one event, permanent", rec)
	}
	if rec := suppression(t, st, full); rec.Reason != "soft_bounce_threshold" || rec.Events != 1 {
		t.Fatalf("soft record = %+v, want the soft-threshold suppression", rec)
	}

	// Delivered lifts the soft-threshold suppression and clears the window, but never a
	// hard one.
	if o := applyAll(t, st, resetChange("generic:d1", full))[0]; !o.Lifted || o.Suppressed || o.SoftCount != 0 {
		t.Fatalf("delivered after soft threshold = %+v, want lifted", o)
	}
	if o := applyAll(t, st, resetChange("generic:d2", gone))[0]; o.Lifted || !o.Suppressed {
		t.Fatalf("delivered after hard bounce = %+v, want still suppressed", o)
	}
	rs, err := st.Recipient(ctx, "", full)
	if err != nil || rs.Suppression != nil || rs.SoftBounces != 0 || len(rs.History) != 4 {
		t.Fatalf("recipient after delivered = %+v, %v, want not suppressed, no soft bounces, 4 history entries", rs, err)
	}

	// Listings read keys of many slots: the index, then every record.
	wantListed := []string{gone, "u1@" + outage, "u2@" + outage}
	assertListed(t, st, wantListed)
	// The incident survived too: a replay counts nothing, and its trigger is delivered
	// once through the claim and finish scripts.
	if o, err := as.Observe(ctx, []alert.Observation{a1, a2}); err != nil || !o[0].Duplicate || !o[1].Duplicate {
		t.Fatalf("incident replay = %+v, %v, want duplicates", o, err)
	}
	rec := &recordingReceiver{}
	nt := &alert.Notifier{Store: as, Config: alert.Default(), Targets: []alert.Target{{Name: "pager", Receiver: rec, All: true}},
		Log: zap.NewNop(), Now: clk.Now}
	nt.DeliverDue(ctx, nt.Targets[0])
	nt.DeliverDue(ctx, nt.Targets[0])
	incs, err := as.List(ctx, alert.Filter{State: "open", Class: "auth_required"})
	if err != nil || len(incs) != 1 || incs[0].Messages != 2 || incs[0].State != alert.StateNotified || incs[0].Recipients != 2 {
		t.Fatalf("open auth_required incidents = %+v, %v, want one notified incident of 2 events to 2 recipients", incs, err)
	}
	mbInc, err := as.Get(ctx, guard.IncidentID(outage))
	if err != nil || mbInc.State != alert.StateNotified || mbInc.Messages != 3 || mbInc.ReceivingDomain != outage {
		t.Fatalf("mass_bounce incident = %+v, %v, want notified, 3 held events of %s", mbInc, err, outage)
	}
	if got := rec.kinds(); len(got) != 2 || got[0] != "trigger" || got[1] != "trigger" {
		t.Fatalf("notifications = %v, want one trigger per incident", got)
	}

	// Releasing the hold with apply writes the three held suppressions and resolves the
	// domain's incident.
	held, err := gd.Held(ctx)
	if err != nil || len(held) != 1 || held[0].Domain != outage || held[0].Pending != 3 {
		t.Fatalf("Held = %+v, %v, want %s with 3 pending", held, err, outage)
	}
	n, err := gd.Release(ctx, outage, true)
	if err != nil || n != 3 {
		t.Fatalf("Release(apply) = %d, %v, want 3", n, err)
	}
	if inc, err := as.Get(ctx, guard.IncidentID(outage)); err != nil || inc.State != alert.StateResolved || inc.ResolvedBy != "mass-bounce apply" {
		t.Fatalf("mass_bounce incident after release = %+v, %v, want resolved by mass-bounce apply", inc, err)
	}
	for i := 3; i <= 5; i++ {
		addr := fmt.Sprintf("u%d@%s", i, outage)
		// The released record keeps the held event's own ID (the log has the release).
		if rec := suppression(t, st, addr); rec.EventID != fmt.Sprintf("generic:g%d", i) || rec.Reason != "recipient_unknown" || rec.ExpiresAt != nil {
			t.Fatalf("released %s = %+v, want the held hard suppression", addr, rec)
		}
		wantListed = append(wantListed, addr)
	}
	assertListed(t, st, wantListed)
	if held, err := gd.Held(ctx); err != nil || len(held) != 0 {
		t.Fatalf("Held after release = %+v, %v, want none", held, err)
	}
	if _, err := gd.Release(ctx, outage, true); !errors.Is(err, guard.ErrNotHeld) {
		t.Fatalf("second Release = %v, want ErrNotHeld", err)
	}

	// Soft bounces older than the window no longer count (the injected clock moves).
	w := "window@example.net"
	applyAll(t, st, softChange("generic:w1", w), softChange("generic:w2", w))
	clk.Add(8 * 24 * time.Hour)
	if o := applyAll(t, st, softChange("generic:w3", w))[0]; o.SoftCount != 1 || o.Suppressed {
		t.Fatalf("soft bounce after the window = %+v, want count 1, not suppressed", o)
	}
}

// manualClock is an injected clock the test moves by hand.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *manualClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func hardChange(id, addr string) suppress.Change {
	return suppress.Change{EventID: id, ESP: "generic", Address: addr, Action: suppress.ActionSuppress,
		Reason: "recipient_unknown", Class: "recipient_unknown", Code: "5.1.1", Reply: "550 5.1.1 user unknown"}
}

func softChange(id, addr string) suppress.Change {
	return suppress.Change{EventID: id, ESP: "generic", Address: addr, Action: suppress.ActionSoft,
		Class: "mailbox_full", Code: "4.2.2", SoftWindow: 7 * 24 * time.Hour, SoftThreshold: 3, SoftTTL: 30 * 24 * time.Hour}
}

func resetChange(id, addr string) suppress.Change {
	return suppress.Change{EventID: id, ESP: "generic", Address: addr, Action: suppress.ActionReset}
}

func alertObservation(id, addr string) alert.Observation {
	return alert.Observation{EventID: id, Class: "auth_required", Severity: "critical", SendingDomain: "mail.example.org",
		Recipient: addr, Code: "530", Reply: "530 5.7.0 Authentication required", Rule: "generic.auth_required",
		Fix: []string{"Check the SMTP credentials."}}
}

// recordingReceiver keeps the kinds of what it was sent.
type recordingReceiver struct {
	mu   sync.Mutex
	sent []receiver.Notification
}

func (r *recordingReceiver) Send(_ context.Context, n receiver.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, n)
	return nil
}

func (r *recordingReceiver) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range r.sent {
		out = append(out, string(n.Kind))
	}
	return out
}

// applyAll applies a batch and fails the test on any error, of the batch or of one change.
func applyAll(t *testing.T, st *suppress.Store, cs ...suppress.Change) []suppress.Outcome {
	t.Helper()
	out, err := st.Apply(context.Background(), cs)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for i, o := range out {
		if o.Err != nil {
			t.Fatalf("change %d (%s): %v", i, cs[i].EventID, o.Err)
		}
	}
	return out
}

func suppression(t *testing.T, st *suppress.Store, addr string) *suppress.Record {
	t.Helper()
	rec, err := st.Suppression(context.Background(), "", addr)
	if err != nil || rec == nil {
		t.Fatalf("Suppression(%s) = %v, %v, want a record", addr, rec, err)
	}
	return rec
}

func assertListed(t *testing.T, st *suppress.Store, want []string) {
	t.Helper()
	recs, err := st.ListSuppressions(context.Background(), "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Address)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("ListSuppressions = %v, want %v", got, want)
	}
}

// waitServedBy waits until the client's commands, plain and pipelined (Apply's path),
// reach the server at addr: the failover client has followed the new master.
func waitServedBy(t *testing.T, rdb redis.UniversalClient, addr string) {
	t.Helper()
	_, port, _ := strings.Cut(addr, ":")
	deadline := time.Now().Add(15 * time.Second)
	for ok := 0; ok < 3; {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		plain := rdb.Info(ctx, "server")
		pipe := rdb.Pipeline()
		piped := pipe.Info(ctx, "server")
		_, _ = pipe.Exec(ctx)
		cancel()
		if infoField(plain.Val(), "tcp_port") == port && infoField(piped.Val(), "tcp_port") == port {
			ok++
			continue
		}
		ok = 0
		if time.Now().After(deadline) {
			t.Fatalf("client still not served by the new master %s: %v / %v", addr, plain.Err(), piped.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// infoField returns one "name:value" field of an INFO reply.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}
