package alert

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/metrics"
)

// Lifecycle says how incidents of a class live: when a quiet one resolves, how severe
// it is, how often an open one is reminded. The policy file provides it.
type Lifecycle interface {
	ResolveAfter(class string) time.Duration
	Severity(class string) string
	RemindEvery() time.Duration
}

// Notifier is the notify role: it resolves quiet incidents, adds reminders, and
// delivers every transition to every receiver it is routed to, once. Any number of
// replicas may run it: each delivery is claimed under a lease in Redis.
type Notifier struct {
	Store     *Store
	Config    *Config
	Targets   []Target // the receivers; built-in ones have All set
	Lifecycle func() Lifecycle
	Describe  Describer
	Metrics   *metrics.Metrics
	Log       *zap.Logger
	Interval  time.Duration // how often due deliveries are looked for (default 1s)
	Sweep     time.Duration // how often quiet incidents and reminders are checked (default 5s)
	Now       func() time.Time
	// OnSent, if set, is called after a notification was delivered (the demo prints it).
	OnSent func(target string, n receiver.Notification)

	warned sync.Map // receiver → last logged failure text, so a down receiver logs on change
}

// now is Notifier.Now, or the wall clock when it is not set: DeliverDue and SweepOnce
// are called without Run too (tests, one-off deliveries), and a nil Now panicked there.
func (n *Notifier) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

// leaseFor is how long a claimed delivery is held: longer than one send may take, so
// two replicas never send the same transition while the first is still trying.
func (n *Notifier) leaseFor() time.Duration { return 3*n.Config.Delivery.Timeout.D + 5*time.Second }

// Run works until ctx is cancelled. Each receiver has its own loop, so a receiver that
// hangs delays nobody else.
func (n *Notifier) Run(ctx context.Context) error {
	if n.Interval <= 0 {
		n.Interval = time.Second
	}
	if n.Sweep <= 0 {
		n.Sweep = 5 * time.Second
	}
	var wg sync.WaitGroup
	for _, t := range n.Targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.every(ctx, n.Interval, func() { n.DeliverDue(ctx, t) })
		}()
	}
	n.every(ctx, n.Sweep, func() { n.SweepOnce(ctx) })
	wg.Wait()
	return nil
}

func (n *Notifier) every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		f()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SweepOnce resolves the incidents that were quiet for their class's resolve period
// and adds reminders to those open and unacknowledged for the reminder interval.
func (n *Notifier) SweepOnce(ctx context.Context) {
	lc := n.Lifecycle()
	active, err := n.Store.Active(ctx, 10000)
	if err != nil {
		n.warn("sweep", err)
		return
	}
	if m := n.Metrics; m != nil {
		m.IncidentsActive.Set(float64(len(active)))
	}
	if len(active) == 0 {
		return
	}
	ids := make([]string, len(active))
	for i, z := range active {
		ids[i], _ = z.Member.(string)
	}
	classes, err := n.Store.Classes(ctx, ids)
	if err != nil {
		n.warn("sweep", err)
		return
	}
	now := n.now()
	for i, z := range active {
		quiet := lc.ResolveAfter(classes[i])
		last := time.UnixMilli(int64(z.Score))
		if now.Sub(last) >= quiet {
			ok, err := n.Store.ResolveIfQuiet(ctx, ids[i], quiet)
			if err != nil && !errors.Is(err, ErrNotFound) {
				n.warn("sweep", err)
				continue
			}
			if ok {
				n.Log.Info("incident resolved after its quiet period", zap.String("id", ids[i]), zap.String("class", classes[i]), zap.Duration("quiet", quiet))
				if m := n.Metrics; m != nil {
					m.IncidentsResolved.WithLabelValues(classes[i], "quiet").Inc()
				}
			}
			continue
		}
		if every := lc.RemindEvery(); every > 0 {
			if _, err := n.Store.Remind(ctx, ids[i], every); err != nil && !errors.Is(err, ErrNotFound) {
				n.warn("sweep", err)
			}
		}
	}
}

// DeliverDue delivers target's due notifications.
func (n *Notifier) DeliverDue(ctx context.Context, t Target) {
	ids, err := n.Store.Due(ctx, 200)
	if err != nil {
		n.warn(t.Name, err)
		return
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		inc, err := n.Store.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			_ = n.Store.settle(ctx, id, nil)
			continue
		}
		if err != nil {
			n.warn(t.Name, err)
			return
		}
		routed := n.routed(&inc)
		names := make([]string, len(routed))
		mine := false
		for i, r := range routed {
			names[i] = r.Name
			mine = mine || r.Name == t.Name
		}
		if mine {
			n.deliver(ctx, t, &inc)
		}
		if err := n.Store.settle(ctx, id, names); err != nil {
			n.warn(t.Name, err)
		}
	}
}

// routed is every target the incident goes to.
func (n *Notifier) routed(inc *Incident) []Target {
	// "Every receiver" (no routes, or no route matched and no default_receivers) is
	// every target: matching the config's names only silently skipped a target the
	// file does not name, and settle then took the incident off the due set.
	names, everyone := n.Config.route(inc)
	var out []Target
	for _, t := range n.Targets {
		if t.All || everyone || contains(names, t.Name) {
			out = append(out, t)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// deliver sends target every transition of inc it has not had, in order, stopping at
// the first failure.
func (n *Notifier) deliver(ctx context.Context, t Target, inc *Incident) {
	d := n.Config.Delivery
	for range keepTransitions + 1 {
		c, res, err := n.Store.claim(ctx, inc.ID, t.Name, token(), n.leaseFor())
		if err != nil {
			n.warn(t.Name, err)
			return
		}
		if res != claimed {
			return
		}
		note := n.Config.Notification(inc, c.Transition, n.Describe)
		now := n.now()
		if now.Sub(c.Transition.At) > d.GiveUpAfter.D {
			n.count(t.Name, "dropped", "expired", note.Kind)
			n.Log.Warn("alert notification expired undelivered", zap.String("receiver", t.Name), zap.String("id", inc.ID),
				zap.String("kind", string(note.Kind)), zap.Int64("tries", c.Tries), zap.Duration("give_up_after", d.GiveUpAfter.D))
			if _, err := n.Store.finish(ctx, c, "drop", time.Time{}, "expired after "+d.GiveUpAfter.D.String()); err != nil {
				n.warn(t.Name, err)
				return
			}
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, d.Timeout.D)
		start := time.Now()
		err = t.Receiver.Send(sctx, note)
		cancel()
		if m := n.Metrics; m != nil {
			m.AlertSendSeconds.WithLabelValues(t.Name).Observe(time.Since(start).Seconds())
		}
		if err == nil {
			n.warned.Delete(t.Name)
			if err := n.finish(ctx, c, "done", time.Time{}, ""); err != nil {
				n.warn(t.Name, err)
				return
			}
			n.count(t.Name, "sent", "", note.Kind)
			n.Log.Info("alert notification sent", zap.String("receiver", t.Name), zap.String("id", inc.ID),
				zap.String("kind", string(note.Kind)), zap.Int64("seq", note.Seq), zap.String("class", inc.Class))
			if n.OnSent != nil {
				n.OnSent(t.Name, note)
			}
			continue
		}
		reason := receiver.ReasonOf(err)
		n.count(t.Name, "failed", reason, note.Kind)
		if !receiver.Retryable(err) {
			n.count(t.Name, "dropped", reason, note.Kind)
			n.Log.Error("alert notification refused by the receiver; not retried", zap.String("receiver", t.Name),
				zap.String("id", inc.ID), zap.String("kind", string(note.Kind)), zap.Error(err))
			if err2 := n.finish(ctx, c, "drop", time.Time{}, err.Error()); err2 != nil {
				n.warn(t.Name, err2)
			}
			return
		}
		wait := Backoff(c.Tries, d.InitialBackoff.D, d.MaxBackoff.D)
		var re *receiver.Error
		if errors.As(err, &re) && re.RetryAfter > wait {
			wait = min(re.RetryAfter, d.MaxBackoff.D)
		}
		n.count(t.Name, "retried", "", note.Kind)
		n.warnf(t.Name, "alert notification failed; will retry", err, zap.String("id", inc.ID), zap.Duration("retry_in", wait), zap.Int64("tries", c.Tries+1))
		if err := n.finish(ctx, c, "retry", n.now().Add(wait), err.Error()); err != nil {
			n.warn(t.Name, err)
		}
		return
	}
}

// finish records how a claimed send ended, also when ctx was cancelled during the send
// (the role stopping): a send the receiver accepted but that stays unrecorded is sent
// again by the next replica once the lease runs out, a second page.
func (n *Notifier) finish(ctx context.Context, c Claim, outcome string, next time.Time, errText string) error {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := n.Store.finish(fctx, c, outcome, next, errText)
	return err
}

// Backoff is the delay before retry tries+1: initial·2^tries capped at max, with ±20 %
// jitter so replicas and receivers do not retry in lockstep.
func Backoff(tries int64, initial, maxDelay time.Duration) time.Duration {
	d := maxDelay
	// Compare before shifting: initial<<tries can overflow, and "x > 0" does not catch
	// every overflow (34.359738369s<<29 wraps to 0.54s).
	if tries >= 0 && tries < 63 && initial > 0 && initial <= maxDelay>>tries {
		d = initial << tries
	}
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return max(d+jitter, time.Millisecond)
}

func token() string {
	b := make([]byte, 8)
	_, _ = cryptoRead(b)
	return hex.EncodeToString(b)
}

var cryptoRead = crand.Read

func (n *Notifier) count(target, what, reason string, kind receiver.Kind) {
	m := n.Metrics
	if m == nil {
		return
	}
	switch what {
	case "sent":
		m.AlertSent.WithLabelValues(target, string(kind)).Inc()
	case "failed":
		m.AlertFailed.WithLabelValues(target, reason).Inc()
	case "retried":
		m.AlertRetried.WithLabelValues(target).Inc()
	case "dropped":
		m.AlertDropped.WithLabelValues(target, reason).Inc()
	}
}

// warn logs a failure of the notifier's own (Redis) when its text changes.
func (n *Notifier) warn(where string, err error) {
	n.warnf(where, "alert notifier: state unavailable", err)
}

func (n *Notifier) warnf(where, msg string, err error, fields ...zap.Field) {
	if errors.Is(err, context.Canceled) {
		// Stopping mid-step (SIGTERM, the demo's exit): nothing failed, the step's lease
		// runs out and the next run, here or on another replica, does it again.
		n.Log.Debug(msg+": stopped mid-step", append(fields, zap.String("receiver", where), zap.Error(err))...)
		return
	}
	if prev, ok := n.warned.Load(where); ok && prev == err.Error() {
		return
	}
	n.warned.Store(where, err.Error())
	n.Log.Warn(msg, append(fields, zap.String("receiver", where), zap.Error(err))...)
}
