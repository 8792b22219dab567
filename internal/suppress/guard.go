package suppress

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// guardScript counts new suppressions of one receiving domain and, once too many
// distinct recipients of it were suppressed within the window, holds them instead.
//
// KEYS[1] recipients set   KEYS[2] guard state hash   KEYS[3] pending hash
// ARGV[1] now (ms)  ARGV[2] window (ms)  ARGV[3] threshold  ARGV[4] pending TTL (ms)
// ARGV[5..] pairs of (member "namespace|address", held change JSON)
//
// Returns {held 0|1, distinct recipients in the window, newly held 0|1}.
var guardScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
for i = 5, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], now, ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], window)
local count = redis.call('ZCARD', KEYS[1])
local held = redis.call('HGET', KEYS[2], 'held') == '1'
local newly = 0
if not held and count >= tonumber(ARGV[3]) then
  held = true
  newly = 1
  redis.call('HSET', KEYS[2], 'held', 1, 'since', now)
end
if not held then return {0, count, 0} end
for i = 5, #ARGV, 2 do
  redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i+1])
end
redis.call('HSET', KEYS[2], 'count', count, 'last_seen', now)
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
return {1, count, newly}
`)

// GuardSettings are the mass-bounce guard's thresholds (from the policy file).
type GuardSettings struct {
	Window    time.Duration
	Threshold int
	HoldFor   time.Duration // pending suppressions are discarded after this unless decided
}

// GuardResult is the guard's answer for one domain of a batch.
type GuardResult struct {
	Held, NewlyHeld bool
	Count           int
}

// Guard counts the batch's new suppressions per receiving domain and holds them where
// a domain crossed the threshold. changes maps each domain to the suppressions the
// batch would write for it; held ones are stored as pending, to be applied or
// discarded later. One pipelined round trip for the batch.
func (s *Store) Guard(ctx context.Context, g GuardSettings, changes map[string][]Change) (map[string]GuardResult, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	now := s.opt.Now().UnixMilli()
	argsByDomain := map[string][]any{}
	for domain, cs := range changes {
		args := []any{now, g.Window.Milliseconds(), g.Threshold, g.HoldFor.Milliseconds()}
		for i := range cs {
			s.protect(&cs[i])
			c := cs[i]
			b, err := json.Marshal(c)
			if err != nil {
				return nil, fmt.Errorf("encode held change: %w", err)
			}
			args = append(args, c.Tenant+"|"+c.Address, b)
		}
		argsByDomain[domain] = args
	}
	run := func(sha bool) (map[string]*redis.Cmd, error) {
		pipe := s.rdb.Pipeline()
		cmds := map[string]*redis.Cmd{}
		for domain, args := range argsByDomain {
			keys := []string{s.keys.GuardRecipients(domain), s.keys.GuardState(domain), s.keys.GuardPending(domain)}
			if sha {
				cmds[domain] = guardScript.EvalSha(ctx, pipe, keys, args...)
			} else {
				cmds[domain] = guardScript.Eval(ctx, pipe, keys, args...)
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
	out := make(map[string]GuardResult, len(cmds))
	var held []any
	for domain, cmd := range cmds {
		v, err := cmd.Int64Slice()
		if err != nil || len(v) != 3 {
			return nil, fmt.Errorf("mass-bounce guard %s: %v", domain, err)
		}
		r := GuardResult{Held: v[0] == 1, Count: int(v[1]), NewlyHeld: v[2] == 1}
		out[domain] = r
		if r.NewlyHeld {
			held = append(held, domain)
		}
	}
	if len(held) > 0 {
		if err := s.rdb.SAdd(ctx, s.keys.HeldDomains(), held...).Err(); err != nil {
			return nil, fmt.Errorf("mass-bounce guard index: %w", err)
		}
	}
	return out, nil
}

// HeldDomain is a receiving domain whose guard holds suppressions.
type HeldDomain struct {
	Domain   string    `json:"domain"`
	Since    time.Time `json:"since"`
	LastSeen time.Time `json:"last_seen"`
	Count    int       `json:"recipients_in_window"`
	Pending  int64     `json:"pending"`
}

// HeldDomains lists the domains whose suppressions are held.
func (s *Store) HeldDomains(ctx context.Context) ([]HeldDomain, error) {
	domains, err := s.rdb.SMembers(ctx, s.keys.HeldDomains()).Result()
	if err != nil {
		return nil, fmt.Errorf("list held domains: %w", err)
	}
	pipe := s.rdb.Pipeline()
	states := make([]*redis.MapStringStringCmd, len(domains))
	pend := make([]*redis.IntCmd, len(domains))
	for i, d := range domains {
		states[i] = pipe.HGetAll(ctx, s.keys.GuardState(d))
		pend[i] = pipe.HLen(ctx, s.keys.GuardPending(d))
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
			// Expired (HoldFor passed) or decided elsewhere: drop it from the index.
			s.rdb.SRem(ctx, s.keys.HeldDomains(), d)
			continue
		}
		n, _ := strconv.Atoi(m["count"])
		out = append(out, HeldDomain{Domain: d, Since: ms(m["since"]), LastSeen: ms(m["last_seen"]), Count: n, Pending: pend[i].Val()})
	}
	return out, nil
}

// ErrNotHeld is returned when a domain has no held suppressions to decide on.
var ErrNotHeld = fmt.Errorf("domain is not held")

// ReleaseHeld ends a domain's hold. With apply, the pending suppressions are written
// (each keeps its original event and reason); otherwise they are discarded. It
// returns how many there were.
func (s *Store) ReleaseHeld(ctx context.Context, domain string, apply bool) (int, error) {
	pending, err := s.rdb.HGetAll(ctx, s.keys.GuardPending(domain)).Result()
	if err != nil {
		return 0, fmt.Errorf("read pending %s: %w", domain, err)
	}
	state, err := s.rdb.HGet(ctx, s.keys.GuardState(domain), "held").Result()
	if err != nil && err != redis.Nil {
		return 0, fmt.Errorf("read guard %s: %w", domain, err)
	}
	if state != "1" && len(pending) == 0 {
		return 0, ErrNotHeld
	}
	if apply && len(pending) > 0 {
		changes := make([]Change, 0, len(pending))
		for _, raw := range pending {
			var c Change
			if err := json.Unmarshal([]byte(raw), &c); err != nil {
				continue
			}
			// A new effect ID: the original event was already recorded as held.
			c.EventID += ":released"
			changes = append(changes, c)
		}
		for i := 0; i < len(changes); i += 256 {
			outs, err := s.Apply(ctx, changes[i:min(i+256, len(changes))])
			if err != nil {
				return 0, fmt.Errorf("apply held suppressions of %s: %w", domain, err)
			}
			for _, o := range outs {
				if o.Err != nil {
					return 0, fmt.Errorf("apply held suppressions of %s: %w", domain, o.Err)
				}
			}
		}
	}
	pipe := s.rdb.TxPipeline()
	pipe.Del(ctx, s.keys.GuardPending(domain), s.keys.GuardState(domain), s.keys.GuardRecipients(domain))
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("end hold of %s: %w", domain, err)
	}
	if err := s.rdb.SRem(ctx, s.keys.HeldDomains(), domain).Err(); err != nil {
		return 0, fmt.Errorf("end hold of %s: %w", domain, err)
	}
	return len(pending), nil
}

// GuardCount returns how many distinct recipients of the domain were suppressed (or
// held) within the window ending now; the recovery check compares it with the threshold.
func (s *Store) GuardCount(ctx context.Context, domain string, window time.Duration) (int, error) {
	now := s.opt.Now().UnixMilli()
	n, err := s.rdb.ZCount(ctx, s.keys.GuardRecipients(domain), strconv.FormatInt(now-window.Milliseconds(), 10), "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("guard count %s: %w", domain, err)
	}
	return int(n), nil
}
