package suppress

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ListFilter narrows a listing. Zero fields match everything.
type ListFilter struct {
	Class  string
	Reason string
	Since  time.Time // only records whose last_seen is at or after it
}

func (f ListFilter) empty() bool { return f.Class == "" && f.Reason == "" && f.Since.IsZero() }

func (f ListFilter) match(r *Record) bool {
	return (f.Class == "" || r.Class == f.Class) &&
		(f.Reason == "" || r.Reason == f.Reason) &&
		(f.Since.IsZero() || !r.LastSeen.Before(f.Since))
}

// Page is one page of a listing. Next is the cursor of the following page, "" after
// the last one. A filtered page may hold fewer records than asked (even none) and still
// have a Next: the walk stops after a bounded number of index entries per request.
type Page struct {
	Records []Record
	Next    string
}

// ErrBadCursor is returned for a cursor this store did not hand out.
var ErrBadCursor = errors.New("not a cursor this API returned")

// cursorVersion prefixes every cursor, so its format can change without a stale cursor
// being misread.
const cursorVersion = "a1:"

// EncodeCursor makes the opaque cursor that resumes a listing after addr (its Redis form).
func EncodeCursor(addr string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + addr))
}

// DecodeCursor is EncodeCursor's inverse.
func DecodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), cursorVersion) || len(b) == len(cursorVersion) {
		return "", ErrBadCursor
	}
	return string(b[len(cursorVersion):]), nil
}

// pruneScript drops expired addresses from both listing indexes of a tenant, at most
// ARGV[2] of them per call, so a backlog of expiries costs several short calls rather
// than one long one.
//
// KEYS[1] expiry index (SuppressionIndex)   KEYS[2] address index (SuppressionsByAddress)
// ARGV[1] now (ms)   ARGV[2] most addresses dropped per call
// Returns how many it dropped.
var pruneScript = redis.NewScript(`
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
return #gone
`)

// forgetStaleScript drops from the address index the addresses a listing found without
// a record, unless the expiry index still lists them as live: a writer adds to the
// expiry index before the address index, so an address being written right now is
// never dropped.
//
// KEYS[1] expiry index   KEYS[2] address index
// ARGV[1] now (ms)   ARGV[2..] addresses found without a record
// Returns how many it dropped.
var forgetStaleScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do
  local exp = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if not exp or tonumber(exp) < now then
    redis.call('ZREM', KEYS[1], ARGV[i])
    n = n + redis.call('ZREM', KEYS[2], ARGV[i])
  end
end
return n
`)

// Bounds of one listing request.
const (
	pruneBatch  = 1000  // expired addresses dropped per prune call
	pruneRounds = 10    // prune calls per request
	scanBudget  = 10000 // index entries one filtered request may read
)

// ListPage returns up to limit suppressions of a tenant in address order (their Redis
// form), after the cursor (an EncodeCursor value, "" for the first page). The order is
// that of a sorted set scored 0, so a record that exists for the whole walk is listed
// exactly once however many records are written, refreshed or lifted meanwhile.
func (s *Store) ListPage(ctx context.Context, tenant, cursor string, limit int, f ListFilter) (Page, error) {
	after := ""
	if cursor != "" {
		var err error
		if after, err = DecodeCursor(cursor); err != nil {
			return Page{}, err
		}
	}
	if limit <= 0 {
		limit = 100
	}
	idx, byAddr := s.keys.SuppressionIndex(tenant), s.keys.SuppressionsByAddress(tenant)
	if err := s.fillAddressIndex(ctx, tenant); err != nil {
		return Page{}, err
	}
	now := s.opt.Now().UnixMilli()
	for range pruneRounds {
		n, err := pruneScript.Run(ctx, s.rdb, []string{idx, byAddr}, now, pruneBatch).Int()
		if err != nil {
			return Page{}, fmt.Errorf("prune suppression indexes: %w", err)
		}
		if n < pruneBatch {
			break
		}
	}
	batch := limit
	if !f.empty() {
		batch = max(limit, 500)
	}
	page := Page{Records: make([]Record, 0, limit)}
	read := 0
	for {
		start := "-"
		if after != "" {
			start = "(" + after
		}
		// One more than the batch: whether it comes back tells whether the walk is over,
		// so the last page carries no cursor even when it is exactly full.
		addrs, err := s.rdb.ZRangeByLex(ctx, byAddr, &redis.ZRangeBy{Min: start, Max: "+", Count: int64(batch) + 1}).Result()
		if err != nil {
			return Page{}, fmt.Errorf("list suppression index: %w", err)
		}
		more := len(addrs) > batch
		if more {
			addrs = addrs[:batch]
		}
		recs, err := s.readRecords(ctx, tenant, addrs)
		if err != nil {
			return Page{}, err
		}
		var stale []any
		for i, r := range recs {
			after = addrs[i]
			if r == nil {
				stale = append(stale, addrs[i])
				continue
			}
			if f.match(r) {
				page.Records = append(page.Records, *r)
				if len(page.Records) == limit {
					break
				}
			}
		}
		if len(stale) > 0 {
			args := append([]any{now}, stale...)
			if err := forgetStaleScript.Run(ctx, s.rdb, []string{idx, byAddr}, args...).Err(); err != nil {
				return Page{}, fmt.Errorf("drop stale index entries: %w", err)
			}
		}
		read += len(addrs)
		full := len(page.Records) == limit
		end := !more && (!full || after == addrs[len(addrs)-1])
		switch {
		case end:
			return page, nil
		case full || read >= scanBudget:
			page.Next = EncodeCursor(after)
			return page, nil
		}
	}
}

// readRecords reads the records of addrs in one round trip; a missing one is nil.
func (s *Store) readRecords(ctx context.Context, tenant string, addrs []string) ([]*Record, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(addrs))
	for i, a := range addrs {
		cmds[i] = pipe.HGetAll(ctx, s.keys.Suppression(tenant, a))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read suppressions: %w", err)
	}
	out := make([]*Record, len(addrs))
	for i, c := range cmds {
		out[i] = recordFromHash(c.Val())
	}
	return out, nil
}

// fillAddressIndex copies the expiry index into the address index once per tenant, for
// state written before the address index existed. ZSCAN returns every member present
// for the whole scan, and writers keep both indexes from then on; an address lifted
// during the copy is dropped again by the first listing that meets it (forgetStaleScript).
func (s *Store) fillAddressIndex(ctx context.Context, tenant string) error {
	ready := s.keys.SuppressionsByAddressReady(tenant)
	n, err := s.rdb.Exists(ctx, ready).Result()
	if err != nil {
		return fmt.Errorf("check address index: %w", err)
	}
	if n == 1 {
		return nil
	}
	idx, byAddr := s.keys.SuppressionIndex(tenant), s.keys.SuppressionsByAddress(tenant)
	// A tenant without an expiry index has nothing from before the address index (its
	// writers keep both): no marker, so listing made-up tenant names leaves no key.
	if n, err := s.rdb.Exists(ctx, idx).Result(); err != nil {
		return fmt.Errorf("check expiry index: %w", err)
	} else if n == 0 {
		return nil
	}
	var cur uint64
	for {
		members, next, err := s.rdb.ZScan(ctx, idx, cur, "", 1000).Result()
		if err != nil {
			return fmt.Errorf("fill address index: %w", err)
		}
		zs := make([]redis.Z, 0, len(members)/2)
		for i := 0; i+1 < len(members); i += 2 { // member, score, member, score…
			zs = append(zs, redis.Z{Member: members[i]})
		}
		if len(zs) > 0 {
			if err := s.rdb.ZAdd(ctx, byAddr, zs...).Err(); err != nil {
				return fmt.Errorf("fill address index: %w", err)
			}
		}
		if cur = next; cur == 0 {
			break
		}
	}
	if err := s.rdb.Set(ctx, ready, strconv.FormatInt(s.opt.Now().UnixMilli(), 10), 0).Err(); err != nil {
		return fmt.Errorf("mark address index filled: %w", err)
	}
	return nil
}

// PruneIndexes drops expired addresses from every tenant's two listing indexes. A
// listing prunes its own tenant's as it goes; this reaches the tenants nobody lists,
// whose indexes would otherwise keep every expired soft-threshold suppression. It
// walks the keys with SCAN (every master on Cluster) and returns how many addresses
// it dropped.
func (s *Store) PruneIndexes(ctx context.Context) (int, error) {
	base := s.keys.SuppressionIndex("")
	match := globEscape(base) + "*"
	now := s.opt.Now().UnixMilli()
	var (
		mu      sync.Mutex
		dropped int
	)
	prune := func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.ScanType(ctx, 0, match, 1000, "zset").Iterator()
		for iter.Next(ctx) {
			tenant := strings.TrimPrefix(iter.Val(), base)
			idx, byAddr := s.keys.SuppressionIndex(tenant), s.keys.SuppressionsByAddress(tenant)
			for range pruneRounds {
				n, err := pruneScript.Run(ctx, s.rdb, []string{idx, byAddr}, now, pruneBatch).Int()
				if err != nil {
					return fmt.Errorf("prune suppression indexes: %w", err)
				}
				mu.Lock()
				dropped += n
				mu.Unlock()
				if n < pruneBatch {
					break
				}
			}
		}
		return iter.Err()
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return prune(ctx, node) })
		return dropped, err
	}
	err := prune(ctx, s.rdb)
	return dropped, err
}

// globEscape makes s match itself in a SCAN MATCH pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
