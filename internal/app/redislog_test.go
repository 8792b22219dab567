package app

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestRedisClientLinesGoThroughZapAtDebug: during a Redis outage go-redis logs
// "connection pool: failed to dial after N attempts" lines of its own; they must reach
// the structured log at debug (not the plain-text stderr logger mixed into the JSON
// log), so at info and above an outage logs only Rebound's own change-only lines.
// Not parallel: go-redis's logger is process-wide.
func TestRedisClientLinesGoThroughZapAtDebug(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	SetRedisLogger(zap.New(core))
	port, err := testsvc.FreePort() // nothing listens there: every dial fails
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("ping of a closed port succeeded")
	}
	lines := logs.FilterMessage("go-redis").All()
	if len(lines) == 0 {
		t.Fatalf("no go-redis line reached zap (got %+v): they still go to plain stderr", logs.All())
	}
	for _, l := range lines {
		if l.Level != zapcore.DebugLevel || l.LoggerName != "go-redis" {
			t.Errorf("go-redis line at %s from %q, want debug from go-redis", l.Level, l.LoggerName)
		}
	}
	if d, _ := lines[0].ContextMap()["detail"].(string); d == "" {
		t.Errorf("go-redis line without its detail: %+v", lines[0])
	}

	// At info, nothing of it is written.
	core, logs = observer.New(zapcore.InfoLevel)
	SetRedisLogger(zap.New(core))
	_ = rdb.Ping(ctx).Err()
	if n := logs.Len(); n != 0 {
		t.Fatalf("%d go-redis lines at info: %+v", n, logs.All())
	}
}
