package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
)

// Config wires a Guard.
type Config struct {
	Redis  redis.UniversalClient
	Prefix string          // key prefix, "rebound:" by default (the suppress store's)
	Store  *suppress.Store // protects held changes and writes the applied ones
	// Alerts, if set, is where a released domain's mass_bounce incident is resolved.
	Alerts *alert.Store
	// Metrics, if set, counts applied released suppressions into
	// rebound_suppressions_total and resolved incidents into rebound_incidents_resolved_total.
	Metrics *metrics.Metrics
	Log     *zap.Logger      // default: none
	Now     func() time.Time // default time.Now; tests inject a clock
}

// Guard is the mass-bounce guard on one Redis. It is safe for concurrent use, and
// several replicas may share the state: every step is idempotent.
type Guard struct {
	rdb     redis.UniversalClient
	keys    Keys
	store   *suppress.Store
	alerts  *alert.Store
	metrics *metrics.Metrics
	log     *zap.Logger
	now     func() time.Time
}

// New returns the guard described by cfg. Redis and Store are required.
func New(cfg Config) *Guard {
	if cfg.Prefix == "" {
		cfg.Prefix = "rebound:"
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Guard{rdb: cfg.Redis, keys: NewKeys(cfg.Prefix), store: cfg.Store, alerts: cfg.Alerts, metrics: cfg.Metrics, log: cfg.Log, now: cfg.Now}
}

// Keys exposes the key builder (tests and tooling).
func (g *Guard) Keys() Keys { return g.keys }

// Load loads the hold script (on every master of a Cluster), so the first batch runs
// EVALSHA without a NOSCRIPT retry.
func (g *Guard) Load(ctx context.Context) error {
	if err := holdScript.Load(ctx, g.rdb).Err(); err != nil {
		return fmt.Errorf("load guard script: %w", err)
	}
	return nil
}

// Result is the guard's answer for one domain of a batch.
type Result struct {
	Held      bool // the domain is held: the batch's suppressions for it are pending
	NewlyHeld bool // … and this batch started the hold
	Count     int  // distinct recipients suppressed or held within the window
}

// Hold counts the batch's new suppressions per receiving domain and holds them where a
// domain reached mb.Threshold distinct recipients within mb.Window. changes maps each
// domain to the suppressions the batch would write for it (clear addresses: Hold
// protects its copies as the store would); held ones are stored as pending for
// mb.HoldFor, to be released later. One pipelined round trip for the batch, plus one
// for the held-domains index when a domain is held. Hold does not look at mb.Enabled
// or mb.OnRecovery: Check does.
func (g *Guard) Hold(ctx context.Context, mb policy.MassBounce, changes map[string][]suppress.Change) (map[string]Result, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	now := g.now().UnixMilli()
	argsByDomain := make(map[string][]any, len(changes))
	for domain, cs := range changes {
		args := make([]any, 0, 4+2*len(cs))
		args = append(args, now, mb.Window.Milliseconds(), mb.Threshold, mb.HoldFor.Milliseconds())
		for _, c := range cs {
			g.store.Protect(&c)
			b, err := json.Marshal(c)
			if err != nil {
				return nil, fmt.Errorf("encode held change: %w", err)
			}
			args = append(args, pendingField(&c), b)
		}
		argsByDomain[domain] = args
	}
	run := func(sha bool) (map[string]*redis.Cmd, error) {
		pipe := g.rdb.Pipeline()
		cmds := make(map[string]*redis.Cmd, len(argsByDomain))
		for domain, args := range argsByDomain {
			keys := []string{g.keys.Recipients(domain), g.keys.State(domain), g.keys.Pending(domain)}
			if sha {
				cmds[domain] = holdScript.EvalSha(ctx, pipe, keys, args...)
			} else {
				cmds[domain] = holdScript.Eval(ctx, pipe, keys, args...)
			}
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run(true)
	if isNoScript(err) {
		cmds, err = run(false) // the script is idempotent per recipient
	}
	if err != nil {
		return nil, fmt.Errorf("mass-bounce guard: %w", err)
	}
	out := make(map[string]Result, len(cmds))
	var held []any
	for domain, cmd := range cmds {
		v, err := cmd.Int64Slice()
		if err == nil && len(v) != 3 {
			err = fmt.Errorf("script returned %d values, want 3", len(v))
		}
		if err != nil {
			return nil, fmt.Errorf("mass-bounce guard %s: %w", domain, err)
		}
		r := Result{Held: v[0] == 1, Count: int(v[1]), NewlyHeld: v[2] == 1}
		out[domain] = r
		if r.Held {
			// Every held batch, not only the one that started the hold: the index is
			// repaired if a release raced with a new hold (see Release).
			held = append(held, domain)
		}
	}
	if len(held) > 0 {
		if err := g.rdb.SAdd(ctx, g.keys.HeldDomains(), held...).Err(); err != nil {
			return nil, fmt.Errorf("mass-bounce guard index: %w", err)
		}
	}
	return out, nil
}

// pendingField is a held change's field in the pending hash, and its member in the
// recipients set: one entry per recipient and namespace.
func pendingField(c *suppress.Change) string { return c.Tenant + "|" + c.Address }

// HeldDomain is a receiving domain whose guard holds suppressions.
type HeldDomain struct {
	Domain   string    `json:"domain"`
	Since    time.Time `json:"since"`
	LastSeen time.Time `json:"last_seen"`
	Count    int       `json:"recipients_in_window"`
	Pending  int64     `json:"pending"`
}

// Held lists the domains whose suppressions are held. A domain whose hold expired
// (hold_for passed with no decision) leaves the index here.
func (g *Guard) Held(ctx context.Context) ([]HeldDomain, error) {
	domains, err := g.rdb.SMembers(ctx, g.keys.HeldDomains()).Result()
	if err != nil {
		return nil, fmt.Errorf("list held domains: %w", err)
	}
	pipe := g.rdb.Pipeline()
	states := make([]*redis.MapStringStringCmd, len(domains))
	pend := make([]*redis.IntCmd, len(domains))
	for i, d := range domains {
		states[i] = pipe.HGetAll(ctx, g.keys.State(d))
		pend[i] = pipe.HLen(ctx, g.keys.Pending(d))
	}
	if len(domains) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read held domains: %w", err)
		}
	}
	out := []HeldDomain{}
	for i, d := range domains {
		m := states[i].Val()
		if m["held"] != "1" {
			// Expired (hold_for passed) or released elsewhere: drop it from the index.
			g.rdb.SRem(ctx, g.keys.HeldDomains(), d)
			continue
		}
		n, _ := strconv.Atoi(m["count"])
		out = append(out, HeldDomain{Domain: d, Since: msTime(m["since"]), LastSeen: msTime(m["last_seen"]), Count: n, Pending: pend[i].Val()})
	}
	return out, nil
}

// ErrNotHeld is returned when a domain has no held suppressions to decide on.
var ErrNotHeld = errors.New("domain is not held")

// Release ends a domain's hold by hand. With apply, the pending suppressions are
// written (each keeps its original event, reason and TTL, under the event ID
// "<id>:released"); otherwise they are discarded. It returns how many there were, and
// ErrNotHeld when the domain has nothing held. The domain's mass_bounce incident is
// resolved by "mass-bounce apply" or "mass-bounce discard".
func (g *Guard) Release(ctx context.Context, domain string, apply bool) (int, error) {
	by := "mass-bounce discard"
	if apply {
		by = "mass-bounce apply"
	}
	return g.release(ctx, domain, apply, by, "manual")
}

// release is Release with who resolves the incident (by) and how it counts (the
// rebound_incidents_resolved_total "how" label).
//
// Each step can be repeated after a failure: writing a released change twice is a
// duplicate, and the hold ends only after everything read was written. Suppressions
// held while the release runs are not lost: ending the hold returns what the pending
// hash holds at that moment, and those are decided too.
func (g *Guard) release(ctx context.Context, domain string, apply bool, by, how string) (int, error) {
	pendingKey := g.keys.Pending(domain)
	pending, err := g.rdb.HGetAll(ctx, pendingKey).Result()
	if err != nil {
		return 0, fmt.Errorf("read pending %s: %w", domain, err)
	}
	state, err := g.rdb.HGet(ctx, g.keys.State(domain), "held").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("read guard %s: %w", domain, err)
	}
	if state != "1" && len(pending) == 0 {
		return 0, ErrNotHeld
	}
	if apply {
		if err := g.apply(ctx, domain, pending); err != nil {
			return 0, err
		}
	}
	// End the hold: new suppressions of the domain are counted afresh from here. What
	// was held since the read above is decided like the rest.
	pipe := g.rdb.TxPipeline()
	pipe.Del(ctx, g.keys.State(domain), g.keys.Recipients(domain))
	left := pipe.HGetAll(ctx, pendingKey)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("end hold of %s: %w", domain, err)
	}
	late := map[string]string{}
	for f, v := range left.Val() {
		if _, ok := pending[f]; !ok {
			late[f] = v
		}
	}
	if apply && len(late) > 0 {
		if err := g.apply(ctx, domain, late); err != nil {
			return 0, err
		}
	}
	// Remove only what was decided: a hold that started again meanwhile keeps its own.
	fields := make([]string, 0, len(pending)+len(late))
	for f := range pending {
		fields = append(fields, f)
	}
	for f := range late {
		fields = append(fields, f)
	}
	for i := 0; i < len(fields); i += 1000 {
		if err := g.rdb.HDel(ctx, pendingKey, fields[i:min(i+1000, len(fields))]...).Err(); err != nil {
			return 0, fmt.Errorf("end hold of %s: %w", domain, err)
		}
	}
	// Leave the index, then look again: a hold that started after the transaction is put
	// back (Hold adds it on its every batch too, so none is left out of the index).
	if err := g.rdb.SRem(ctx, g.keys.HeldDomains(), domain).Err(); err != nil {
		return 0, fmt.Errorf("end hold of %s: %w", domain, err)
	}
	again, err := g.rdb.HGet(ctx, g.keys.State(domain), "held").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("end hold of %s: %w", domain, err)
	}
	n := len(pending) + len(late)
	if again == "1" {
		g.rdb.SAdd(ctx, g.keys.HeldDomains(), domain)
		g.log.Warn("mass-bounce guard: the domain was held again while its hold was released; its incident stays open",
			zap.String("receiving_domain", domain))
		return n, nil
	}
	g.resolve(ctx, domain, by, how)
	return n, nil
}

// apply writes held changes, in batches of 256, and counts the new suppressions.
func (g *Guard) apply(ctx context.Context, domain string, pending map[string]string) error {
	changes := make([]suppress.Change, 0, len(pending))
	for f, raw := range pending {
		var c suppress.Change
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			g.log.Warn("mass-bounce guard: unreadable held suppression skipped", zap.String("receiving_domain", domain),
				zap.String("field", redactField(f)), zap.Error(err))
			continue
		}
		// A new effect ID: the original event was already recorded as held.
		c.EventID += ":released"
		changes = append(changes, c)
	}
	for i := 0; i < len(changes); i += 256 {
		batch := changes[i:min(i+256, len(changes))]
		outs, err := g.store.Apply(ctx, batch)
		if err != nil {
			return fmt.Errorf("apply held suppressions of %s: %w", domain, err)
		}
		for j, o := range outs {
			if o.Err != nil {
				return fmt.Errorf("apply held suppressions of %s: %w", domain, o.Err)
			}
			if g.metrics != nil && !o.Duplicate && o.Suppressed {
				g.metrics.Suppressions.WithLabelValues(batch[j].Reason).Inc()
			}
		}
	}
	return nil
}

// redactField keeps the namespace of a pending field and drops the address.
func redactField(f string) string {
	ns, _, _ := strings.Cut(f, "|")
	return ns + "|…"
}

// IncidentID is the ID of the domain's mass_bounce incident: the fingerprint of the
// observations the process role makes for its held events.
func IncidentID(domain string) string {
	o := alert.Observation{Class: alert.ClassMassBounce, ReceivingDomain: domain}
	return o.Fingerprint()
}

// resolve resolves the domain's mass_bounce incident. A failure is logged, not
// returned: the hold is already released (a retry would find nothing held), and an
// incident nothing feeds any more resolves on its own after its quiet period.
func (g *Guard) resolve(ctx context.Context, domain, by, how string) {
	if g.alerts == nil {
		return
	}
	id := IncidentID(domain)
	changed, err := g.alerts.Resolve(ctx, id, by)
	switch {
	case errors.Is(err, alert.ErrNotFound):
	case err != nil:
		g.log.Warn("mass-bounce guard: incident not resolved; it resolves when quiet", zap.String("id", id),
			zap.String("receiving_domain", domain), zap.Error(err))
	case changed:
		g.log.Info("incident resolved", zap.String("id", id), zap.String("class", alert.ClassMassBounce),
			zap.String("receiving_domain", domain), zap.String("by", by))
		if g.metrics != nil {
			g.metrics.IncidentsResolved.WithLabelValues(alert.ClassMassBounce, how).Inc()
		}
	}
}

// Count returns how many distinct recipients of the domain were suppressed (or held)
// within the window ending now; the recovery check compares it with the threshold.
func (g *Guard) Count(ctx context.Context, domain string, window time.Duration) (int, error) {
	now := g.now().UnixMilli()
	n, err := g.rdb.ZCount(ctx, g.keys.Recipients(domain), strconv.FormatInt(now-window.Milliseconds(), 10), "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("guard count %s: %w", domain, err)
	}
	return int(n), nil
}

func isNoScript(err error) bool { return err != nil && strings.Contains(err.Error(), "NOSCRIPT") }

func msTime(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}
