package suppress

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// ShadowEntry is one disagreement of the shadow policy with the live one.
type ShadowEntry struct {
	Class, Live, Shadow string
	Sample              any // JSON-encodable example, without a clear-text address
}

// ShadowCount is how often the shadow policy disagreed in one way.
type ShadowCount struct {
	Class  string `json:"class"`
	Live   string `json:"live"`
	Shadow string `json:"shadow"`
	Count  int64  `json:"count"`
}

// shadowSamples is how many recent disagreements are kept.
const shadowSamples = 50

// RecordShadow adds disagreements to the shared counts and samples, in one round trip,
// so every replica's observations show up on whichever replica serves the API.
func (s *Store) RecordShadow(ctx context.Context, entries []ShadowEntry) error {
	if len(entries) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	for _, e := range entries {
		pipe.HIncrBy(ctx, s.keys.ShadowCounts(), e.Class+"|"+e.Live+"|"+e.Shadow, 1)
		if b, err := json.Marshal(e.Sample); err == nil {
			pipe.LPush(ctx, s.keys.ShadowSamples(), b)
		}
	}
	pipe.LTrim(ctx, s.keys.ShadowSamples(), 0, shadowSamples-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("record shadow disagreements: %w", err)
	}
	return nil
}

// ShadowReport returns the disagreement counts (largest first) and recent samples.
func (s *Store) ShadowReport(ctx context.Context) ([]ShadowCount, []json.RawMessage, error) {
	pipe := s.rdb.Pipeline()
	counts := pipe.HGetAll(ctx, s.keys.ShadowCounts())
	samples := pipe.LRange(ctx, s.keys.ShadowSamples(), 0, shadowSamples-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, fmt.Errorf("read shadow report: %w", err)
	}
	out := []ShadowCount{}
	for k, v := range counts.Val() {
		parts := strings.SplitN(k, "|", 3)
		if len(parts) != 3 {
			continue
		}
		var n int64
		fmt.Sscan(v, &n)
		out = append(out, ShadowCount{Class: parts[0], Live: parts[1], Shadow: parts[2], Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Class+out[i].Live+out[i].Shadow < out[j].Class+out[j].Live+out[j].Shadow
	})
	raw := make([]json.RawMessage, 0, len(samples.Val()))
	for _, s := range samples.Val() {
		raw = append(raw, json.RawMessage(s))
	}
	return out, raw, nil
}
