package guard

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"
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
	batch   bool // one hold-script call per batch (not on Cluster)

	mu     sync.Mutex
	warned map[string]string // the sweeper's last failure logged, per step
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
	_, cluster := cfg.Redis.(*redis.ClusterClient)
	return &Guard{rdb: cfg.Redis, keys: NewKeys(cfg.Prefix), store: cfg.Store, alerts: cfg.Alerts, metrics: cfg.Metrics, log: cfg.Log, now: cfg.Now, warned: map[string]string{},
		batch: !cluster}
}

// Keys exposes the key builder (tests and tooling).
func (g *Guard) Keys() Keys { return g.keys }

// Load loads the hold script (on every master of a Cluster), so the first batch runs
// EVALSHA without a NOSCRIPT retry.
func (g *Guard) Load(ctx context.Context) error {
	for _, sc := range []*redis.Script{holdScript, holdBatchScript, unindexScript} {
		if err := sc.Load(ctx, g.rdb).Err(); err != nil {
			return fmt.Errorf("load guard script: %w", err)
		}
	}
	return nil
}

// KeyGrace is how much longer than hold_for a hold's keys live in Redis. The sweeper
// discards a hold nobody decided on once hold_for has passed since it started; the
// grace makes sure it gets there (a pass every 30 s, replicas restarting) before Redis
// would drop the keys silently.
const KeyGrace = 24 * time.Hour

// HeldBy says which hold, if any, holds one change of a batch.
type HeldBy uint8

// The verdicts of Hold for one change.
const (
	NotHeld      HeldBy = iota // applied: the caller writes it
	HeldByDomain               // held by the domain-wide hold
	HeldByTenant               // held by its tenant's hold of the domain
)

// Result is the guard's answer for one domain of a batch.
type Result struct {
	Held      bool // the domain-wide hold is on after the batch
	NewlyHeld bool // … and this batch started it
	Count     int  // distinct recipients of the domain within the window (held tenants' excluded)
	// Tenants is the state of each tenant of the batch for the domain.
	Tenants map[string]TenantResult
	// Changes is the verdict on each change given for the domain, in order.
	Changes []HeldBy
}

// TenantResult is one tenant's hold of a domain after a batch.
type TenantResult struct {
	Held      bool // the tenant's hold of the domain is on
	NewlyHeld bool // … and this batch started it
	Count     int  // distinct recipients of the tenant for the domain within the window
}

// Hold counts the batch's new suppressions per receiving domain, per tenant and across
// tenants, one after the other in the order given, and holds those that come once a
// threshold is crossed (see holdScript): mb.PerTenant() distinct recipients of one
// tenant within mb.Window hold that tenant's suppressions for the domain, mb.Threshold
// across tenants hold every tenant's. The verdicts do not depend on how the events were
// cut into batches. changes maps each domain to the suppressions the batch would write
// for it, in event order (clear addresses: Hold protects its copies as the store
// would); held ones are stored as pending, with the time they were held, to be
// released later. One round trip for the batch (on a single Redis or Sentinel one script
// call, which also lists held domains in the held-domains index; on a Cluster one call per
// domain in a pipeline, plus a round trip for the index when something is held). Hold
// does not look at mb.Enabled or mb.OnRecovery: Check and the sweeper do.
func (g *Guard) Hold(ctx context.Context, mb policy.MassBounce, changes map[string][]suppress.Change) (map[string]Result, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	now := g.now().UnixMilli()
	calls := make(map[string]*holdCall, len(changes))
	// The arguments every domain's call begins with, boxed once for the batch (a batch
	// holds about one call per domain).
	head := []any{now, mb.Window.Milliseconds(), mb.Threshold, mb.PerTenant(), (mb.HoldFor + KeyGrace).Milliseconds()}
	for domain, cs := range changes {
		// A domain's changes come from few tenants (mostly one): a slice searched in
		// order costs less than a map per domain.
		var tenants []string
		for i := range cs {
			if t := TenantOf(&cs[i]); tenantIndex(tenants, t) == 0 {
				tenants = append(tenants, t)
			}
		}
		keys := []string{g.keys.Recipients(domain), g.keys.State(domain), g.keys.Pending(domain), g.keys.Tenants(domain)}
		args := make([]any, 0, 6+len(tenants)+3*len(cs))
		args = append(args, head...)
		args = append(args, len(tenants))
		for _, t := range tenants {
			keys = append(keys, g.keys.TenantRecipients(domain, t), g.keys.TenantPending(domain, t))
			args = append(args, t)
		}
		for _, c := range cs {
			c.EventTenant = TenantOf(&c)
			if c.At == 0 {
				c.At = now
			}
			g.store.Protect(&c)
			// github.com/goccy/go-json writes the bytes encoding/json would
			// (TestHeldChangeJSON) in less than half the time: one call per new
			// suppression, on the hot path.
			b, err := json.Marshal(c)
			if err != nil {
				return nil, fmt.Errorf("encode held change: %w", err)
			}
			args = append(args, tenantIndex(tenants, c.EventTenant), pendingField(&c), b)
		}
		// hold's result: 4 values, 3 per tenant, one verdict per change.
		calls[domain] = &holdCall{keys: keys, args: args, tenants: tenants, results: 4 + 3*len(tenants) + len(cs)}
	}
	run := func(sha bool) (map[string][]int64, error) {
		if g.batch {
			// Even for one domain: the batch script keeps the held-domains index in the
			// step that holds, which its skipping of unlisted domains relies on.
			return g.holdBatch(ctx, sortedCalls(calls), sha)
		}
		pipe := g.rdb.Pipeline()
		cmds := make(map[string]*redis.Cmd, len(calls))
		for domain, c := range calls {
			if sha {
				cmds[domain] = holdScript.EvalSha(ctx, pipe, c.keys, c.args...)
			} else {
				cmds[domain] = holdScript.Eval(ctx, pipe, c.keys, c.args...)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, err
		}
		out := make(map[string][]int64, len(cmds))
		for domain, cmd := range cmds {
			v, err := cmd.Int64Slice()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", domain, err)
			}
			out[domain] = v
		}
		return out, nil
	}
	results, err := run(true)
	if isNoScript(err) {
		results, err = run(false) // the script is idempotent per recipient
	}
	if err != nil {
		return nil, fmt.Errorf("mass-bounce guard: %w", err)
	}
	out := make(map[string]Result, len(results))
	var held []any
	for domain, v := range results {
		c := calls[domain]
		if want := 4 + 3*len(c.tenants) + len(changes[domain]); len(v) != want {
			return nil, fmt.Errorf("mass-bounce guard %s: script returned %d values, want %d", domain, len(v), want)
		}
		r := Result{Held: v[0] == 1, Count: int(v[1]), NewlyHeld: v[2] == 1, Tenants: make(map[string]TenantResult, len(c.tenants))}
		anyHeld := r.Held
		for j, t := range c.tenants {
			tr := TenantResult{Held: v[4+3*j] == 1, Count: int(v[5+3*j]), NewlyHeld: v[6+3*j] == 1}
			r.Tenants[t] = tr
			anyHeld = anyHeld || tr.Held
		}
		for _, x := range v[4+3*len(c.tenants):] {
			r.Changes = append(r.Changes, HeldBy(x))
		}
		out[domain] = r
		if anyHeld {
			// Every held batch, not only the one that started the hold: the index is
			// repaired if a release raced with a new hold (see settle).
			held = append(held, domain)
		}
	}
	// The batch script lists held domains itself, in the step that holds them.
	if len(held) > 0 && !g.batch {
		if err := g.rdb.SAdd(ctx, g.keys.HeldDomains(), held...).Err(); err != nil {
			return nil, fmt.Errorf("mass-bounce guard index: %w", err)
		}
	}
	return out, nil
}

// tenantIndex is t's position in tenants from 1 (the hold script's tenant index), 0 when
// it is not there.
func tenantIndex(tenants []string, t string) int {
	for i, x := range tenants {
		if x == t {
			return i + 1
		}
	}
	return 0
}

// holdCall is one domain's call of the hold script.
type holdCall struct {
	keys    []string
	args    []any
	tenants []string
	results int // how many values the script returns for this domain
}

type domainCall struct {
	domain string
	*holdCall
}

// sortedCalls orders the calls by domain, so a batch call's keys come in a stable order.
func sortedCalls(calls map[string]*holdCall) []domainCall {
	out := make([]domainCall, 0, len(calls))
	for d, c := range calls {
		out = append(out, domainCall{d, c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].domain < out[j].domain })
	return out
}

// holdBatch runs the hold script of every domain in one call of holdBatchScript.
func (g *Guard) holdBatch(ctx context.Context, calls []domainCall, sha bool) (map[string][]int64, error) {
	keys := []string{g.keys.HeldDomains()}
	args := make([]any, 1, 1+3*len(calls))
	args[0] = len(calls)
	for _, c := range calls {
		keys = append(keys, c.keys...)
		args = append(args, c.domain, len(c.keys), len(c.args))
	}
	for _, c := range calls {
		args = append(args, c.args...)
	}
	var cmd *redis.Cmd
	if sha {
		cmd = holdBatchScript.EvalSha(ctx, g.rdb, keys, args...)
	} else {
		cmd = holdBatchScript.Eval(ctx, g.rdb, keys, args...)
	}
	all, err := cmd.Int64Slice()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]int64, len(calls))
	at := 0
	for _, c := range calls {
		n := c.results
		if at+n > len(all) {
			return nil, fmt.Errorf("batch script returned %d values, too few for %d domains", len(all), len(calls))
		}
		out[c.domain] = all[at : at+n : at+n]
		at += n
	}
	if at != len(all) {
		return nil, fmt.Errorf("batch script returned %d values for %d domains, want %d", len(all), len(calls), at)
	}
	return out, nil
}

// pendingField is a held change's field in a pending hash, and its member in the
// recipients sets: one entry per recipient and namespace.
func pendingField(c *suppress.Change) string { return c.Tenant + "|" + c.Address }

// HeldDomain is one hold: a receiving domain's domain-wide hold, or one tenant's hold
// of it.
type HeldDomain struct {
	Domain string `json:"domain"`
	// Scope is "domain" (every tenant's new suppressions for the domain are held) or
	// "tenant" (only Tenant's: its own count crossed mass_bounce.tenant_threshold).
	Scope    string    `json:"scope"`
	Tenant   string    `json:"tenant"` // the held tenant (scope tenant); "" is the default tenant
	Since    time.Time `json:"since"`
	LastSeen time.Time `json:"last_seen"`
	// Count is the hold's distinct recipients within the window as of its last held
	// suppression: the number the hold's log line gave.
	Count   int   `json:"recipients_in_window"`
	Pending int64 `json:"pending"`
}

// Held lists the holds, by domain (the domain-wide hold first, then the tenants'). A
// domain with no hold left (released, or its keys expired) leaves the index here.
func (g *Guard) Held(ctx context.Context) ([]HeldDomain, error) {
	domains, err := g.rdb.SMembers(ctx, g.keys.HeldDomains()).Result()
	if err != nil {
		return nil, fmt.Errorf("list held domains: %w", err)
	}
	sort.Strings(domains)
	pipe := g.rdb.Pipeline()
	states := make([]*redis.MapStringStringCmd, len(domains))
	tenants := make([]*redis.MapStringStringCmd, len(domains))
	pend := make([]*redis.IntCmd, len(domains))
	for i, d := range domains {
		states[i] = pipe.HGetAll(ctx, g.keys.State(d))
		tenants[i] = pipe.HGetAll(ctx, g.keys.Tenants(d))
		pend[i] = pipe.HLen(ctx, g.keys.Pending(d))
	}
	if len(domains) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read held domains: %w", err)
		}
	}
	out := []HeldDomain{}
	var tpend []*redis.IntCmd
	pipe = g.rdb.Pipeline()
	for i, d := range domains {
		m := states[i].Val()
		held := false
		if m["held"] == "1" {
			held = true
			n, _ := strconv.Atoi(m["count"])
			out = append(out, HeldDomain{Domain: d, Scope: ScopeDomain, Since: msTime(m["since"]), LastSeen: msTime(m["last_seen"]), Count: n, Pending: pend[i].Val()})
		}
		tm := tenants[i].Val()
		for _, t := range heldTenants(tm) {
			held = true
			n, _ := strconv.Atoi(tm[t+"|count"])
			out = append(out, HeldDomain{Domain: d, Scope: ScopeTenant, Tenant: t, Since: msTime(tm[t]), LastSeen: msTime(tm[t+"|last"]), Count: n})
			tpend = append(tpend, pipe.HLen(ctx, g.keys.TenantPending(d, t)))
		}
		if !held {
			// Released elsewhere, or expired: drop it from the index (unless a hold
			// started since the read above).
			g.unindex(ctx, d)
		}
	}
	if len(tpend) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read held tenants: %w", err)
		}
		k := 0
		for i := range out {
			if out[i].Scope == ScopeTenant {
				out[i].Pending = tpend[k].Val()
				k++
			}
		}
	}
	return out, nil
}

// heldTenants are the tenants a tenant-holds hash holds, sorted.
func heldTenants(m map[string]string) []string {
	var out []string
	for f := range m {
		if !strings.Contains(f, "|") {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// ErrNotHeld is returned when a domain (or tenant) has no held suppressions to decide on.
var ErrNotHeld = errors.New("domain is not held")

// Release ends every hold of a domain by hand: the domain-wide hold and each tenant's.
// With apply, the pending suppressions are written (each keeps its original event ID,
// reason, TTL and the time it was held; the recipient's log records the release as its
// own entry); otherwise they are discarded. It returns how many there were, and
// ErrNotHeld when the domain has nothing held. The domain's mass_bounce incident is
// resolved by "mass-bounce apply" or "mass-bounce discard".
func (g *Guard) Release(ctx context.Context, domain string, apply bool) (int, error) {
	by, how := manual(apply)
	var n int
	found := false
	if k, err := g.releaseOne(ctx, hold{domain: domain, whole: true}, apply); err == nil {
		n, found = n+k, true
	} else if !errors.Is(err, ErrNotHeld) {
		return n, err
	}
	tenants, err := g.rdb.HGetAll(ctx, g.keys.Tenants(domain)).Result()
	if err != nil {
		return n, fmt.Errorf("read tenant holds of %s: %w", domain, err)
	}
	for _, t := range heldTenants(tenants) {
		k, err := g.releaseOne(ctx, hold{domain: domain, tenant: t}, apply)
		if errors.Is(err, ErrNotHeld) {
			continue
		}
		if err != nil {
			return n, err
		}
		n, found = n+k, true
	}
	if !found {
		return 0, ErrNotHeld
	}
	g.settle(ctx, domain, by, how)
	return n, nil
}

// ReleaseTenant ends one tenant's hold of a domain by hand, as Release does for every
// hold of it; the domain-wide hold and the other tenants' stay. The domain's incident is
// resolved when no hold of the domain is left.
func (g *Guard) ReleaseTenant(ctx context.Context, domain, tenant string, apply bool) (int, error) {
	by, how := manual(apply)
	n, err := g.releaseOne(ctx, hold{domain: domain, tenant: tenant}, apply)
	if err != nil {
		return 0, err
	}
	g.settle(ctx, domain, by, how)
	return n, nil
}

func manual(apply bool) (by, how string) {
	if apply {
		return "mass-bounce apply", "manual"
	}
	return "mass-bounce discard", "manual"
}

// hold names one hold: a domain's domain-wide hold (whole) or one tenant's of it.
type hold struct {
	domain, tenant string
	whole          bool
}

func (g *Guard) pendingKey(h hold) string {
	if h.whole {
		return g.keys.Pending(h.domain)
	}
	return g.keys.TenantPending(h.domain, h.tenant)
}

// isHeld reports whether the hold is on.
func (g *Guard) isHeld(ctx context.Context, h hold) (bool, error) {
	if h.whole {
		v, err := g.rdb.HGet(ctx, g.keys.State(h.domain), "held").Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return false, fmt.Errorf("read guard %s: %w", h.domain, err)
		}
		return v == "1", nil
	}
	ok, err := g.rdb.HExists(ctx, g.keys.Tenants(h.domain), h.tenant).Result()
	if err != nil {
		return false, fmt.Errorf("read guard %s: %w", h.domain, err)
	}
	return ok, nil
}

// releaseOne ends one hold, applying or discarding what it keeps, and returns how many
// suppressions that was (ErrNotHeld: nothing to decide). It does not resolve the
// incident: the caller settles the domain once its holds are decided.
//
// Each step can be repeated after a failure: writing a released change twice is a
// duplicate, and the hold ends only after everything read was written. Suppressions
// held while the release runs are not lost: ending the hold returns what the pending
// hash holds at that moment, and those are decided too.
func (g *Guard) releaseOne(ctx context.Context, h hold, apply bool) (int, error) {
	pendingKey := g.pendingKey(h)
	pending, err := g.rdb.HGetAll(ctx, pendingKey).Result()
	if err != nil {
		return 0, fmt.Errorf("read pending %s: %w", h.domain, err)
	}
	held, err := g.isHeld(ctx, h)
	if err != nil {
		return 0, err
	}
	if !held && len(pending) == 0 {
		return 0, ErrNotHeld
	}
	if apply {
		if err := g.apply(ctx, h.domain, pending); err != nil {
			return 0, err
		}
	}
	// End the hold: new suppressions count afresh from here. What was held since the
	// read above is decided like the rest.
	var counted []string
	if !h.whole {
		// The tenant's recipients from before its hold counted toward the domain too;
		// they leave it with the tenant's count, or the tenant's next bounces after the
		// release would add to them and hold the whole domain.
		if counted, err = g.rdb.ZRange(ctx, g.keys.TenantRecipients(h.domain, h.tenant), 0, -1).Result(); err != nil {
			return 0, fmt.Errorf("end hold of %s: %w", h.domain, err)
		}
	}
	pipe := g.rdb.TxPipeline()
	if h.whole {
		pipe.Del(ctx, g.keys.State(h.domain), g.keys.Recipients(h.domain))
	} else {
		pipe.HDel(ctx, g.keys.Tenants(h.domain), h.tenant, h.tenant+"|count", h.tenant+"|last")
		pipe.Del(ctx, g.keys.TenantRecipients(h.domain, h.tenant))
		for i := 0; i < len(counted); i += 1000 {
			members := make([]any, 0, 1000)
			for _, m := range counted[i:min(i+1000, len(counted))] {
				members = append(members, m)
			}
			pipe.ZRem(ctx, g.keys.Recipients(h.domain), members...)
		}
	}
	left := pipe.HGetAll(ctx, pendingKey)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("end hold of %s: %w", h.domain, err)
	}
	late := map[string]string{}
	for f, v := range left.Val() {
		if _, ok := pending[f]; !ok {
			late[f] = v
		}
	}
	if apply && len(late) > 0 {
		if err := g.apply(ctx, h.domain, late); err != nil {
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
			return 0, fmt.Errorf("end hold of %s: %w", h.domain, err)
		}
	}
	return len(pending) + len(late), nil
}

// holds counts the domain's holds that are on (domain-wide and tenants').
func (g *Guard) holds(ctx context.Context, domain string) (int, error) {
	pipe := g.rdb.Pipeline()
	st := pipe.HGet(ctx, g.keys.State(domain), "held")
	ts := pipe.HGetAll(ctx, g.keys.Tenants(domain))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("read holds of %s: %w", domain, err)
	}
	n := len(heldTenants(ts.Val()))
	if st.Val() == "1" {
		n++
	}
	return n, nil
}

// settle runs after holds of a domain were released: when none is left, the domain
// leaves the index and its mass_bounce incident is resolved by `by`; while another
// hold of it is on, the incident stays open.
func (g *Guard) settle(ctx context.Context, domain, by, how string) {
	n, err := g.holds(ctx, domain)
	if err != nil {
		g.log.Warn("mass-bounce guard: holds not read after a release; the incident resolves when quiet", zap.String("receiving_domain", domain), zap.Error(err))
		return
	}
	if n > 0 {
		g.log.Info("mass-bounce guard: other holds of the domain remain; its incident stays open", zap.String("receiving_domain", domain), zap.Int("holds", n))
		return
	}
	removed, err := g.unindex(ctx, domain)
	if err != nil {
		g.log.Warn("mass-bounce guard: index not updated", zap.String("receiving_domain", domain), zap.Error(err))
	}
	if !removed && err == nil {
		g.log.Warn("mass-bounce guard: the domain was held again while its hold was released; its incident stays open",
			zap.String("receiving_domain", domain))
		return
	}
	g.resolve(ctx, domain, by, how)
}

// unindex takes a domain out of the held-domains index once no hold of it is on, and
// reports whether it did. On a single Redis or Sentinel it is one step (unindexScript):
// the batch hold script skips the hold state of unlisted domains, so a hold starting
// meanwhile must never be left out. On a Cluster, where the index is only the listing's,
// it leaves the index, then looks again and puts back a hold that started meanwhile
// (Hold adds it on its every held batch too).
func (g *Guard) unindex(ctx context.Context, domain string) (bool, error) {
	if g.batch {
		keys := []string{g.keys.HeldDomains(), g.keys.State(domain), g.keys.Tenants(domain)}
		n, err := unindexScript.Run(ctx, g.rdb, keys, domain).Int()
		if err != nil {
			return false, fmt.Errorf("unindex %s: %w", domain, err)
		}
		return n == 1, nil
	}
	if err := g.rdb.SRem(ctx, g.keys.HeldDomains(), domain).Err(); err != nil {
		return false, fmt.Errorf("unindex %s: %w", domain, err)
	}
	if again, err := g.holds(ctx, domain); err == nil && again > 0 {
		g.rdb.SAdd(ctx, g.keys.HeldDomains(), domain)
		return false, nil
	}
	return true, nil
}

// apply writes held changes, in batches of 256, and counts the new suppressions into
// rebound_suppressions_total. Each is written as a release: it keeps its event ID and
// the time it was held, and the recipient's log gets an entry of its own.
func (g *Guard) apply(ctx context.Context, domain string, pending map[string]string) error {
	changes := make([]suppress.Change, 0, len(pending))
	for f, raw := range pending {
		var c suppress.Change
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			g.log.Warn("mass-bounce guard: unreadable held suppression skipped", zap.String("receiving_domain", domain),
				zap.String("field", redactField(f)), zap.Error(err))
			continue
		}
		c.Released = true
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

// Count returns how many distinct recipients of the domain were suppressed (or held by
// the domain-wide hold) within the window ending now, across tenants; the recovery
// check compares it with the threshold.
func (g *Guard) Count(ctx context.Context, domain string, window time.Duration) (int, error) {
	return g.count(ctx, g.keys.Recipients(domain), domain, window)
}

// TenantCount is Count for one tenant's recipients of the domain.
func (g *Guard) TenantCount(ctx context.Context, domain, tenant string, window time.Duration) (int, error) {
	return g.count(ctx, g.keys.TenantRecipients(domain, tenant), domain, window)
}

func (g *Guard) count(ctx context.Context, key, domain string, window time.Duration) (int, error) {
	now := g.now().UnixMilli()
	n, err := g.rdb.ZCount(ctx, key, "("+strconv.FormatInt(now-window.Milliseconds(), 10), "+inf").Result()
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
