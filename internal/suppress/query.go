package suppress

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Record is a recipient's suppression as the API shows it.
type Record struct {
	Address     string     `json:"address"`
	Tenant      string     `json:"tenant"`
	Reason      string     `json:"reason"`
	Class       string     `json:"class"`
	Rule        string     `json:"rule,omitempty"`
	Code        string     `json:"code,omitempty"`
	Reply       string     `json:"reply,omitempty"`
	ESP         string     `json:"esp,omitempty"`
	EventID     string     `json:"event_id"`
	LastEventID string     `json:"last_event_id,omitempty"`
	Events      int        `json:"events"`
	FirstSeen   time.Time  `json:"first_seen"`
	LastSeen    time.Time  `json:"last_seen"`
	ExpiresAt   *time.Time `json:"expires_at"` // null = permanent
	Scope       string     `json:"scope"`      // "global" (every tenant) or "tenant"
}

// HistoryEntry is one past decision about a recipient.
type HistoryEntry struct {
	At      time.Time `json:"at"`
	EventID string    `json:"event_id"`
	ESP     string    `json:"esp"`
	Action  string    `json:"action"`
	Class   string    `json:"class,omitempty"`
	Rule    string    `json:"rule,omitempty"`
	Code    string    `json:"code,omitempty"`
	Reply   string    `json:"reply,omitempty"`
}

// RecipientState is everything Rebound knows about one recipient.
type RecipientState struct {
	Suppression *Record        `json:"suppression"`
	SoftBounces int            `json:"soft_bounces"`
	SoftSince   *time.Time     `json:"soft_since"` // the oldest soft bounce still in the window
	History     []HistoryEntry `json:"history"`
}

// Suppression returns the recipient's suppression in one namespace (tenant "" is the
// global one), or nil when there is none.
func (s *Store) Suppression(ctx context.Context, tenant, addr string) (*Record, error) {
	addr = s.addrKey(addr)
	m, err := s.rdb.HGetAll(ctx, s.keys.Suppression(tenant, addr)).Result()
	if err != nil {
		return nil, fmt.Errorf("read suppression: %w", err)
	}
	return recordFromHash(m), nil
}

// Lookup answers "may we send to addr for tenant?": it returns the global suppression,
// else the tenant's own, else nil.
func (s *Store) Lookup(ctx context.Context, tenant, addr string) (*Record, error) {
	st, err := s.Recipient(ctx, tenant, addr)
	if err != nil {
		return nil, err
	}
	return st.Suppression, nil
}

// namespaces are the state namespaces that apply to a tenant: the global one, and the
// tenant's own when it has a name.
func namespaces(tenant string) []string {
	if tenant == "" {
		return []string{""}
	}
	return []string{"", tenant}
}

// Recipient returns what applies to the recipient for tenant — the suppression (global
// first), soft bounces and history of the global and the tenant's namespace — in one
// round trip. Soft bounces are all those still stored; RecipientWindow counts only
// those within the policy's window.
func (s *Store) Recipient(ctx context.Context, tenant, addr string) (RecipientState, error) {
	return s.RecipientWindow(ctx, tenant, addr, 0)
}

// RecipientWindow is Recipient counting only the soft bounces within window (0: all).
// The window's old entries are trimmed lazily, so a count must not include them.
func (s *Store) RecipientWindow(ctx context.Context, tenant, addr string, window time.Duration) (RecipientState, error) {
	addr = s.addrKey(addr)
	from := "-inf"
	if window > 0 {
		from = strconv.FormatInt(s.opt.Now().Add(-window).UnixMilli(), 10)
	}
	pipe := s.rdb.Pipeline()
	type cmds struct {
		sup  *redis.MapStringStringCmd
		soft *redis.ZSliceCmd
		log  *redis.MapStringStringCmd
	}
	var all []cmds
	for _, ns := range namespaces(tenant) {
		all = append(all, cmds{
			sup:  pipe.HGetAll(ctx, s.keys.Suppression(ns, addr)),
			soft: pipe.ZRangeByScoreWithScores(ctx, s.keys.SoftWindow(ns, addr), &redis.ZRangeBy{Min: from, Max: "+inf"}),
			log:  pipe.HGetAll(ctx, s.keys.Log(ns, addr)),
		})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return RecipientState{}, fmt.Errorf("read recipient: %w", err)
	}
	st := RecipientState{History: []HistoryEntry{}}
	var order []historyEntry
	for _, c := range all {
		if st.Suppression == nil {
			st.Suppression = recordFromHash(c.sup.Val())
		}
		for _, z := range c.soft.Val() {
			st.SoftBounces++
			if at := time.UnixMilli(int64(z.Score)).UTC(); st.SoftSince == nil || at.Before(*st.SoftSince) {
				st.SoftSince = &at
			}
		}
		for _, raw := range c.log.Val() {
			var h historyEntry
			if json.Unmarshal([]byte(raw), &h) == nil {
				order = append(order, h)
			}
		}
	}
	slices.SortFunc(order, func(a, b historyEntry) int {
		if a.At != b.At {
			return cmp.Compare(b.At, a.At)
		}
		if a.Seq != b.Seq {
			return cmp.Compare(b.Seq, a.Seq)
		}
		return strings.Compare(b.EventID, a.EventID)
	})
	for _, h := range order[:min(len(order), s.opt.HistoryLen)] {
		st.History = append(st.History, HistoryEntry{At: time.UnixMilli(h.At).UTC(), EventID: h.EventID, ESP: h.ESP, Action: h.Action, Class: h.Class, Rule: h.Rule, Code: h.Code, Reply: h.Reply})
	}
	return st, nil
}

// ListSuppressions returns up to limit suppressions of a tenant, after pruning expired
// index entries. offset pages through the list in expiry order; the API walks with
// ListPage's cursor instead, which stays exact while records are written.
func (s *Store) ListSuppressions(ctx context.Context, tenant string, offset, limit int) ([]Record, error) {
	idx := s.keys.SuppressionIndex(tenant)
	now := s.opt.Now().UnixMilli()
	if err := pruneScript.Run(ctx, s.rdb, []string{idx, s.keys.SuppressionsByAddress(tenant)}, now, pruneBatch).Err(); err != nil {
		return nil, fmt.Errorf("prune suppression indexes: %w", err)
	}
	addrs, err := s.rdb.ZRange(ctx, idx, int64(offset), int64(offset+limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("list suppression index: %w", err)
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(addrs))
	for i, a := range addrs {
		cmds[i] = pipe.HGetAll(ctx, s.keys.Suppression(tenant, a))
	}
	if len(addrs) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read suppressions: %w", err)
		}
	}
	out := make([]Record, 0, len(addrs))
	for _, c := range cmds {
		if r := recordFromHash(c.Val()); r != nil {
			out = append(out, *r)
		}
	}
	return out, nil
}

func recordFromHash(m map[string]string) *Record {
	if len(m) == 0 || m["reason"] == "" {
		return nil
	}
	events, _ := strconv.Atoi(m["events"])
	r := &Record{
		Address: m["address"], Tenant: m["tenant"], Reason: m["reason"], Class: m["class"],
		Rule: m["rule"], Code: m["code"], Reply: m["reply"], ESP: m["esp"], EventID: m["event_id"],
		LastEventID: m["last_event_id"], Events: events,
		FirstSeen: ms(m["first_seen"]), LastSeen: ms(m["last_seen"]),
	}
	if exp := ms(m["expires_at"]); !exp.IsZero() {
		r.ExpiresAt = &exp
	}
	r.Scope = "global"
	if r.Tenant != "" {
		r.Scope = "tenant"
	}
	return r
}
