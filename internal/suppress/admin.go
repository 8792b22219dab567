package suppress

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// removeScript lifts a suppression by hand and writes the removal into the recipient's
// history, atomically.
//
// KEYS[1] suppression hash   KEYS[2] soft window   KEYS[3] the recipient's log
// ARGV[1] log field (a unique ID for the removal)  ARGV[2] history entry (JSON)  ARGV[3] log TTL (ms)
//
// Returns the removed record as a flat field/value array, or an empty array when the
// recipient was not suppressed.
var removeScript = redis.NewScript(`
local rec = redis.call('HGETALL', KEYS[1])
if #rec == 0 then return rec end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[3]))
return rec
`)

// Removal is the audit record of a suppression lifted by hand: when, who (the API
// token's name), why, and the record that was removed.
type Removal struct {
	At      time.Time `json:"at"`
	Address string    `json:"address"`
	Tenant  string    `json:"tenant"`
	By      string    `json:"by"`
	Reason  string    `json:"reason"`
	Record  *Record   `json:"record"` // what was removed

	// LegacyNote reads the reason of removals logged before it was called so.
	LegacyNote string `json:"note,omitempty"`
}

// auditLen is how many removals the audit log keeps.
const auditLen = 10000

// Remove lifts the recipient's suppression in one namespace and keeps an audit record
// (in the recipient's history and in the removal log): by names who lifted it, reason
// why. It returns nil when there was nothing to remove.
func (s *Store) Remove(ctx context.Context, tenant, addr, by, reason string) (*Removal, error) {
	now := s.opt.Now()
	addr = s.addrKey(addr)
	id := "manual:remove:" + strconv.FormatInt(now.UnixNano(), 36)
	entry, _ := json.Marshal(historyEntry{At: now.UnixMilli(), EventID: id, Action: "removed", Rule: by})
	res, err := removeScript.Run(ctx, s.rdb,
		[]string{s.keys.Suppression(tenant, addr), s.keys.SoftWindow(tenant, addr), s.keys.Log(tenant, addr)},
		id, entry, max(s.opt.IdempotencyTTL, s.opt.HistoryTTL).Milliseconds()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("remove suppression: %w", err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		m[res[i]] = res[i+1]
	}
	rem := &Removal{At: now.UTC(), Address: addr, Tenant: tenant, By: by, Reason: reason, Record: recordFromHash(m)}
	b, _ := json.Marshal(rem)
	pipe := s.rdb.Pipeline()
	pipe.ZRem(ctx, s.keys.SuppressionIndex(tenant), addr)
	pipe.ZRem(ctx, s.keys.SuppressionsByAddress(tenant), addr)
	pipe.LPush(ctx, s.keys.RemovalLog(), b)
	pipe.LTrim(ctx, s.keys.RemovalLog(), 0, auditLen-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return rem, fmt.Errorf("record removal: %w", err)
	}
	return rem, nil
}

// Removals returns the most recent removals, newest first.
func (s *Store) Removals(ctx context.Context, limit int) ([]Removal, error) {
	raw, err := s.rdb.LRange(ctx, s.keys.RemovalLog(), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("read removal log: %w", err)
	}
	out := make([]Removal, 0, len(raw))
	for _, r := range raw {
		var rem Removal
		if json.Unmarshal([]byte(r), &rem) == nil {
			if rem.Reason == "" {
				rem.Reason, rem.LegacyNote = rem.LegacyNote, ""
			}
			out = append(out, rem)
		}
	}
	return out, nil
}

// Check is the answer of a bulk check for one address.
type Check struct {
	Address    string     `json:"address"`
	Suppressed bool       `json:"suppressed"`
	Reason     string     `json:"reason,omitempty"`
	Scope      string     `json:"scope,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
}

// CheckMany answers "suppressed?" for many addresses of one tenant (global first, then
// the tenant's own) in one round trip.
func (s *Store) CheckMany(ctx context.Context, tenant string, addrs []string) ([]Check, error) {
	pipe := s.rdb.Pipeline()
	nss := namespaces(tenant)
	cmds := make([][]*redis.SliceCmd, len(addrs))
	for i, a := range addrs {
		for _, ns := range nss {
			cmds[i] = append(cmds[i], pipe.HMGet(ctx, s.keys.Suppression(ns, s.addrKey(a)), "reason", "expires_at"))
		}
	}
	if len(addrs) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return nil, fmt.Errorf("check suppressions: %w", err)
		}
	}
	out := make([]Check, len(addrs))
	for i, a := range addrs {
		out[i] = Check{Address: a}
		for j, c := range cmds[i] {
			v := c.Val()
			reason, _ := v[0].(string)
			if reason == "" {
				continue
			}
			out[i].Suppressed, out[i].Reason, out[i].Scope = true, reason, "global"
			if nss[j] != "" {
				out[i].Scope = "tenant"
			}
			if exp, _ := v[1].(string); exp != "" && exp != "0" {
				if n, err := strconv.ParseInt(exp, 10, 64); err == nil {
					t := time.UnixMilli(n).UTC()
					out[i].ExpiresAt = &t
				}
			}
			break
		}
	}
	return out, nil
}
