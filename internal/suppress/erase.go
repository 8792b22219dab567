package suppress

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Erasure is what erasing one recipient removed and left.
type Erasure struct {
	KeysDeleted   int    `json:"keys_deleted"`             // suppression records, soft-bounce windows, histories
	IndexEntries  int    `json:"index_entries"`            // listing-index entries
	AuditEntries  int    `json:"audit_entries"`            // removal-log and change-log entries naming the address
	Marker        bool   `json:"marker"`                   // a hashed do-not-mail marker stays
	MarkerSkipped string `json:"marker_skipped,omitempty"` // why no marker stays although policy asks for one
}

// MarkerReason is the reason of the do-not-mail marker an erasure leaves.
const MarkerReason = "erased"

// AuditRecipientErase is the audit action of an erasure. Its entry names no address
// (only the marker's keyed hash when one stays): it would otherwise leave one behind.
const AuditRecipientErase = "recipient.erase"

// AddressKey is the address as Redis holds it: as it is, or its keyed hash
// ("h:…") when REBOUND_ADDRESS_HASH_KEY is set. Other packages' keys use it too.
func (s *Store) AddressKey(addr string) string { return s.addrKey(addr) }

// Erase removes a recipient from the global namespace and the tenant's: its
// suppression records, soft-bounce windows and histories (which hold the event IDs,
// reply texts and times), its listing-index entries, and the removal-log and
// change-log entries that name it. With marker (policy erasure.marker: keep) and an
// address hash key, a do-not-mail marker is written in the tenant's namespace: a
// suppression holding the keyed hash and reason "erased", nothing else. Without the
// key no marker is written, because any marker would give the address back to
// whoever can guess it. An event for the address that arrives during the erasure can
// write it again: erase after the sending has stopped.
func (s *Store) Erase(ctx context.Context, tenant, addr string, marker bool) (Erasure, error) {
	var out Erasure
	ak := s.addrKey(addr)
	pipe := s.rdb.Pipeline()
	type nsCmds struct{ del, idx, byAddr *redis.IntCmd }
	var cmds []nsCmds
	for _, ns := range namespaces(tenant) {
		// The recipient's keys share its hash tag: one DEL, on Cluster too.
		var c nsCmds
		c.del = pipe.Del(ctx, s.keys.Suppression(ns, ak), s.keys.SoftWindow(ns, ak), s.keys.Log(ns, ak))
		c.idx = pipe.ZRem(ctx, s.keys.SuppressionIndex(ns), ak)
		c.byAddr = pipe.ZRem(ctx, s.keys.SuppressionsByAddress(ns), ak)
		cmds = append(cmds, c)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return out, fmt.Errorf("erase recipient: %w", err)
	}
	for _, c := range cmds {
		out.KeysDeleted += int(c.del.Val())
		out.IndexEntries += int(c.idx.Val() + c.byAddr.Val())
	}
	n, err := s.scrubList(ctx, s.keys.RemovalLog(), func(raw string) bool {
		var r Removal
		return json.Unmarshal([]byte(raw), &r) == nil && (r.Address == ak || (r.Record != nil && r.Record.Address == ak))
	})
	out.AuditEntries += n
	if err != nil {
		return out, err
	}
	n, err = s.scrubList(ctx, s.keys.ChangeLog(), func(raw string) bool {
		var e AuditEntry
		return json.Unmarshal([]byte(raw), &e) == nil && e.Target == ak
	})
	out.AuditEntries += n
	if err != nil {
		return out, err
	}
	switch {
	case !marker:
	case len(s.opt.AddressHashKey) == 0:
		out.MarkerSkipped = "REBOUND_ADDRESS_HASH_KEY is not set: a marker would hold the address in clear"
	default:
		id := make([]byte, 8)
		_, _ = rand.Read(id)
		outs, err := s.Apply(ctx, []Change{{
			EventID: "erasure:" + hex.EncodeToString(id), ESP: "manual", Tenant: tenant, Address: ak, Protected: true,
			Action: ActionSuppress, Reason: MarkerReason, Class: "erasure", Rule: "erasure",
		}})
		if err == nil && outs[0].Err != nil {
			err = outs[0].Err
		}
		if err != nil {
			return out, fmt.Errorf("write the do-not-mail marker: %w", err)
		}
		out.Marker = true
	}
	return out, nil
}

// scrubList removes the entries of a capped log list that match. LREM by value is
// safe while others push to the list.
func (s *Store) scrubList(ctx context.Context, key string, match func(string) bool) (int, error) {
	raw, err := s.rdb.LRange(ctx, key, 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("erase recipient: read %s: %w", key, err)
	}
	n := 0
	for _, r := range raw {
		if !match(r) {
			continue
		}
		removed, err := s.rdb.LRem(ctx, key, 0, r).Result()
		if err != nil {
			return n, fmt.Errorf("erase recipient: clean %s: %w", key, err)
		}
		n += int(removed)
	}
	return n, nil
}
