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

// Incident is a sender-side incident as the API and the notifier see it.
type Incident struct {
	Fingerprint     string    `json:"fingerprint"`
	Tenant          string    `json:"tenant"`
	Class           string    `json:"class"`
	SendingDomain   string    `json:"sending_domain,omitempty"`
	ReceivingDomain string    `json:"receiving_domain,omitempty"`
	SendingIP       string    `json:"sending_ip,omitempty"`
	Code            string    `json:"code,omitempty"`
	Rule            string    `json:"rule,omitempty"`
	ESP             string    `json:"esp,omitempty"`
	Count           int       `json:"count"`
	FirstSeen       time.Time `json:"first_seen"`
	LastSeen        time.Time `json:"last_seen"`
	ExampleReply    string    `json:"example_reply"`
	Fix             []string  `json:"fix"`
	Notified        bool      `json:"notified"`
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
// index entries. offset pages through the list.
func (s *Store) ListSuppressions(ctx context.Context, tenant string, offset, limit int) ([]Record, error) {
	idx := s.keys.SuppressionIndex(tenant)
	now := s.opt.Now().UnixMilli()
	if err := s.rdb.ZRemRangeByScore(ctx, idx, "-inf", "("+strconv.FormatInt(now, 10)).Err(); err != nil {
		return nil, fmt.Errorf("prune suppression index: %w", err)
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

// OpenIncidents returns the open sender-side incidents, most recent first.
func (s *Store) OpenIncidents(ctx context.Context, limit int) ([]Incident, error) {
	fps, err := s.rdb.ZRevRange(ctx, s.keys.OpenIncidents(), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	incs, missing, err := s.incidents(ctx, fps)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		// Expired incidents (quiet for the incident TTL) leave the index here.
		s.rdb.ZRem(ctx, s.keys.OpenIncidents(), missing...)
	}
	return incs, nil
}

func (s *Store) incidents(ctx context.Context, fps []string) ([]Incident, []any, error) {
	if len(fps) == 0 {
		return []Incident{}, nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(fps))
	for i, fp := range fps {
		cmds[i] = pipe.HGetAll(ctx, s.keys.Incident(fp))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, fmt.Errorf("read incidents: %w", err)
	}
	out := make([]Incident, 0, len(fps))
	var missing []any
	for i, c := range cmds {
		m := c.Val()
		if len(m) == 0 {
			missing = append(missing, fps[i])
			continue
		}
		out = append(out, incidentFromHash(m))
	}
	return out, missing, nil
}

// PendingNotifications returns up to n incidents whose alert has not been sent.
func (s *Store) PendingNotifications(ctx context.Context, n int) ([]Incident, error) {
	fps, err := s.rdb.ZRange(ctx, s.keys.PendingNotify(), 0, int64(n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("list pending notifications: %w", err)
	}
	incs, missing, err := s.incidents(ctx, fps)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		s.rdb.ZRem(ctx, s.keys.PendingNotify(), missing...)
	}
	return incs, nil
}

// ClaimNotification takes a short lock on the incident's alert so that two notifier
// replicas do not both send it. It returns false when another replica holds it.
func (s *Store) ClaimNotification(ctx context.Context, fingerprint string, hold time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.keys.IncidentClaim(fingerprint), "1", hold).Result()
	if err != nil {
		return false, fmt.Errorf("claim notification %s: %w", fingerprint, err)
	}
	return ok, nil
}

// MarkNotified records that the incident's alert was sent.
func (s *Store) MarkNotified(ctx context.Context, fingerprint string) error {
	if err := s.rdb.HSet(ctx, s.keys.Incident(fingerprint), "notified", 1).Err(); err != nil {
		return fmt.Errorf("mark %s notified: %w", fingerprint, err)
	}
	if err := s.rdb.ZRem(ctx, s.keys.PendingNotify(), fingerprint).Err(); err != nil {
		return fmt.Errorf("unqueue %s notification: %w", fingerprint, err)
	}
	return nil
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

func incidentFromHash(m map[string]string) Incident {
	count, _ := strconv.Atoi(m["count"])
	inc := Incident{
		Fingerprint: m["fingerprint"], Tenant: m["tenant"], Class: m["class"],
		SendingDomain: m["sending_domain"], ReceivingDomain: m["receiving_domain"], SendingIP: m["sending_ip"], Code: m["code"],
		Rule: m["rule"], ESP: m["esp"], Count: count,
		FirstSeen: ms(m["first_seen"]), LastSeen: ms(m["last_seen"]),
		ExampleReply: m["example_reply"], Notified: m["notified"] == "1",
	}
	_ = json.Unmarshal([]byte(m["fix"]), &inc.Fix)
	if inc.Fix == nil {
		inc.Fix = []string{}
	}
	return inc
}
