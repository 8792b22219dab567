package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestChaosIngestWithoutJetStream posts the workload as webhooks from eight ESP
// clients while JetStream is unavailable for eight seconds: once with the NATS server
// killed and started again, once with two of a three-node cluster killed, so the
// worker stays connected to a server but the R3 stream has no quorum. Every request is
// answered 503 or stored: never a 2xx for an event that is not in the stream. The
// clients retry a 503 as an ESP does, so in the end every event is answered 2xx once;
// the stream then holds every event exactly once (retries of events stored before
// their 503 are dropped by their Nats-Msg-Id), and the process role's final state is
// exact.
func TestChaosIngestWithoutJetStream(t *testing.T) {
	t.Parallel()
	t.Run("server-down", func(t *testing.T) {
		t.Parallel()
		ns := testsvc.StartNATSServer(t)
		chaosIngest(t, ns.URL(), 1, "NATS server killed", ns.Kill, func() { ns.Restart(t) })
	})
	t.Run("no-quorum", func(t *testing.T) {
		t.Parallel()
		servers := testsvc.StartNATSCluster(t, 3)
		// The worker and the test know only the first server, which stays up.
		chaosIngest(t, servers[0].URL(), 3, "2 of 3 NATS servers killed", func() {
			servers[1].Kill()
			servers[2].Kill()
		}, func() {
			servers[1].Restart(t)
			servers[2].Restart(t)
		})
	})
}

// ingestOutage is how long JetStream is unavailable in the ingest chaos test: longer
// than the ingest role's publish timeout (5 s), so that requests sent at the start of
// the outage are answered within it.
const ingestOutage = 8 * time.Second

// chaosIngest runs the ingest chaos workload: breaks JetStream with fault a third of
// the way through phase 1, repairs it with repair ingestOutage later.
func chaosIngest(t *testing.T, natsURL string, replicas int, what string, fault, repair func()) {
	p := newChaosPlan(t, chaosEvents(6000))
	d, js, rdb := newChaosDeployment(t, natsURL, testsvc.Redis(t), replicas)
	token := "tok-" + testsvc.ID()
	d.env = append(d.env, "REBOUND_ROLES=ingest,process", "REBOUND_GENERIC_TOKEN="+token)
	w := d.start(t, "w")
	rng := rand.New(rand.NewPCG(p.seed, 13))

	// Phase 1 as requests of 1 to 20 events.
	reqs := webhookRequests(rng, p.phase1)
	esp := &espClients{t: t, base: w.base, token: token}
	var ok2xx atomic.Int64
	half := make(chan struct{})
	var halfOnce sync.Once
	esp.onAccepted = func() {
		if ok2xx.Add(1) == int64(len(reqs)/3) {
			halfOnce.Do(func() { close(half) })
		}
	}
	done := make(chan struct{})
	go func() { esp.send(reqs); close(done) }()

	<-half
	fault()
	down := time.Now()
	time.Sleep(ingestOutage)
	refusedDuring := esp.refused.Load()
	// Recovery counts from the start of the repair: a cluster has its quorum back as
	// soon as the first killed server is up again, before the second is.
	restarted := time.Now()
	esp.mu.Lock()
	esp.firstAcceptedAfter = restarted
	esp.mu.Unlock()
	repair()
	<-done
	ingestBack := "no request was left to answer"
	esp.mu.Lock()
	if !esp.firstAccepted.IsZero() {
		ingestBack = esp.firstAccepted.Sub(restarted).Round(time.Millisecond).String()
	}
	esp.mu.Unlock()
	if refusedDuring == 0 {
		t.Errorf("no request answered 503 in %s of %s", restarted.Sub(down).Round(time.Millisecond), what)
	}

	// Every event answered 2xx is in the stream, once; so is every event, since every
	// one was answered 2xx in the end.
	ids := streamEventIDs(t, js, d.names.Stream)
	missing := 0
	for _, e := range p.phase1 {
		if ids[e.ID] != 1 {
			if missing < 10 {
				t.Errorf("event %s answered 2xx, found %d times in the stream", e.ID, ids[e.ID])
			}
			missing++
		}
	}
	if len(ids) != len(p.phase1) || missing > 0 {
		t.Fatalf("the stream holds %d distinct events, %d of the %d answered 2xx missing or repeated", len(ids), missing, len(p.phase1))
	}
	stored := len(p.phase1)
	rec := measureRecovery(t, js, d.names, stored, -1, restarted, 3*time.Minute)

	esp.send(webhookRequests(rng, p.phase2))
	stored += len(p.phase2)
	measureRecovery(t, js, d.names, stored, -1, time.Now(), 2*time.Minute)
	if n := chaosStreamMsgs(t, js, d.names.Stream); n != stored {
		t.Errorf("the stream holds %d messages, want %d", n, stored)
	}
	if n := chaosStreamMsgs(t, js, d.names.DeadStream); n != 0 {
		t.Errorf("dead-letter stream holds %d messages, want 0", n)
	}
	applied := assertChaosState(t, rdb, d.prefix, p)
	t.Logf("webhook answers: %d requests 2xx, %d answered 503 (%d during the outage), %d failed to connect",
		esp.accepted.Load(), esp.refused.Load(), refusedDuring, esp.connFailed.Load())
	chaosReport(t, p, stored, applied, w.counts(t), fmt.Sprintf("%s for %s under webhook load, then started again: ingest answered 2xx again %s after the restart began, process %s",
		what, ingestOutage, ingestBack, rec))
}

// webhookRequests groups events into generic-webhook bodies of 1 to 20 events, in a
// shuffled order.
func webhookRequests(rng *rand.Rand, evs []events.Event) [][]events.Event {
	order := rng.Perm(len(evs))
	var out [][]events.Event
	for len(order) > 0 {
		n := min(1+rng.IntN(20), len(order))
		var r []events.Event
		for _, i := range order[:n] {
			r = append(r, evs[i])
		}
		out = append(out, r)
		order = order[n:]
	}
	return out
}

// espClients posts webhook requests from eight clients at once, each retrying a 503 or
// a refused connection after 100 ms until the request is answered 2xx, as an ESP
// retries; any other answer fails the test.
type espClients struct {
	t          *testing.T
	base       string
	token      string
	onAccepted func()

	accepted, refused, connFailed atomic.Int64

	mu                 sync.Mutex
	firstAcceptedAfter time.Time // firstAccepted is the first 2xx after this
	firstAccepted      time.Time
}

func (c *espClients) send(reqs [][]events.Event) {
	queue := make(chan []events.Event)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 20 * time.Second}
			for r := range queue {
				c.post(client, r)
			}
		}()
	}
	for _, r := range reqs {
		queue <- r
	}
	close(queue)
	wg.Wait()
}

func (c *espClients) post(client *http.Client, evs []events.Event) {
	body, err := json.Marshal(evs)
	if err != nil {
		c.t.Error(err)
		return
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodPost, c.base+"/webhooks/generic", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			c.connFailed.Add(1)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode/100 == 2:
			if want := fmt.Sprintf(`"accepted":%d`, len(evs)); !strings.Contains(string(answer), want) {
				c.t.Errorf("POST of %d events = %d %s, want %s", len(evs), resp.StatusCode, answer, want)
			}
			c.accepted.Add(1)
			c.mu.Lock()
			if !c.firstAcceptedAfter.IsZero() && c.firstAccepted.IsZero() {
				c.firstAccepted = time.Now()
			}
			c.mu.Unlock()
			if c.onAccepted != nil {
				c.onAccepted()
			}
			return
		case resp.StatusCode == http.StatusServiceUnavailable:
			c.refused.Add(1)
			time.Sleep(100 * time.Millisecond)
		default:
			c.t.Errorf("POST = %d %s, want 2xx or 503", resp.StatusCode, answer)
			return
		}
	}
	c.t.Errorf("a request of %d events was not answered 2xx within 2 minutes", len(evs))
}

// streamEventIDs reads the whole stream and counts its messages by Nats-Msg-Id. A read
// that fails (a cluster still electing leaders after a fault) starts again, for up to
// a minute.
func streamEventIDs(t *testing.T, js jetstream.JetStream, stream string) map[string]int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ids, err := readStreamIDs(js, stream, chaosStreamMsgs(t, js, stream))
		if err == nil {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %s: %v", stream, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func readStreamIDs(js jetstream.JetStream, stream string, total int) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer: %w", err)
	}
	ids := map[string]int{}
	for read := 0; read < total; {
		batch, err := cons.Fetch(min(500, total-read), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			ids[m.Headers().Get(jetstream.MsgIDHeader)]++
			got++
		}
		if got == 0 {
			return nil, fmt.Errorf("%d of %d messages, then nothing: %v", read, total, batch.Error())
		}
		read += got
	}
	return ids, nil
}
