package ingest

import (
	"errors"
	"testing"
	"time"
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
	if err := g.CheckToken("t1"); err != nil {
		t.Fatal(err)
	}
	if err := g.CheckToken("t1"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("replayed token = %v, want ErrUnauthenticated", err)
	}
	now = now.Add(11 * time.Minute)
	if err := g.CheckToken("t1"); err != nil {
		t.Fatalf("token after the window = %v, want accepted again (its timestamp check refuses it anyway)", err)
	}
}
