package suppress

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Audited actions: every change the API makes, named "<thing>.<verb>".
const (
	AuditSuppressionAdd    = "suppression.add"
	AuditSuppressionRemove = "suppression.remove"
	AuditAlertAck          = "alert.ack"
	AuditAlertResolve      = "alert.resolve"
	AuditMassBounceApply   = "mass_bounce.apply"
	AuditMassBounceDiscard = "mass_bounce.discard"
)

// AuditEntry is one change made through the API: who (the token's name, never the
// token), what, on which target, and why.
type AuditEntry struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Tenant string    `json:"tenant,omitempty"`
	// Target is what changed: an address (in its Redis form, a keyed hash with
	// REBOUND_ADDRESS_HASH_KEY), an incident ID or a domain.
	Target string `json:"target"`
	Reason string `json:"reason,omitempty"`
	// Count is how many records a mass-bounce decision applied or discarded.
	Count int `json:"count,omitempty"`
}

// Audit appends e to the change log (capped at auditLen entries). An address target
// is stored in its Redis form, like every other key of the recipient.
func (s *Store) Audit(ctx context.Context, e AuditEntry, targetIsAddress bool) error {
	if e.At.IsZero() {
		e.At = s.opt.Now().UTC()
	}
	if targetIsAddress {
		e.Target = s.addrKey(e.Target)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	pipe := s.rdb.Pipeline()
	pipe.LPush(ctx, s.keys.ChangeLog(), b)
	pipe.LTrim(ctx, s.keys.ChangeLog(), 0, auditLen-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditLog returns the most recent changes, newest first.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	raw, err := s.rdb.LRange(ctx, s.keys.ChangeLog(), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("read change log: %w", err)
	}
	out := make([]AuditEntry, 0, len(raw))
	for _, r := range raw {
		var e AuditEntry
		if json.Unmarshal([]byte(r), &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}
