package process

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
)

// RunGuardSweeper checks the held domains every interval. When a domain's count of
// new hard bounces has fallen below the threshold, the policy's on_recovery decides:
// hold (wait for the operator), apply or discard. Several replicas may run it: a
// release is idempotent and a second one finds nothing left to release.
func RunGuardSweeper(ctx context.Context, store *suppress.Store, pol func() *policy.Policy, log *zap.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		SweepGuard(ctx, store, pol(), log)
	}
}

// SweepGuard is one pass of RunGuardSweeper.
func SweepGuard(ctx context.Context, store *suppress.Store, pol *policy.Policy, log *zap.Logger) {
	mb := pol.MassBounce
	if mb.OnRecovery == "hold" {
		return
	}
	held, err := store.HeldDomains(ctx)
	if err != nil {
		log.Warn("mass-bounce sweep: list held domains", zap.Error(err))
		return
	}
	for _, h := range held {
		n, err := store.GuardCount(ctx, h.Domain, mb.Window)
		if err != nil || n >= mb.Threshold {
			continue
		}
		released, err := store.ReleaseHeld(ctx, h.Domain, mb.OnRecovery == "apply")
		if err != nil {
			log.Warn("mass-bounce sweep: release", zap.String("domain", h.Domain), zap.Error(err))
			continue
		}
		log.Info("mass-bounce hold ended on recovery", zap.String("domain", h.Domain), zap.String("on_recovery", mb.OnRecovery), zap.Int("suppressions", released))
	}
}
