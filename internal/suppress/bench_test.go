package suppress_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// workload is a realistic mix per 8 events: hard, soft ×2, record ×3, incident ×2.
func workload(run string, n int) []suppress.Change {
	out := make([]suppress.Change, n)
	inc := &suppress.IncidentChange{Fingerprint: "fp-" + run, Class: "auth_required", Code: "530", Reply: "530 5.7.0 Authentication required", Fix: []string{"fix"}}
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
			out[i] = suppress.Change{EventID: id, ESP: "generic", Address: addr, Action: suppress.ActionRecord, Class: "auth_required", Incident: inc}
		}
	}
	return out
}

// BenchmarkApplyBatch measures the Redis state step alone (one pipelined round trip
// of Lua scripts per batch) against the real Redis. events/s is the figure the issue
// asks for; batch size 256.
func BenchmarkApplyBatch(b *testing.B) {
	for _, mode := range []struct {
		name     string
		perEvent bool
	}{{"batch-script", false}, {"per-event-script", true}} {
		for _, batch := range []int{64, 256, 512} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode.name, batch), func(b *testing.B) {
				benchApply(b, batch, mode.perEvent)
			})
		}
	}
}

func benchApply(b *testing.B, batch int, perEvent bool) {
	{
		{
			rdb := testsvc.RedisClient(b)
			st := suppress.New(rdb, suppress.Options{Prefix: testsvc.Prefix(b, rdb), PerEventScripts: perEvent})
			ctx := context.Background()
			if err := st.Load(ctx); err != nil {
				b.Fatal(err)
			}
			changes := workload(testsvc.ID(), b.N)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < len(changes); i += batch {
				end := min(i+batch, len(changes))
				if _, err := st.Apply(ctx, changes[i:end]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		}
	}
}
