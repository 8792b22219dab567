package guard

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/policy"
)

// RunSweeper checks the held domains every interval until ctx is cancelled, under the
// policy in force at each pass (see SweepOnce). Several replicas may run it: a release
// is idempotent and a second one finds nothing left to release.
func (g *Guard) RunSweeper(ctx context.Context, pol func() *policy.Policy, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.SweepOnce(ctx, pol().MassBounce)
	}
}

// Swept is one hold SweepOnce ended.
type Swept struct {
	Domain  string
	Applied bool // applied (on_recovery: apply) or discarded (on_recovery: discard)
	Count   int  // suppressions applied or discarded
}

// SweepOnce is one pass of the sweeper. Where a held domain's count of new hard
// bounces has fallen below the threshold, mb.OnRecovery decides: hold (wait for the
// operator: nothing happens), apply or discard. The domain's incident is resolved by
// "recovery: apply" or "recovery: discard". It returns the holds it ended; failures
// are logged and retried at the next pass.
func (g *Guard) SweepOnce(ctx context.Context, mb policy.MassBounce) []Swept {
	if mb.OnRecovery != "apply" && mb.OnRecovery != "discard" {
		return nil
	}
	held, err := g.Held(ctx)
	if err != nil {
		g.log.Warn("mass-bounce sweep: list held domains", zap.Error(err))
		return nil
	}
	apply := mb.OnRecovery == "apply"
	var out []Swept
	for _, h := range held {
		n, err := g.Count(ctx, h.Domain, mb.Window)
		if err != nil {
			g.log.Warn("mass-bounce sweep: count", zap.String("domain", h.Domain), zap.Error(err))
			continue
		}
		if n >= mb.Threshold {
			continue
		}
		// "quiet": the incidents-resolved metric's closed set; the domain went quiet.
		released, err := g.release(ctx, h.Domain, apply, "recovery: "+mb.OnRecovery, "quiet")
		if errors.Is(err, ErrNotHeld) {
			continue // another replica's sweep, or an operator, released it first
		}
		if err != nil {
			g.log.Warn("mass-bounce sweep: release", zap.String("domain", h.Domain), zap.Error(err))
			continue
		}
		g.log.Info("mass-bounce hold ended on recovery", zap.String("domain", h.Domain), zap.String("on_recovery", mb.OnRecovery), zap.Int("suppressions", released))
		out = append(out, Swept{Domain: h.Domain, Applied: apply, Count: released})
	}
	return out
}
