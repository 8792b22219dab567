package test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/process"
	"github.com/reboundhq/rebound/internal/stream"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// replies is the mix of the throughput workload: mostly hard and soft bounces, some
// sender-side faults, some replies that only get recorded.
var replies = []string{
	"550 5.1.1 <x@example.com>: Recipient address rejected: User unknown in virtual mailbox table",
	"452 4.2.2 The email account that you tried to reach is over quota",
	"550 5.7.26 Unauthenticated email is not accepted due to domain's DMARC policy - gsmtp",
	"421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints",
	"552 5.3.4 Message size exceeds fixed maximum message size",
	"530 5.7.0 Authentication required",
	"550 5.1.1 The email account that you tried to reach does not exist - gsmtp",
	"451 4.4.1 No answer from host",
}

// fill publishes n events on a fresh stream and returns its names and consumer.
func fill(b *testing.B, js jetstream.JetStream, n int) (events.Names, jetstream.Consumer) {
	b.Helper()
	names := testsvc.Names(b, js)
	settings := stream.DefaultSettings()
	settings.MaxAckPending = 10000
	cons, err := stream.Provision(context.Background(), js, names, settings)
	if err != nil {
		b.Fatal(err)
	}
	run := testsvc.ID()
	for i := range n {
		e := events.Event{ID: fmt.Sprintf("generic:%s-%d", run, i), ESP: "generic", Type: events.TypeBounce,
			OccurredAt: time.Now().UTC(), Recipient: fmt.Sprintf("user%d@example.com", i%(n/3+1)),
			Sender: "news@mail.shop.example", SendingIP: "192.0.2.10", Reply: events.Reply{Text: replies[i%len(replies)]}}
		data, _ := json.Marshal(e)
		msg := &nats.Msg{Subject: names.EventSubject("generic"), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, e.ID)
		if _, err := js.PublishMsgAsync(msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		b.Fatal("publishing did not complete")
	}
	return names, cons
}

// BenchmarkProcessThroughput measures the process role draining a pre-filled stream
// against the real NATS and Redis, next to an ideal worker with the same semantics
// (consume, decode, one Lua script per event pipelined per batch, explicit ack after
// Redis, the same batch size and batches in flight) and no classification, policy,
// metrics or history: ratio = ours / ideal.
// Run: go test ./test -run '^$' -bench ProcessThroughput -benchtime 30000x
func BenchmarkProcessThroughput(b *testing.B) {
	const batch, par = 256, 2
	nc, js := testsvc.JetStream(b)
	_ = nc
	rdb := testsvc.RedisClient(b)
	cat, err := catalog.Default()
	if err != nil {
		b.Fatal(err)
	}
	n := b.N

	// Ours.
	_, cons := fill(b, js, n)
	prefix := testsvc.Prefix(b, rdb)
	var done atomic.Int64
	finished := make(chan struct{})
	p := process.New(process.Config{
		Consumer: cons, Store: suppress.New(rdb, suppress.Options{Prefix: prefix}), Alerts: alert.NewStore(rdb, alert.StoreOptions{Prefix: prefix}),
		Catalog: cat, Policy: policy.Default,
		Publisher: stream.NewPublisher(js, events.Names{}, time.Second), Metrics: metrics.New(), Log: zap.NewNop(),
		BatchSize: batch, Concurrency: par, MaxDeliver: 10,
		OnProcessed: func(process.Result) {
			if done.Add(1) == int64(n) {
				close(finished)
			}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	b.ResetTimer()
	start := time.Now()
	go func() { _ = p.Run(ctx) }()
	<-finished
	ours := time.Since(start)
	b.StopTimer()
	cancel()

	// Ideal worker, same run, same servers.
	_, cons2 := fill(b, js, n)
	prefix2 := testsvc.Prefix(b, rdb)
	ideal := idealWorker(b, cons2, rdb, prefix2, n, batch, par)

	oursRate := float64(n) / ours.Seconds()
	idealRate := float64(n) / ideal.Seconds()
	b.ReportMetric(oursRate, "events/s")
	b.ReportMetric(idealRate, "ideal-events/s")
	b.ReportMetric(oursRate/idealRate, "ratio")
}

var idealScript = redis.NewScript(`
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', 600000) then
  redis.call('HINCRBY', KEYS[2], 'n', 1)
  return 1
end
return 0`)

// idealWorker is the performance notes' "perfprobe worker": Consume, decode JSON, one
// small Lua dedup script per event pipelined per batch, explicit ack after Redis, with
// par batches in flight, and nothing else.
func idealWorker(b *testing.B, cons jetstream.Consumer, rdb *redis.Client, prefix string, n, batch, par int) time.Duration {
	b.Helper()
	ctx := context.Background()
	if err := idealScript.Load(ctx, rdb).Err(); err != nil {
		b.Fatal(err)
	}
	msgs := make(chan jetstream.Msg, (par+1)*batch)
	var done atomic.Int64
	finished := make(chan struct{})
	start := time.Now()
	cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m }, jetstream.PullMaxMessages((par+1)*batch))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	for range par {
		go func() {
			buf := make([]jetstream.Msg, 0, batch)
			for {
				select {
				case m := <-msgs:
					buf = append(buf[:0], m)
				case <-finished:
					return
				}
			fill:
				for len(buf) < batch {
					select {
					case m := <-msgs:
						buf = append(buf, m)
					default:
						break fill
					}
				}
				pipe := rdb.Pipeline()
				for _, m := range buf {
					var e events.Event
					if err := json.Unmarshal(m.Data(), &e); err != nil {
						panic(err)
					}
					tag := "{" + e.Tenant + ":" + e.Recipient + "}"
					idealScript.EvalSha(ctx, pipe, []string{prefix + tag + ":seen:" + e.ID, prefix + tag + ":rec"})
				}
				if _, err := pipe.Exec(ctx); err != nil {
					panic(err)
				}
				for _, m := range buf {
					_ = m.Ack()
				}
				if done.Add(int64(len(buf))) == int64(n) {
					close(finished)
				}
			}
		}()
	}
	<-finished
	return time.Since(start)
}
