package test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reboundhq/rebound/internal/testsvc"
)

// redisOutage is how long the Redis chaos test keeps Redis down.
const redisOutage = 10 * time.Second

// TestChaosRedisDown kills the worker's Redis (its own redis-server, append-only file
// fsynced on every write) in the middle of the workload, keeps it down for ten seconds
// and starts it again on the same port and file. While it is down the worker reports
// not-ready on /readyz, keeps running and dead-letters nothing; afterwards it applies
// the rest, nothing it had acknowledged is lost, and the final state is exact.
func TestChaosRedisDown(t *testing.T) {
	t.Parallel()
	srv := testsvc.StartRedisAOF(t)
	p := newChaosPlan(t, chaosEvents(20000))
	d, js, rdb := newChaosDeployment(t, testsvc.NATS(t), srv.URL(), 1)
	if v, err := rdb.ConfigGet(context.Background(), "appendfsync").Result(); err != nil || v["appendfsync"] != "always" {
		t.Fatalf("appendfsync = %v, %v, want always", v, err)
	}
	stored := chaosPublish(t, js, d.names, p.msgs1)

	w := d.start(t, "w")
	waitAcked(t, js, d.names, stored, stored*3/10, 3*time.Minute)
	srv.Kill()
	down := time.Now()
	var notReadyAfter time.Duration
	// The consumer a second after the worker logged that it paused (its consumer is
	// stopped by then): nothing may be delivered from then on until Redis is back.
	var mid *jetstream.ConsumerInfo
	var pausedAfter time.Duration
	var logOffset int64
	for time.Since(down) < redisOutage {
		if pausedAfter == 0 && w.logged(&logOffset, "consumption paused") {
			pausedAfter = time.Since(down)
		}
		if mid == nil && pausedAfter > 0 && time.Since(down) > pausedAfter+time.Second {
			_, mid, _ = consumerAcked(js, d.names, stored)
		}
		switch code := w.ready(); {
		case code == http.StatusOK && notReadyAfter > 0:
			t.Errorf("/readyz = 200 %s into the Redis outage, after it had said 503", time.Since(down).Round(time.Millisecond))
		case code == http.StatusServiceUnavailable && notReadyAfter == 0:
			notReadyAfter = time.Since(down)
		case code != http.StatusOK && code != http.StatusServiceUnavailable:
			t.Errorf("/readyz = %d during the Redis outage, want 503", code)
		}
		if !w.running() {
			t.Fatalf("the worker exited during the Redis outage:\n%s", w.tail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if notReadyAfter == 0 {
		t.Errorf("/readyz never said 503 in %s of Redis outage", redisOutage)
	}
	if n := chaosStreamMsgs(t, js, d.names.DeadStream); n != 0 {
		t.Errorf("%d dead letters during the Redis outage, want 0", n)
	}
	// The consumer at the end of the outage (a loaded shared NATS may be slow to answer).
	var during *jetstream.ConsumerInfo
	for i := 0; during == nil && i < 10; i++ {
		_, during, _ = consumerAcked(js, d.names, stored)
	}

	srv.Start(t)
	restarted := time.Now()
	base, _, _ := consumerAcked(js, d.names, stored)
	var readyAfter time.Duration
	for w.ready() != http.StatusOK {
		if time.Since(restarted) > time.Minute {
			t.Fatalf("/readyz not 200 within a minute of Redis's restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	readyAfter = time.Since(restarted)
	rec := measureRecovery(t, js, d.names, stored, base, restarted, 3*time.Minute)
	// The worker stops pulling instead of burning deliveries: nothing is delivered
	// while it is paused, and every message it held when Redis went away is delivered
	// again about once, not once per retry.
	if pausedAfter == 0 || pausedAfter > redisOutage-2*time.Second {
		t.Fatalf("the worker logged no pause of consumption until %s into the %s Redis outage", pausedAfter, redisOutage)
	}
	if mid == nil || during == nil {
		t.Fatal("the consumer did not answer during the Redis outage")
	}
	if n := during.Delivered.Consumer - mid.Delivered.Consumer; n != 0 {
		t.Errorf("%d deliveries while consumption was paused, want 0: the worker must stop pulling", n)
	}

	stored += chaosPublish(t, js, d.names, p.msgs2)
	measureRecovery(t, js, d.names, stored, -1, time.Now(), 2*time.Minute)
	c := w.counts(t)
	if n := chaosStreamMsgs(t, js, d.names.DeadStream); n != 0 || c.deadLetters != 0 {
		t.Errorf("dead-letter stream holds %d messages (%d logged), want 0", n, c.deadLetters)
	}
	applied := assertChaosState(t, rdb, d.prefix, p)
	_, final, ok := consumerAcked(js, d.names, stored)
	if !ok {
		t.Fatal("consumer info after the run: no answer")
	}
	// Once more each, with room for the odd ack wait (5 s) that expires on a loaded
	// machine; a retry per back-off step (1, 2, 4, 8 s) would be several each.
	redelivered := int(final.Delivered.Consumer) - stored
	if redelivered > 2*mid.NumAckPending {
		t.Errorf("%d redeliveries in the run, want at most twice the %d messages held when Redis went down", redelivered, mid.NumAckPending)
	}
	t.Logf("consumption paused %s into the outage; deliveries while paused %d; redeliveries in the whole run %d, for %d messages held when it paused",
		pausedAfter.Round(time.Millisecond), during.Delivered.Consumer-mid.Delivered.Consumer, redelivered, mid.NumAckPending)
	chaosReport(t, p, stored, applied, c, "Redis killed for "+redisOutage.String()+": /readyz 503 "+
		notReadyAfter.Round(time.Millisecond).String()+" into it, 200 again "+readyAfter.Round(time.Millisecond).String()+
		" after the restart, "+rec.String())
}
