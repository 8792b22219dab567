package sendgrid

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/ingesttest"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/stream"
)

// recorder is a Publisher that keeps what it was given.
type recorder struct {
	mu        sync.Mutex
	published []events.Event
	dead      []stream.DeadLetter
}

func (p *recorder) Publish(_ context.Context, evs []events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = append(p.published, evs...)
	return nil
}

func (p *recorder) DeadLetter(_ context.Context, d stream.DeadLetter) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dead = append(p.dead, d)
	return nil
}

// TestThroughHandler sends signed requests through the real ingest handler.
func TestThroughHandler(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tests := []struct {
		name            string
		body            []byte
		forge           bool
		code            int
		published, dead int
	}{
		{"batch", ingesttest.Fixture(t, "batch-mixed.json"), false, http.StatusOK, 4, 3},
		{"signed but truncated", ingesttest.Fixture(t, "malformed.json"), false, http.StatusOK, 0, 1},
		{"bad signature", ingesttest.Fixture(t, "bounce-hard.json"), true, http.StatusUnauthorized, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := &recorder{}
			mux := http.NewServeMux()
			ingest.NewHandler(pub, metrics.New(), zap.NewNop(), 1<<20, b.a).Register(mux)
			r := signed(t, b.priv, tt.body, now)
			if tt.forge {
				r = signed(t, setup(t, nil).priv, tt.body, now)
			}
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if len(pub.published) != tt.published || len(pub.dead) != tt.dead {
				t.Fatalf("published %d, dead-lettered %d; want %d, %d", len(pub.published), len(pub.dead), tt.published, tt.dead)
			}
		})
	}
}
