package app

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// SetRedisLogger routes go-redis's own log lines through log, at debug level.
//
// go-redis writes plain-text lines to stderr by default ("redis: pool.go:…: connection
// pool: failed to dial after 5 attempts: …", several a second while Redis is away),
// which break a JSON log. Rebound reports a Redis outage itself, once per change: the
// process role's "redis batch failed" (at most every 30 s), /readyz's "readiness check
// failed", the notifier's "state unavailable". go-redis's lines add nothing an operator
// acts on, so they go to debug, where they help when debugging the client.
//
// The logger is process-wide (redis.SetLogger); the last call wins.
func SetRedisLogger(log *zap.Logger) {
	redis.SetLogger(redisLogger{log: log.Named("go-redis").WithOptions(zap.AddCallerSkip(1))})
}

// redisLogger implements go-redis's internal Logging interface
// (Printf(ctx, format, args...)) on zap.
type redisLogger struct{ log *zap.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	if ce := l.log.Check(zap.DebugLevel, "go-redis"); ce != nil {
		msg := strings.TrimSpace(fmt.Sprintf(format, v...))
		msg = strings.TrimPrefix(msg, "redis: ")
		ce.Write(zap.String("detail", msg))
	}
}
