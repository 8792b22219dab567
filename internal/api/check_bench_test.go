package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/api"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// BenchmarkCheckHTTP measures POST /v1/suppressions/check end to end: HTTP, JSON in
// and out, and the one pipelined Redis round trip, 1,000 addresses a request (one in
// ten suppressed), from parallel clients. The figure is addresses/s (docs/performance.md).
//
//	go test -run '^$' -bench CheckHTTP -benchtime 5s ./internal/api/
func BenchmarkCheckHTTP(b *testing.B) {
	rdb := testsvc.RedisClient(b)
	prefix := testsvc.Prefix(b, rdb)
	store := suppress.New(rdb, suppress.Options{Prefix: prefix})
	ctx := context.Background()
	if err := store.Load(ctx); err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	var cs []suppress.Change
	for i := range 100 * batch {
		if i%10 != 0 {
			continue
		}
		cs = append(cs, suppress.Change{EventID: fmt.Sprintf("b%d", i), ESP: "generic", Address: fmt.Sprintf("user%06d@example.com", i),
			Action: suppress.ActionSuppress, Reason: "recipient_unknown", Class: "recipient_unknown"})
		if len(cs) == 500 {
			if _, err := store.Apply(ctx, cs); err != nil {
				b.Fatal(err)
			}
			cs = cs[:0]
		}
	}
	cat, err := catalog.Default()
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	(&api.API{Store: store, Catalog: cat, Policy: policy.Default, Log: zap.NewNop(), Tokens: adminToken("bench-token")}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	bodies := make([][]byte, 100)
	for r := range bodies {
		addrs := make([]string, batch)
		for i := range addrs {
			addrs[i] = fmt.Sprintf("user%06d@example.com", r*batch+i)
		}
		bodies[r], _ = json.Marshal(api.CheckRequest{Addresses: addrs})
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/suppressions/check", bytes.NewReader(bodies[i%len(bodies)]))
			req.Header.Set("Authorization", "Bearer bench-token")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "addresses/s")
}
