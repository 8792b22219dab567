package process_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/process"
	"github.com/reboundhq/rebound/internal/stream"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// manualClock is a process.Clock that moves only when the test says so.
type manualClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []manualWaiter
}

type manualWaiter struct {
	at time.Time
	ch chan time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, manualWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock and fires every timer that is due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
			continue
		}
		kept = append(kept, w)
	}
	c.waiters = kept
}

// eventually polls cond (each poll first running step, e.g. moving the clock) until it
// holds or the real-time timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, step func(), cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		if step != nil {
			step()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func gauge(t *testing.T, m *metrics.Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			v := 0.0
			for _, s := range mf.GetMetric() {
				v += s.GetGauge().GetValue() + s.GetCounter().GetValue()
			}
			return v
		}
	}
	return 0
}

// TestRedisOutagePausesConsumption: with Redis down the processor stops pulling and
// reports not ready; the events published meanwhile stay undelivered in the stream (no
// deliveries burnt), and once Redis answers every event is applied.
func TestRedisOutagePausesConsumption(t *testing.T) {
	t.Parallel()
	srv := testsvc.StartRedis(t)
	rdb := testsvc.RedisClientAt(t, srv.Addr)
	clk := newManualClock()
	b := setupConfig(t, rdb, 50, policy.Default, func(c *process.Config) { c.Clock = clk })
	b.publish(t, event("p0", "before@example.com", "550 5.1.1 user unknown"))
	b.wait(t, 1, 15*time.Second)
	if err := b.proc.Ready(); err != nil {
		t.Fatalf("Ready before the outage = %v", err)
	}

	srv.Kill()
	b.publish(t, event("p1", "first@example.com", "550 5.1.1 user unknown"))
	eventually(t, 15*time.Second, "paused after the failed batch", nil, func() bool { return b.proc.Ready() != nil })
	if err := b.proc.Ready(); !strings.Contains(err.Error(), "paused") {
		t.Fatalf("Ready = %v, want it to say consumption is paused", err)
	}
	if v := gauge(t, b.metrics, "rebound_process_paused"); v != 1 {
		t.Fatalf("rebound_process_paused = %v, want 1", v)
	}
	const more = 30
	for i := range more {
		b.publish(t, event(fmt.Sprintf("p%d", i+2), fmt.Sprintf("r%d@example.com", i), "550 5.1.1 user unknown"))
	}
	cons, err := b.js.Consumer(context.Background(), b.names.Stream, b.names.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	info := func() *jetstream.ConsumerInfo {
		i, err := cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	// Paused: nothing is pulled, so nothing is delivered, however long it lasts. The
	// failed event went back with a one-second delay: a consumer still pulling would
	// have it (and the new ones) delivered again within this window.
	first := info()
	for range 20 {
		time.Sleep(100 * time.Millisecond)
		if now := info(); now.Delivered.Consumer != first.Delivered.Consumer {
			t.Fatalf("deliveries while paused: %d, then %d", first.Delivered.Consumer, now.Delivered.Consumer)
		}
	}
	if first.NumPending < more {
		t.Fatalf("pending while paused = %d, want the %d new events", first.NumPending, more)
	}
	select {
	case r := <-b.results:
		t.Fatalf("event acknowledged while Redis was down: %+v", r)
	default:
	}

	testsvc.StartRedisOn(t, srv.Port())
	// The probe runs on the processor's clock: move it until the probe finds Redis.
	eventually(t, 20*time.Second, "resumed once Redis answers", func() { clk.Advance(time.Second) }, func() bool { return b.proc.Ready() == nil })
	res := b.wait(t, more+1, 20*time.Second)
	for _, r := range res {
		if r.Outcome.Duplicate || !r.Outcome.Suppressed {
			t.Fatalf("after the outage: %+v, want applied once", r)
		}
	}
	b.assertDrained(t)
	final := info()
	// One delivery for each new event, two for the one that met the outage (plus at
	// most what the client had buffered when the pause began).
	if extra := final.Delivered.Consumer - final.Delivered.Stream; extra > 2 {
		t.Errorf("%d redeliveries for one outage, want at most 2", extra)
	}
	if v := gauge(t, b.metrics, "rebound_process_paused"); v != 0 {
		t.Errorf("rebound_process_paused = %v after resuming, want 0", v)
	}
	if v := gauge(t, b.metrics, "rebound_process_pauses_total"); v != 1 {
		t.Errorf("rebound_process_pauses_total = %v, want 1", v)
	}
}

// stallingConsumer is the real consumer whose first Consume behaves as the stalled
// client of nats.go #1622: it answers, and never pulls.
type stallingConsumer struct {
	jetstream.Consumer
	calls atomic.Int32
}

func (c *stallingConsumer) Consume(h jetstream.MessageHandler, opts ...jetstream.PullConsumeOpt) (jetstream.ConsumeContext, error) {
	if c.calls.Add(1) == 1 {
		return &silentConsume{closed: make(chan struct{})}, nil
	}
	return c.Consumer.Consume(h, opts...)
}

type silentConsume struct {
	once   sync.Once
	closed chan struct{}
}

func (s *silentConsume) Stop()                   { s.once.Do(func() { close(s.closed) }) }
func (s *silentConsume) Drain()                  { s.Stop() }
func (s *silentConsume) Closed() <-chan struct{} { return s.closed }

// TestStalledConsumerIsRecreated: a consumer that receives nothing while the stream has
// pending events is re-created after one check interval, and counted.
func TestStalledConsumerIsRecreated(t *testing.T) {
	t.Parallel()
	clk := newManualClock()
	var stalling *stallingConsumer
	b := setupConfig(t, testsvc.RedisClient(t), 10, policy.Default, func(c *process.Config) {
		stalling = &stallingConsumer{Consumer: c.Consumer}
		c.Consumer, c.Clock, c.StallCheck = stalling, clk, 5*time.Second
	})
	for i := range 5 {
		b.publish(t, event(fmt.Sprintf("st%d", i), fmt.Sprintf("st%d@example.com", i), "550 5.1.1 user unknown"))
	}
	select {
	case r := <-b.results:
		t.Fatalf("processed through a stalled consumer: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	// Nothing in the first interval: the check finds events pending and re-creates it.
	eventually(t, 15*time.Second, "consumer re-created", func() { clk.Advance(5 * time.Second) }, func() bool { return stalling.calls.Load() >= 2 })
	b.wait(t, 5, 15*time.Second)
	if v := gauge(t, b.metrics, "rebound_consumer_stall_recoveries_total"); v != 1 {
		t.Fatalf("rebound_consumer_stall_recoveries_total = %v, want 1", v)
	}
	// Idle with nothing pending is not a stall.
	for range 5 {
		clk.Advance(5 * time.Second)
		time.Sleep(20 * time.Millisecond)
	}
	if v := gauge(t, b.metrics, "rebound_consumer_stall_recoveries_total"); v != 1 || stalling.calls.Load() != 2 {
		t.Fatalf("idle consumer re-created: recoveries %v, Consume calls %d", v, stalling.calls.Load())
	}
}

// TestUnansweredPullRecreatesConsumer: a pull that found no responder (a JetStream
// leader change) re-creates the consumer at once, well before the stall check would.
func TestUnansweredPullRecreatesConsumer(t *testing.T) {
	t.Parallel()
	clk := newManualClock()
	var stalling *stallingConsumer
	b := setupConfig(t, testsvc.RedisClient(t), 10, policy.Default, func(c *process.Config) {
		stalling = &stallingConsumer{Consumer: c.Consumer}
		c.Consumer, c.Clock, c.StallCheck = stalling, clk, time.Hour
	})
	for i := range 3 {
		b.publish(t, event(fmt.Sprintf("nr%d", i), fmt.Sprintf("nr%d@example.com", i), "550 5.1.1 user unknown"))
	}
	eventually(t, 15*time.Second, "first consumer started", nil, func() bool { return stalling.calls.Load() == 1 })
	b.proc.ConsumeError(fmt.Errorf("consume: %w", nats.ErrNoResponders))
	eventually(t, 15*time.Second, "consumer re-created", func() { clk.Advance(250 * time.Millisecond) }, func() bool { return stalling.calls.Load() >= 2 })
	b.wait(t, 3, 15*time.Second)
	if v := gauge(t, b.metrics, "rebound_consumer_stall_recoveries_total"); v != 1 {
		t.Fatalf("rebound_consumer_stall_recoveries_total = %v, want 1", v)
	}
	// Other client errors (a heartbeat missed, say) do not re-create it.
	b.proc.ConsumeError(jetstream.ErrNoHeartbeat)
	for range 5 {
		clk.Advance(250 * time.Millisecond)
		time.Sleep(20 * time.Millisecond)
	}
	if n := stalling.calls.Load(); n != 2 {
		t.Fatalf("Consume called %d times after a missed heartbeat, want 2", n)
	}
}

// TestMaxDeliverAdvisoryDeadLetters: an event whose last delivery timed out (no worker
// answered it) is dead-lettered with the reason, from the server's advisory — also when
// no replica was listening when the server sent it: the advisory stream keeps it.
func TestMaxDeliverAdvisoryDeadLetters(t *testing.T) {
	t.Parallel()
	_, js := testsvc.JetStream(t)
	names := testsvc.Names(t, js)
	ctx := context.Background()
	settings := stream.DefaultSettings()
	settings.MaxDeliver, settings.AckWait = 2, 300*time.Millisecond
	cons, err := stream.Provision(ctx, js, names, settings)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	w := &process.MaxDeliveries{JS: js, Names: names, Publisher: stream.NewPublisher(js, names, 5*time.Second), Metrics: m, Log: zaptest.NewLogger(t)}

	data := []byte(`{"id":"generic:md1","esp":"generic","type":"bounce","occurred_at":"2026-11-30T08:00:00Z","recipient":"slow@example.com"}`)
	if _, err := js.Publish(ctx, names.EventSubject("generic"), data); err != nil {
		t.Fatal(err)
	}
	// Two deliveries nobody answers, as from a worker killed mid-batch each time.
	for i := range 2 {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range b.Messages() {
			n++
		}
		if n != 1 {
			t.Fatalf("delivery %d: %d messages", i+1, n)
		}
	}
	// The server gives up when it would deliver a third time, which takes someone
	// pulling, as the process role always is: this pull gets nothing.
	b, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		t.Fatalf("delivered beyond MaxDeliver: %s", m.Data())
	}
	// The advisory was sent while nothing listened; it waits in the advisory stream.
	adv, err := js.Stream(ctx, names.AdvisoryStream())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "advisory kept", nil, func() bool {
		info, err := adv.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	t.Cleanup(func() { cancel(); <-done })
	dead, err := js.Stream(ctx, names.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "dead letter written", nil, func() bool {
		info, err := dead.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	letter, err := dead.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(letter.Data) != string(data) || !strings.Contains(letter.Header.Get(stream.HeaderReason), "max deliveries") ||
		letter.Header.Get(stream.HeaderSequence) != "1" || letter.Header.Get(stream.HeaderStage) != "process" {
		t.Fatalf("dead letter = %q %v", letter.Data, letter.Header)
	}
	if v := gauge(t, m, "rebound_dead_letters_total"); v != 1 {
		t.Fatalf("rebound_dead_letters_total = %v, want 1", v)
	}
	// Acknowledged once handled: the work-queue stream lets it go.
	eventually(t, 15*time.Second, "advisory removed once handled", nil, func() bool {
		info, err := adv.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
}
