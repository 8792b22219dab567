package ingest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/testsvc"
)

func TestReplayGuard(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	g := NewReplayGuard(5*time.Minute, func() time.Time { return now })
	for _, tt := range []struct {
		ts time.Time
		ok bool
	}{{now, true}, {now.Add(-4 * time.Minute), true}, {now.Add(-6 * time.Minute), false}, {now.Add(6 * time.Minute), false}} {
		if err := g.CheckTime(tt.ts); (err == nil) != tt.ok {
			t.Errorf("CheckTime(%s) = %v, want ok=%v", tt.ts, err, tt.ok)
		}
	}
	// A token whose timestamp is a window ahead passes CheckTime for two windows.
	if got := g.TokenTTL(); got != 10*time.Minute {
		t.Errorf("TokenTTL = %s, want 10m", got)
	}
}

func TestReplayKey(t *testing.T) {
	t.Parallel()
	k := ReplayKey("mailgun", "tok-1")
	if !strings.HasPrefix(k, "mailgun:") || len(k) != len("mailgun:")+64 || strings.Contains(k, "tok-1") {
		t.Errorf("ReplayKey = %q, want mailgun:<sha256 hex> without the token", k)
	}
	if ReplayKey("resend", "tok-1") == k || ReplayKey("mailgun", "tok-2") == k {
		t.Error("keys of different ESPs or tokens collide")
	}
}

// replayStoreContract is what the handler relies on from any ReplayStore. ttl and
// hold are long enough for the calls; expire advances the store's clock past them.
func replayStoreContract(t *testing.T, s ReplayStore, expire func(time.Duration)) {
	ctx := context.Background()
	claim := func(key, owner string, want ClaimState) {
		t.Helper()
		got, err := s.Claim(ctx, key, owner, 2*time.Second)
		if err != nil {
			t.Fatalf("Claim(%s, %s): %v", key, owner, err)
		}
		if got != want {
			t.Fatalf("Claim(%s, %s) = %v, want %v", key, owner, got, want)
		}
	}
	// Claimed, then committed: every later claim is a replay.
	claim("mailgun:a", "o1", ClaimOK)
	claim("mailgun:a", "o2", ClaimBusy)
	if err := s.Commit(ctx, "mailgun:a", 4*time.Second); err != nil {
		t.Fatal(err)
	}
	claim("mailgun:a", "o3", ClaimUsed)
	// A release by a request that does not hold the key changes nothing.
	if err := s.Release(ctx, "mailgun:a", "o2"); err != nil {
		t.Fatal(err)
	}
	claim("mailgun:a", "o4", ClaimUsed)

	// Claimed, then released (the publish failed): the ESP's retry gets it.
	claim("mailgun:b", "o1", ClaimOK)
	if err := s.Release(ctx, "mailgun:b", "o1"); err != nil {
		t.Fatal(err)
	}
	claim("mailgun:b", "o2", ClaimOK)
	// Released by someone else than the holder: still held.
	if err := s.Release(ctx, "mailgun:b", "o1"); err != nil {
		t.Fatal(err)
	}
	claim("mailgun:b", "o3", ClaimBusy)

	// A hold that ran out (a crashed replica) frees the key; a record that ran out too.
	claim("mailgun:c", "o1", ClaimOK)
	expire(2*time.Second + 100*time.Millisecond)
	claim("mailgun:c", "o2", ClaimOK)
	claim("mailgun:b", "o4", ClaimOK)
	expire(2 * time.Second)
	claim("mailgun:a", "o5", ClaimOK)
}

func TestMemoryReplayStore(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	s := NewMemoryReplayStore(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	replayStoreContract(t, s, func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) })
}

// TestRedisReplayStore runs the same contract against the real Redis: its keys live
// under the prefix, expire on their own, and never hold the token in clear.
func TestRedisReplayStore(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	prefix := testsvc.Prefix(t, rdb)
	s := NewRedisReplayStore(rdb, prefix)
	replayStoreContract(t, s, func(d time.Duration) { time.Sleep(d) })

	ctx := context.Background()
	key := ReplayKey("resend", "msg_secret_id")
	if _, err := s.Claim(ctx, key, "o1", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, key, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, "msg_secret_id") {
			t.Errorf("key %q holds the token in clear", k)
		}
	}
	ttl, err := rdb.PTTL(ctx, prefix+"replay:"+key).Result()
	if err != nil || ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Errorf("TTL of %sreplay:%s = %s, %v; want the token's TTL, 10m", prefix, key, ttl, err)
	}
}
