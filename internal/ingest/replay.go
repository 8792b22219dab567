package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// DefaultReplayWindow is how far a signed timestamp may be from now.
const DefaultReplayWindow = 5 * time.Minute

// ReplayGuard refuses signed requests whose timestamp is outside the window. One-time
// tokens are not remembered here but in the handler's ReplayStore (see Replayable),
// which every replica shares and which survives a restart.
type ReplayGuard struct {
	Window time.Duration
	Now    func() time.Time
}

// NewReplayGuard returns a guard with the given window (DefaultReplayWindow if 0).
func NewReplayGuard(window time.Duration, now func() time.Time) *ReplayGuard {
	if window <= 0 {
		window = DefaultReplayWindow
	}
	if now == nil {
		now = time.Now
	}
	return &ReplayGuard{Window: window, Now: now}
}

// CheckTime refuses a timestamp further than the window from now, in either direction.
func (g *ReplayGuard) CheckTime(ts time.Time) error {
	d := g.Now().Sub(ts)
	if d > g.Window || d < -g.Window {
		return fmt.Errorf("%w: timestamp %s is outside the %s replay window", ErrUnauthenticated, ts.UTC().Format(time.RFC3339), g.Window)
	}
	return nil
}

// TokenTTL is how long a one-time token signed with a timestamp must be remembered: a
// request passes CheckTime until its timestamp is a window old, and the timestamp may
// itself lie up to a window ahead of our clock, so two windows from its first use.
func (g *ReplayGuard) TokenTTL() time.Duration { return 2 * g.Window }

// ClaimState is what ReplayStore.Claim found.
type ClaimState int

const (
	// ClaimOK: the token was free and is now held by the caller.
	ClaimOK ClaimState = iota
	// ClaimUsed: a request with the token was already accepted: this one is a replay.
	ClaimUsed
	// ClaimBusy: another request with the token is in flight; its outcome decides.
	ClaimBusy
)

// ReplayStore remembers the one-time tokens of accepted requests. A token is claimed
// before the events are published and recorded only once they are, so an ESP's retry
// after a 503 is not mistaken for a replay, while two requests racing with one token
// cannot both go through.
type ReplayStore interface {
	// Claim holds key for owner for at most hold (a crashed holder must not block
	// the ESP's retries forever), unless the key is already used or held.
	Claim(ctx context.Context, key, owner string, hold time.Duration) (ClaimState, error)
	// Commit records key as used for ttl: the request's events were published.
	Commit(ctx context.Context, key string, ttl time.Duration) error
	// Release drops owner's hold on key: the request failed and its retry must pass.
	// A hold that expired and was taken by another request is left alone.
	Release(ctx context.Context, key, owner string) error
}

// ReplayKey is the store key of an ESP's one-time token: hashed, so a token's length
// or bytes never reach the store and a stored key cannot be presented again.
func ReplayKey(esp, token string) string {
	sum := sha256.Sum256([]byte(token))
	return esp + ":" + hex.EncodeToString(sum[:])
}

// MemoryReplayStore is a ReplayStore in this process only: for tests and single-process
// setups without Redis. With replicas, or across a restart, it lets a replay through;
// the app uses RedisReplayStore.
type MemoryReplayStore struct {
	now func() time.Time

	mu    sync.Mutex
	m     map[string]memoryClaim
	sweep time.Time
}

type memoryClaim struct {
	owner   string // "" once used
	expires time.Time
}

// NewMemoryReplayStore returns an empty store on the given clock (time.Now if nil).
func NewMemoryReplayStore(now func() time.Time) *MemoryReplayStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayStore{now: now, m: map[string]memoryClaim{}}
}

// Claim implements ReplayStore.
func (s *MemoryReplayStore) Claim(_ context.Context, key, owner string, hold time.Duration) (ClaimState, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Only verified tokens get here, so the map grows with the ESPs' own traffic; a
	// sweep a minute bounds it to what the last TTL saw.
	if now.Sub(s.sweep) > time.Minute {
		for k, c := range s.m {
			if !now.Before(c.expires) {
				delete(s.m, k)
			}
		}
		s.sweep = now
	}
	if c, ok := s.m[key]; ok && now.Before(c.expires) {
		if c.owner == "" {
			return ClaimUsed, nil
		}
		return ClaimBusy, nil
	}
	s.m[key] = memoryClaim{owner: owner, expires: now.Add(hold)}
	return ClaimOK, nil
}

// Commit implements ReplayStore.
func (s *MemoryReplayStore) Commit(_ context.Context, key string, ttl time.Duration) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = memoryClaim{expires: now.Add(ttl)}
	return nil
}

// Release implements ReplayStore.
func (s *MemoryReplayStore) Release(_ context.Context, key, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.m[key]; ok && c.owner == owner {
		delete(s.m, key)
	}
	return nil
}
