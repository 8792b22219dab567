package suppress_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// BenchmarkListPageMillion walks pages of 1,000 from a cursor deep inside a tenant of
// 1,000,000 suppressions: a page costs the same at any depth (docs/performance.md).
// The records are written with raw commands in the store's key layout, which is what
// Apply leaves, because a million events through the scripts would take minutes.
//
//	go test -run '^$' -bench ListPageMillion -benchtime 200x ./internal/suppress/
func BenchmarkListPageMillion(b *testing.B) {
	const records = 1000000
	rdb := testsvc.RedisClient(b)
	st := suppress.New(rdb, suppress.Options{Prefix: testsvc.Prefix(b, rdb)})
	ctx := context.Background()
	k := st.Keys()
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	for i := 0; i < records; i += 5000 {
		pipe := rdb.Pipeline()
		zs := make([]redis.Z, 0, 5000)
		for j := i; j < i+5000; j++ {
			a := fmt.Sprintf("user%07d@example.com", j)
			pipe.HSet(ctx, k.Suppression("big", a), "reason", "recipient_unknown", "class", "recipient_unknown", "address", a,
				"tenant", "big", "event_id", "e"+a, "first_seen", now, "last_seen", now, "expires_at", "0", "events", "1")
			zs = append(zs, redis.Z{Member: a})
		}
		pipe.ZAdd(ctx, k.SuppressionsByAddress("big"), zs...)
		pipe.Set(ctx, k.SuppressionsByAddressReady("big"), now, 0)
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	deep, err := st.ListPage(ctx, "big", suppress.EncodeCursor("user0900000@example.com"), 1000, suppress.ListFilter{})
	if err != nil || len(deep.Records) != 1000 || deep.Records[0].Address != "user0900001@example.com" {
		b.Fatalf("deep page: %d records, err %v", len(deep.Records), err)
	}
	b.ResetTimer()
	start := time.Now()
	cursor := ""
	for n := 0; n < b.N; n++ {
		if n%2 == 1 {
			cursor = suppress.EncodeCursor(fmt.Sprintf("user%07d@example.com", (n*7919)%records))
		}
		p, err := st.ListPage(ctx, "big", cursor, 1000, suppress.ListFilter{})
		if err != nil || len(p.Records) == 0 {
			b.Fatalf("page %d: %d records, err %v", n, len(p.Records), err)
		}
		cursor = p.Next
	}
	b.ReportMetric(float64(b.N*1000)/time.Since(start).Seconds(), "records/s")
}
