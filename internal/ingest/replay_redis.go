package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisReplayStore keeps one-time tokens in Redis, so a token accepted by one replica is
// refused by every other one, and by this one after a restart. Keys are
// <prefix>replay:<esp>:<sha256(token)>; a held key's value is its owner, a used one's
// is "used", and each expires on its own (hold, then the token's TTL).
type RedisReplayStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisReplayStore returns the store under prefix (REBOUND_REDIS_PREFIX).
func NewRedisReplayStore(rdb redis.UniversalClient, prefix string) *RedisReplayStore {
	return &RedisReplayStore{rdb: rdb, prefix: prefix}
}

const usedValue = "used"

func (s *RedisReplayStore) key(k string) string { return s.prefix + "replay:" + k }

// Claim implements ReplayStore: SET NX with the hold as expiry; when the key exists,
// its value tells a used token from one in flight.
func (s *RedisReplayStore) Claim(ctx context.Context, key, owner string, hold time.Duration) (ClaimState, error) {
	k := s.key(key)
	ok, err := s.rdb.SetNX(ctx, k, owner, hold).Result()
	if err != nil {
		return 0, fmt.Errorf("replay store: claim: %w", err)
	}
	if ok {
		return ClaimOK, nil
	}
	v, err := s.rdb.Get(ctx, k).Result()
	switch {
	case errors.Is(err, redis.Nil):
		// The holder released it or its hold ran out between the two commands: let the
		// ESP retry rather than loop here.
		return ClaimBusy, nil
	case err != nil:
		return 0, fmt.Errorf("replay store: read claim: %w", err)
	case v == usedValue:
		return ClaimUsed, nil
	}
	return ClaimBusy, nil
}

// Commit implements ReplayStore.
func (s *RedisReplayStore) Commit(ctx context.Context, key string, ttl time.Duration) error {
	if err := s.rdb.Set(ctx, s.key(key), usedValue, ttl).Err(); err != nil {
		return fmt.Errorf("replay store: record: %w", err)
	}
	return nil
}

// releaseScript deletes the key only while the caller still owns it: a hold that ran
// out may have been taken, or used, by another request since.
var releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Release implements ReplayStore.
func (s *RedisReplayStore) Release(ctx context.Context, key, owner string) error {
	if err := releaseScript.Run(ctx, s.rdb, []string{s.key(key)}, owner).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("replay store: release: %w", err)
	}
	return nil
}
