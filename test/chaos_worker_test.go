package test

import (
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestChaosWorkerKill9 kills the only worker with SIGKILL in the middle of 50,000
// events and starts it again: whatever it had applied but not acknowledged comes back
// (after the ack wait) and changes nothing the second time; nothing is lost; the final
// state is exact.
func TestChaosWorkerKill9(t *testing.T) {
	t.Parallel()
	p := newChaosPlan(t, chaosEvents(50000))
	d, js, rdb := newChaosDeployment(t, testsvc.NATS(t), testsvc.Redis(t), 1)
	stored := chaosPublish(t, js, d.names, p.msgs1)

	w1 := d.start(t, "w1")
	waitAcked(t, js, d.names, stored, stored*2/5, 3*time.Minute)
	w1.kill()
	killed := time.Now()
	before, _, _ := consumerAcked(js, d.names, stored)
	w2 := d.start(t, "w2")
	restarted := time.Since(killed)
	rec := measureRecovery(t, js, d.names, stored, before, killed, 3*time.Minute)
	t.Logf("killed with %d of %d messages acknowledged; the new worker was ready %s after the kill",
		before, stored, restarted.Round(time.Millisecond))

	stored += chaosPublish(t, js, d.names, p.msgs2)
	measureRecovery(t, js, d.names, stored, -1, time.Now(), 2*time.Minute)
	if n := chaosStreamMsgs(t, js, d.names.DeadStream); n != 0 {
		t.Errorf("dead-letter stream holds %d messages, want 0", n)
	}
	applied := assertChaosState(t, rdb, d.prefix, p)
	c := w1.counts(t).add(w2.counts(t))
	// Everything the killed worker applied without acknowledging is applied again as a
	// duplicate; so are the true duplicates in the stream.
	if c.duplicates == 0 {
		t.Errorf("no duplicate absorbed: the workload has true duplicates")
	}
	chaosReport(t, p, stored, applied, c, "kill -9 of the worker, restarted at once: "+rec.String())
}

// TestChaosTwoWorkersOneKilled runs two workers on the shared consumer and kills one
// with SIGKILL in the middle: the survivor takes over what the dead one held once the
// ack wait passes, and the final state is exact.
func TestChaosTwoWorkersOneKilled(t *testing.T) {
	t.Parallel()
	p := newChaosPlan(t, chaosEvents(20000))
	d, js, rdb := newChaosDeployment(t, testsvc.NATS(t), testsvc.Redis(t), 1)
	stored := chaosPublish(t, js, d.names, p.msgs1)

	a := d.start(t, "a")
	b := d.start(t, "b")
	waitAcked(t, js, d.names, stored, stored*2/5, 3*time.Minute)
	a.kill()
	killed := time.Now()
	before, _, _ := consumerAcked(js, d.names, stored)
	rec := measureRecovery(t, js, d.names, stored, before, killed, 3*time.Minute)
	if !b.running() {
		t.Fatal("the surviving worker exited")
	}

	stored += chaosPublish(t, js, d.names, p.msgs2)
	measureRecovery(t, js, d.names, stored, -1, time.Now(), 2*time.Minute)
	if n := chaosStreamMsgs(t, js, d.names.DeadStream); n != 0 {
		t.Errorf("dead-letter stream holds %d messages, want 0", n)
	}
	applied := assertChaosState(t, rdb, d.prefix, p)
	ca, cb := a.counts(t), b.counts(t)
	if ca.decisions == 0 || cb.decisions == 0 {
		t.Errorf("acknowledged deliveries: killed worker %d, survivor %d: want both to have worked", ca.decisions, cb.decisions)
	}
	chaosReport(t, p, stored, applied, ca.add(cb), "kill -9 of one of two workers: "+rec.String())
}
