package ingest

import (
	"fmt"
	"sync"
	"time"
)

// DefaultReplayWindow is how far a signed timestamp may be from now.
const DefaultReplayWindow = 5 * time.Minute

// ReplayGuard refuses signed requests whose timestamp is outside the window and, where
// the ESP signs a one-time token, tokens already seen within the window. The token
// memory is per process: it is defence in depth, since a replayed event also carries
// an ID that JetStream and the Redis step have already seen.
type ReplayGuard struct {
	Window time.Duration
	Now    func() time.Time

	mu    sync.Mutex
	seen  map[string]time.Time
	sweep time.Time
}

// NewReplayGuard returns a guard with the given window (DefaultReplayWindow if 0).
func NewReplayGuard(window time.Duration, now func() time.Time) *ReplayGuard {
	if window <= 0 {
		window = DefaultReplayWindow
	}
	if now == nil {
		now = time.Now
	}
	return &ReplayGuard{Window: window, Now: now, seen: map[string]time.Time{}}
}

// CheckTime refuses a timestamp further than the window from now, in either direction.
func (g *ReplayGuard) CheckTime(ts time.Time) error {
	d := g.Now().Sub(ts)
	if d > g.Window || d < -g.Window {
		return fmt.Errorf("%w: timestamp %s is outside the %s replay window", ErrUnauthenticated, ts.UTC().Format(time.RFC3339), g.Window)
	}
	return nil
}

// CheckToken records a one-time token and refuses one seen before within the window.
// Call it only after the signature has been verified, so forged requests cannot fill it.
func (g *ReplayGuard) CheckToken(token string) error {
	now := g.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.sweep) > g.Window {
		for k, t := range g.seen {
			if now.Sub(t) > 2*g.Window {
				delete(g.seen, k)
			}
		}
		g.sweep = now
	}
	if t, ok := g.seen[token]; ok && now.Sub(t) <= 2*g.Window {
		return fmt.Errorf("%w: token replayed", ErrUnauthenticated)
	}
	g.seen[token] = now
	return nil
}
