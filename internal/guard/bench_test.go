package guard_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// BenchmarkHoldBatch runs batches of 100 new suppressions, one per receiving domain and
// spread over 50 tenants and 5,000 domains (loadgen's mix), through Guard.Check with the
// threshold out of reach: the guard's common case. Besides the wall time per batch it
// reports the Redis time per suppression spent in the hold script (EVALSHA in INFO
// commandstats), which is what bounds the process role; that figure is server-wide, so
// run it alone (`go test -run '^$' -bench HoldBatch ./internal/guard/`).
func BenchmarkHoldBatch(b *testing.B) {
	rdb := testsvc.RedisClient(b)
	prefix := testsvc.Prefix(b, rdb)
	ctx := context.Background()
	st := suppress.New(rdb, suppress.Options{Prefix: prefix})
	g := guard.New(guard.Config{Redis: rdb, Prefix: prefix, Store: st})
	if err := g.Load(ctx); err != nil {
		b.Fatal(err)
	}
	mb := policy.MassBounce{Enabled: true, Window: 10 * time.Minute, Threshold: 1_000_000, HoldFor: time.Hour}
	batch := func(n int) []suppress.Change {
		cs := make([]suppress.Change, 100)
		for d := range cs {
			domain := fmt.Sprintf("d%d.example", (n*100+d)%5000)
			cs[d] = suppress.Change{EventID: fmt.Sprintf("generic:b%d-%d", n, d), ESP: "generic", Address: fmt.Sprintf("r%d@%s", n, domain),
				Tenant: fmt.Sprintf("t%d", d%50), Action: suppress.ActionSuppress, Reason: "recipient_unknown", Class: "recipient_unknown"}
		}
		return cs
	}
	before := evalshaMicros(b, rdb)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		if _, err := g.Check(ctx, mb, batch(n), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(evalshaMicros(b, rdb)-before)/float64(b.N*100), "redis-us/suppression")
}

var evalshaStat = regexp.MustCompile(`cmdstat_evalsha:calls=\d+,usec=(\d+)`)

// evalshaMicros is the Redis server's total EVALSHA time so far, in µs.
func evalshaMicros(b *testing.B, rdb *redis.Client) int64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	m := evalshaStat.FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}
