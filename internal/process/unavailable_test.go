package process_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/process"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestRedisUnavailable: only errors that mean Redis cannot be reached or is not
// serving pause consumption; an error Redis answers with (a script error, WRONGTYPE)
// would pass the resume probe at once, so it goes through the usual retry instead.
func TestRedisUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := testsvc.RedisClient(t)
	prefix := testsvc.Prefix(t, rdb)
	if err := rdb.Set(ctx, prefix+"s", "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	wrongType := rdb.HGet(ctx, prefix+"s", "f").Err()
	scriptErr := rdb.Eval(ctx, "return redis.error_reply('guard: script returned 3 values')", nil).Err()
	port, err := testsvc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	down := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer down.Close()
	refused := down.Ping(ctx).Err()
	closed := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
	closed.Close()
	closedErr := closed.Ping(ctx).Err()
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", refused, true},
		{"connection refused, wrapped", fmt.Errorf("apply: %w", refused), true},
		{"client closed", closedErr, true},
		{"deadline", fmt.Errorf("guard: %w", context.DeadlineExceeded), true},
		{"pool timeout", redis.ErrPoolTimeout, true},
		{"loading", fmt.Errorf("apply: %w", redisError("LOADING Redis is loading the dataset in memory")), true},
		{"wrong type", wrongType, false},
		{"script error, wrapped", fmt.Errorf("apply: %w", scriptErr), false},
		{"our own check", errors.New("guard: script returned 3 values, want 4"), false},
	} {
		if tt.err == nil {
			t.Fatalf("%s: no error to classify", tt.name)
		}
		if got := process.RedisUnavailable(tt.err); got != tt.want {
			t.Errorf("%s (%v): unavailable = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// redisError is an error as Redis words it (go-redis's error type is internal).
type redisError string

func (e redisError) Error() string { return string(e) }
func (redisError) RedisError()     {}
