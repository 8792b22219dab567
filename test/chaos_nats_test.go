package test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reboundhq/rebound/internal/testsvc"
)

// natsOutage is how long the NATS chaos test keeps its server down.
const natsOutage = 5 * time.Second

// TestChaosNATSRestart kills the test's own nats-server (JetStream on file storage) in
// the middle of the workload and starts it again on the same port and store directory
// after five seconds. The worker reports not-ready meanwhile, reconnects by itself and
// goes on; acknowledgements lost with the server only cause redeliveries, which change
// nothing; the final state is exact.
func TestChaosNATSRestart(t *testing.T) {
	t.Parallel()
	ns := testsvc.StartNATSServer(t)
	p := newChaosPlan(t, chaosEvents(20000))
	d, js, rdb := newChaosDeployment(t, ns.URL(), testsvc.Redis(t), 1)
	stored := chaosPublish(t, js, d.names, p.msgs1)

	w := d.start(t, "w")
	waitAcked(t, js, d.names, stored, stored*2/5, 3*time.Minute)
	ns.Kill()
	down := time.Now()
	notReady := false
	for time.Since(down) < natsOutage {
		if code := w.ready(); code == http.StatusServiceUnavailable {
			notReady = true
		} else if code == http.StatusOK && time.Since(down) > 2*time.Second {
			t.Errorf("/readyz = 200 %s after the NATS server was killed", time.Since(down).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !notReady {
		t.Errorf("/readyz never said 503 in %s without NATS", natsOutage)
	}
	if !w.running() {
		t.Fatalf("the worker exited while NATS was down:\n%s", w.tail(40))
	}
	ns.Restart(t)
	restarted := time.Now()
	rec := measureRecovery(t, js, d.names, stored, -1, restarted, 3*time.Minute)
	if n := chaosStreamMsgs(t, js, d.names.Stream); n != stored {
		t.Fatalf("the stream holds %d messages after the restart, want %d", n, stored)
	}

	stored += chaosPublish(t, js, d.names, p.msgs2)
	measureRecovery(t, js, d.names, stored, -1, time.Now(), 2*time.Minute)
	if n := chaosStreamMsgs(t, js, d.names.DeadStream); n != 0 {
		t.Errorf("dead-letter stream holds %d messages, want 0", n)
	}
	applied := assertChaosState(t, rdb, d.prefix, p)
	chaosReport(t, p, stored, applied, w.counts(t), "NATS killed for "+natsOutage.String()+" and restarted: "+rec.String())
}

// TestChaosNATSClusterLeaderKilled runs the worker against a three-node NATS cluster
// (the test's own servers on loopback ports) with the stream and the consumer
// replicated three times, and kills the stream's leader with SIGKILL in the middle of
// the workload. A new leader is elected, the worker follows it through the other
// servers, nothing is lost and the final state is exact.
func TestChaosNATSClusterLeaderKilled(t *testing.T) {
	t.Parallel()
	servers := testsvc.StartNATSCluster(t, 3)
	p := newChaosPlan(t, chaosEvents(20000))
	d, js, rdb := newChaosDeployment(t, testsvc.ClusterURL(servers), testsvc.Redis(t), 3)
	stored := chaosPublish(t, js, d.names, p.msgs1)

	w := d.start(t, "w")
	waitAcked(t, js, d.names, stored, stored*2/5, 3*time.Minute)
	leader := streamLeader(t, js, d.names.Stream)
	var killed *testsvc.NATSServer
	for _, s := range servers {
		if s.Name == leader {
			killed = s
		}
	}
	if killed == nil {
		t.Fatalf("stream leader %q is none of the cluster's servers", leader)
	}
	before, _, _ := consumerAcked(js, d.names, stored)
	killed.Kill()
	at := time.Now()
	rec := measureRecovery(t, js, d.names, stored, before, at, 3*time.Minute)
	// When the consumer's leader moves, a pull in flight is lost (the new leader never
	// saw it) or answered "no responders", which nats.go (v1.55) keeps counting as
	// outstanding: left alone, it pulls again only after its default heartbeat check
	// (twice 15 s). The worker's 2 s pull heartbeat and its re-creation on "no
	// responders" bring it back once the new consumer leader is elected (the server's
	// election takes several seconds: 6-8 s seen here, 4 ms when the consumer's leader
	// survived).
	if rec.resumed > 20*time.Second {
		t.Errorf("the worker acknowledged again only %s after the leader was killed, want within 20s", rec.resumed.Round(time.Millisecond))
	}
	if now := streamLeader(t, js, d.names.Stream); now == leader || now == "" {
		t.Errorf("stream leader after the kill = %q, want another server than %s", now, leader)
	}
	if n := chaosStreamMsgs(t, js, d.names.Stream); n != stored {
		t.Fatalf("the stream holds %d messages after the leader's death, want %d", n, stored)
	}

	stored += chaosPublish(t, js, d.names, p.msgs2)
	measureRecovery(t, js, d.names, stored, -1, time.Now(), 2*time.Minute)
	if n := chaosStreamMsgs(t, js, d.names.DeadStream); n != 0 {
		t.Errorf("dead-letter stream holds %d messages, want 0", n)
	}
	if !w.running() {
		t.Errorf("the worker exited")
	}
	applied := assertChaosState(t, rdb, d.prefix, p)
	chaosReport(t, p, stored, applied, w.counts(t), "stream leader "+leader+" of 3 killed: "+rec.String())
}

// streamLeader is the name of the server leading the stream, retried while a new
// leader is being elected.
func streamLeader(t *testing.T, js jetstream.JetStream, name string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := js.Stream(ctx, name)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = s.Info(ctx)
		}
		cancel()
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
			return info.Cluster.Leader
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s has no leader after 30s: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
