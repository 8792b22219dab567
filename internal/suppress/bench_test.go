package suppress_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// workload is a realistic mix per 8 events: hard, soft ×2, record ×5 (three of them
// message-side, two sender-side, whose incidents the alert package counts).
func workload(run string, n int) []suppress.Change {
	out := make([]suppress.Change, n)
	for i := range out {
		addr := fmt.Sprintf("u%d-%s@example.com", i%5000, run)
		id := fmt.Sprintf("generic:%s-%d", run, i)
		switch i % 8 {
		case 0:
			out[i] = hard(id, addr)
		case 1, 2:
			out[i] = soft(id, addr)
		case 3, 4, 5:
			out[i] = suppress.Change{EventID: id, ESP: "generic", Address: addr, Action: suppress.ActionRecord, Class: "message_too_large"}
		default:
			out[i] = suppress.Change{EventID: id, ESP: "generic", Address: addr, Action: suppress.ActionRecord, Class: "auth_required"}
		}
	}
	return out
}

// BenchmarkApplyBatch measures the Redis state step alone (one pipelined round trip
// of Lua scripts per batch) against the real Redis, with one or two batches in
// flight as the process role runs them. events/s is the figure the issue asks for.
func BenchmarkApplyBatch(b *testing.B) {
	for _, par := range []int{1, 2, 4} {
		for _, batch := range []int{256, 512} {
			b.Run(fmt.Sprintf("inflight=%d/batch=%d", par, batch), func(b *testing.B) {
				rdb := testsvc.RedisClient(b)
				st := suppress.New(rdb, suppress.Options{Prefix: testsvc.Prefix(b, rdb)})
				ctx := context.Background()
				if err := st.Load(ctx); err != nil {
					b.Fatal(err)
				}
				changes := workload(testsvc.ID(), b.N)
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for range par {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := int(next.Add(int64(batch))) - batch
							if i >= len(changes) {
								return
							}
							if _, err := st.Apply(ctx, changes[i:min(i+batch, len(changes))]); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}
