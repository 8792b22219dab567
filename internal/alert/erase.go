package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/events"
)

// replaceExamplesScript swaps an incident's examples for their redacted form unless
// the observe script changed them meanwhile (then the caller reads them again).
//
// KEYS[1] incident hash   ARGV[1] the examples read   ARGV[2] the redacted examples
// Returns 1 when swapped, 0 when they had changed.
var replaceExamplesScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'examples') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'examples', ARGV[2])
return 1
`)

// forgetOpenerScript drops an incident's opened_by when it is still the event ID read.
//
// KEYS[1] incident hash   ARGV[1] the event ID read   Returns 1 when dropped.
var forgetOpenerScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'opened_by') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'opened_by')
return 1
`)

// ForgetRecipient removes what the retained incidents hold about one recipient (its
// erasure): the counted event IDs that carry the address (SES's IDs end with the
// recipient when addresses are not hashed), the ID of the event that opened the
// incident when it carries it (a later redelivery of that event then no longer reports
// the opening, which it had reported already), and the address in the example replies,
// which are redacted. The recipients' HyperLogLogs hold only keyed hashes and cannot
// give an address back. It returns how many entries it changed.
func (s *Store) ForgetRecipient(ctx context.Context, addr string) (int, error) {
	needle := strings.ToLower(addr)
	fps, err := s.rdb.ZRange(ctx, s.keys.index(), 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("forget recipient: list incidents: %w", err)
	}
	n := 0
	for _, fp := range fps {
		var drop []any
		iter := s.rdb.ZScan(ctx, s.keys.seen(fp), 0, "", 500).Iterator()
		for i := 0; iter.Next(ctx); i++ {
			if i%2 == 0 && idCarries(iter.Val(), needle) { // member, score, …
				drop = append(drop, iter.Val())
			}
		}
		if err := iter.Err(); err != nil {
			return n, fmt.Errorf("forget recipient in incident %s: %w", fp, err)
		}
		if len(drop) > 0 {
			removed, err := s.rdb.ZRem(ctx, s.keys.seen(fp), drop...).Result()
			if err != nil {
				return n, fmt.Errorf("forget recipient in incident %s: %w", fp, err)
			}
			n += int(removed)
		}
		opener, err := s.rdb.HGet(ctx, s.keys.incident(fp), "opened_by").Result()
		if err != nil && err != redis.Nil {
			return n, fmt.Errorf("forget recipient in incident %s: %w", fp, err)
		}
		if err == nil && idCarries(opener, needle) {
			dropped, err := forgetOpenerScript.Run(ctx, s.rdb, []string{s.keys.incident(fp)}, opener).Int()
			if err != nil {
				return n, fmt.Errorf("forget recipient in incident %s: %w", fp, err)
			}
			n += dropped
		}
		for try := 0; try < 5; try++ {
			raw, err := s.rdb.HGet(ctx, s.keys.incident(fp), "examples").Result()
			if err == redis.Nil || (err == nil && !strings.Contains(strings.ToLower(raw), needle)) {
				break
			}
			if err != nil {
				return n, fmt.Errorf("forget recipient in incident %s: %w", fp, err)
			}
			var ex []string
			if json.Unmarshal([]byte(raw), &ex) != nil {
				break
			}
			for i := range ex {
				ex[i] = events.RedactAddresses(ex[i])
			}
			b, _ := json.Marshal(ex)
			done, err := replaceExamplesScript.Run(ctx, s.rdb, []string{s.keys.incident(fp)}, raw, string(b)).Int()
			if err != nil {
				return n, fmt.Errorf("forget recipient in incident %s: %w", fp, err)
			}
			if done == 1 {
				n++
				break
			}
		}
	}
	return n, nil
}

// idCarries says whether an event ID names the address as one of its ':'-separated
// parts ("ses:<feedback id>:<recipient>"). A substring test would also match
// jimbob@example.com and bob@example.com.au when erasing bob@example.com, and drop
// their counted events.
func idCarries(id, addr string) bool {
	for part := range strings.SplitSeq(id, ":") {
		if strings.EqualFold(part, addr) {
			return true
		}
	}
	return false
}
