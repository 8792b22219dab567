package suppress

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/events"
)

// UnknownReply is a reply no rule recognised, as the operator reviews it.
type UnknownReply struct {
	Reply    string    `json:"reply"` // addresses redacted, at most 300 bytes
	Count    int64     `json:"count"`
	LastSeen time.Time `json:"last_seen"`
	ESP      string    `json:"esp"` // of the last one seen
}

// Bounds of the unknown-reply list: the most frequent texts are what the rules should
// learn, so the list keeps the top ones and drops the long tail.
const (
	unknownKeep    = 1000
	unknownTextMax = 300
)

// RecordUnknown counts replies no rule recognised, by text, in one round trip, so that
// the rules can grow from production traffic (GET /v1/unknown-replies, `worker
// unknown`). Texts are stored with addresses redacted. esps[i] is the ESP of replies[i].
func (s *Store) RecordUnknown(ctx context.Context, replies, esps []string) error {
	if len(replies) == 0 {
		return nil
	}
	now := strconv.FormatInt(s.opt.Now().UnixMilli(), 10)
	pipe := s.rdb.Pipeline()
	for i, r := range replies {
		text := events.RedactAddresses(r)
		if len(text) > unknownTextMax {
			text = text[:unknownTextMax]
		}
		pipe.ZIncrBy(ctx, s.keys.UnknownReplies(), 1, text)
		pipe.HSet(ctx, s.keys.UnknownSeen(), text, now+"|"+esps[i])
	}
	// Keep the top unknownKeep: trimming on every call would cost a sort each batch,
	// so it runs when the set has grown to twice that.
	card := pipe.ZCard(ctx, s.keys.UnknownReplies())
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("record unknown replies: %w", err)
	}
	if card.Val() > 2*unknownKeep {
		drop, err := s.rdb.ZRange(ctx, s.keys.UnknownReplies(), 0, card.Val()-unknownKeep-1).Result()
		if err == nil && len(drop) > 0 {
			pipe := s.rdb.Pipeline()
			pipe.ZRem(ctx, s.keys.UnknownReplies(), toAny(drop)...)
			pipe.HDel(ctx, s.keys.UnknownSeen(), drop...)
			_, _ = pipe.Exec(ctx)
		}
	}
	return nil
}

// UnknownReplies returns the most frequent unrecognised replies, most frequent first.
func (s *Store) UnknownReplies(ctx context.Context, limit int) ([]UnknownReply, error) {
	zs, err := s.rdb.ZRevRangeWithScores(ctx, s.keys.UnknownReplies(), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("list unknown replies: %w", err)
	}
	out := make([]UnknownReply, 0, len(zs))
	if len(zs) == 0 {
		return out, nil
	}
	texts := make([]string, len(zs))
	for i, z := range zs {
		texts[i], _ = z.Member.(string)
	}
	seen, err := s.rdb.HMGet(ctx, s.keys.UnknownSeen(), texts...).Result()
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("list unknown replies: %w", err)
	}
	for i, z := range zs {
		u := UnknownReply{Reply: texts[i], Count: int64(z.Score)}
		if i < len(seen) {
			if v, ok := seen[i].(string); ok {
				at, esp, _ := strings.Cut(v, "|")
				u.LastSeen, u.ESP = ms(at), esp
			}
		}
		out = append(out, u)
	}
	return out, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
