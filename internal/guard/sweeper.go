package guard

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/policy"
)

// RunSweeper checks the holds every interval until ctx is cancelled, under the policy
// in force at each pass (see SweepOnce). Several replicas may run it: a release is
// idempotent and a second one finds nothing left to release.
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
	Domain string
	Scope  string // ScopeDomain or ScopeTenant
	Tenant string // the tenant, for a tenant's hold
	// Expired: nobody decided within hold_for and its suppressions were discarded.
	// Otherwise the domain recovered and Applied says how it ended (on_recovery).
	Expired bool
	Applied bool
	Count   int // suppressions applied or discarded
}

// SweepOnce is one pass of the sweeper over every hold (domain-wide and tenants'):
//
//   - a hold nobody decided on within mb.HoldFor of its start is discarded: counted in
//     rebound_guard_holds_expired_total (and its suppressions in
//     rebound_guard_expired_suppressions_total), logged at warn, and the domain's
//     mass_bounce incident is resolved by "expired after hold_for: N held suppressions
//     discarded" once no hold of the domain is left. Its Redis keys live KeyGrace longer,
//     so the sweeper gets there first;
//   - where a hold's count of new hard bounces has fallen below its threshold
//     (mb.Threshold for the domain-wide hold, mb.PerTenant() for a tenant's),
//     mb.OnRecovery decides: hold (wait for the operator: nothing happens), apply or
//     discard; the incident is resolved by "recovery: apply" or "recovery: discard".
//
// It returns the holds it ended; failures are logged (once per distinct error) and
// retried at the next pass.
func (g *Guard) SweepOnce(ctx context.Context, mb policy.MassBounce) []Swept {
	held, err := g.Held(ctx)
	if err != nil {
		g.warnOnce("list", "mass-bounce sweep: list held domains", err)
		return nil
	}
	g.warnOnce("list", "", nil)
	now := g.now()
	recovering := mb.OnRecovery == "apply" || mb.OnRecovery == "discard"
	apply := mb.OnRecovery == "apply"
	var out []Swept
	for i := 0; i < len(held); {
		domain := held[i].Domain
		var expired, ended int
		anyExpired := false
		for ; i < len(held) && held[i].Domain == domain; i++ {
			h := held[i]
			ref := hold{domain: h.Domain, tenant: h.Tenant, whole: h.Scope == ScopeDomain}
			if mb.HoldFor > 0 && !h.Since.IsZero() && now.Sub(h.Since) >= mb.HoldFor {
				n, err := g.releaseOne(ctx, ref, false)
				if errors.Is(err, ErrNotHeld) {
					continue // another replica's sweep, or an operator, was first
				}
				if err != nil {
					g.warnOnce("release "+h.Domain, "mass-bounce sweep: discard an expired hold", err, zap.String("receiving_domain", h.Domain))
					continue
				}
				if m := g.metrics; m != nil {
					m.GuardHoldsExpired.Inc()
					m.GuardExpiredSuppressions.Add(float64(n))
				}
				g.log.Warn("mass-bounce hold expired: nobody applied or discarded it within hold_for; its held suppressions are discarded",
					zap.String("receiving_domain", h.Domain), zap.String("scope", h.Scope), zap.String("tenant", h.Tenant),
					zap.Time("since", h.Since), zap.Duration("hold_for", mb.HoldFor), zap.Int("suppressions", n))
				out = append(out, Swept{Domain: h.Domain, Scope: h.Scope, Tenant: h.Tenant, Expired: true, Count: n})
				expired += n
				ended++
				anyExpired = true
				continue
			}
			if !recovering {
				continue
			}
			var n, threshold int
			if ref.whole {
				n, err = g.Count(ctx, h.Domain, mb.Window)
				threshold = mb.Threshold
			} else {
				n, err = g.TenantCount(ctx, h.Domain, h.Tenant, mb.Window)
				threshold = mb.PerTenant()
			}
			if err != nil {
				g.warnOnce("count "+h.Domain, "mass-bounce sweep: count", err, zap.String("receiving_domain", h.Domain))
				continue
			}
			if n >= threshold {
				continue
			}
			released, err := g.releaseOne(ctx, ref, apply)
			if errors.Is(err, ErrNotHeld) {
				continue
			}
			if err != nil {
				g.warnOnce("release "+h.Domain, "mass-bounce sweep: release", err, zap.String("receiving_domain", h.Domain))
				continue
			}
			g.log.Info("mass-bounce hold ended on recovery", zap.String("receiving_domain", h.Domain), zap.String("scope", h.Scope),
				zap.String("tenant", h.Tenant), zap.String("on_recovery", mb.OnRecovery), zap.Int("suppressions", released))
			out = append(out, Swept{Domain: h.Domain, Scope: h.Scope, Tenant: h.Tenant, Applied: apply, Count: released})
			ended++
		}
		switch {
		case anyExpired:
			g.settle(ctx, domain, "expired after hold_for: "+strconv.Itoa(expired)+" held suppressions discarded", "expired")
		case ended > 0:
			// "quiet": the incidents-resolved metric's closed set; the domain went quiet.
			g.settle(ctx, domain, "recovery: "+mb.OnRecovery, "quiet")
		}
	}
	return out
}

// warnOnce logs a sweeper failure when it starts or its text changes, not at every
// pass while Redis is away; a nil err clears it.
func (g *Guard) warnOnce(where, msg string, err error, fields ...zap.Field) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		delete(g.warned, where)
		return
	}
	if g.warned[where] == err.Error() {
		return
	}
	g.warned[where] = err.Error()
	g.log.Warn(msg, append(fields, zap.Error(err))...)
}
