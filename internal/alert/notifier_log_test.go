package alert

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestNotifierQuietOnShutdown: a step cut short by the notifier's own stop (its context
// canceled) is no outage — the lease runs out and the step is redone — so it logs at
// debug, not as "state unavailable"; a real Redis failure still warns, once per text.
func TestNotifierQuietOnShutdown(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	n := &Notifier{Log: zap.New(core)}
	n.warn("control", fmt.Errorf("claim abc for control: %w", context.Canceled))
	if got := logs.Len(); got != 0 {
		t.Fatalf("a canceled step logged %d lines at info or above: %v", got, logs.All())
	}
	n.warn("control", errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"))
	n.warn("control", errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"))
	if got := logs.FilterMessage("alert notifier: state unavailable").Len(); got != 1 {
		t.Fatalf("a Redis failure logged %d warnings, want 1", got)
	}
}
