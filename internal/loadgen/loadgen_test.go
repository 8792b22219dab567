package loadgen_test

import (
	"context"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/reboundhq/rebound/internal/loadgen"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestLoadgenSmoke runs the whole measurement on a few thousand events: both workers
// drain every message, the paced phase measures latencies, and the process role's
// consumer ends with nothing pending. The real run (200,000 events) is `make bench-e2e`.
func TestLoadgenSmoke(t *testing.T) {
	t.Parallel()
	const n = 3000
	rep, err := loadgen.Run(context.Background(), loadgen.Options{
		NATSURL: testsvc.NATS(t), RedisURL: testsvc.Redis(t), Events: n, Tenants: 5, Domains: 200,
		PacedSeconds: 1, PacedRate: 1000, Log: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.ProcessRate <= 0 || rep.IdealRate <= 0 || rep.Ratio() <= 0 {
		t.Fatalf("rates: process %.0f, ideal %.0f", rep.ProcessRate, rep.IdealRate)
	}
	if rep.PacedEvents != 1000 || rep.ProcessedReported != int64(n+rep.PacedEvents) {
		t.Fatalf("applied %d, want %d drained + %d paced", rep.ProcessedReported, n, rep.PacedEvents)
	}
	if rep.LatencyP50 <= 0 || rep.LatencyP99 < rep.LatencyP50 {
		t.Fatalf("latencies p50 %s p99 %s", rep.LatencyP50, rep.LatencyP99)
	}
	if c := rep.ProcessConsumer; c.NumPending != 0 || c.NumAckPending != 0 || c.NumRedelivered != 0 {
		t.Fatalf("process consumer after the run: pending %d, ack pending %d, redelivered %d", c.NumPending, c.NumAckPending, c.NumRedelivered)
	}
	if rep.PeakRSS <= 0 {
		t.Fatal("no RSS sampled")
	}
}
