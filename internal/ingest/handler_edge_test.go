package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reboundhq/rebound/internal/metrics"
)

// tokenAdapter is the generic adapter with a one-time token in header X-Token, as
// Mailgun's or Svix's, to drive the handler's replay path.
type tokenAdapter struct{ *Generic }

func (tokenAdapter) ReplayToken(r *http.Request, _ []byte) (string, time.Duration) {
	return r.Header.Get("X-Token"), time.Minute
}

// flakyStore is a MemoryReplayStore whose calls fail while the matching error is set,
// and which counts them.
type flakyStore struct {
	*MemoryReplayStore
	mu                        sync.Mutex
	claimErr, commitErr       error
	claims, commits, releases int
}

func (s *flakyStore) Claim(ctx context.Context, key, owner string, hold time.Duration) (ClaimState, error) {
	s.mu.Lock()
	s.claims++
	err := s.claimErr
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return s.MemoryReplayStore.Claim(ctx, key, owner, hold)
}

func (s *flakyStore) Commit(ctx context.Context, key string, ttl time.Duration) error {
	s.mu.Lock()
	s.commits++
	err := s.commitErr
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.MemoryReplayStore.Commit(ctx, key, ttl)
}

func (s *flakyStore) Release(ctx context.Context, key, owner string) error {
	s.mu.Lock()
	s.releases++
	s.mu.Unlock()
	return s.MemoryReplayStore.Release(ctx, key, owner)
}

func TestHandlerReplayPath(t *testing.T) {
	t.Parallel()
	single := fixture(t, "single.json")
	type step struct {
		body                 []byte
		token                string
		publishErr, claimErr error
		commitErr            error
		code                 int
	}
	tests := []struct {
		name                      string
		steps                     []step
		claims, commits, releases int
		warn                      string
	}{
		{name: "accepted, then replayed", steps: []step{{body: single, token: "t1", code: 200}, {body: single, token: "t1", code: 401}},
			claims: 2, commits: 1},
		{name: "no token: nothing to remember", steps: []step{{body: single, code: 200}, {body: single, code: 200}}},
		{name: "publish failed: the retry passes", steps: []step{{body: single, token: "t1", publishErr: errors.New("nats down"), code: 503}, {body: single, token: "t1", code: 200}, {body: single, token: "t1", code: 401}},
			claims: 3, commits: 1, releases: 1},
		{name: "bad request releases", steps: []step{{body: []byte(`42`), token: "t1", code: 400}, {body: single, token: "t1", code: 200}},
			claims: 2, commits: 1, releases: 1},
		{name: "store down: 503, retry later", steps: []step{{body: single, token: "t1", claimErr: errors.New("redis down"), code: 503}, {body: single, token: "t1", code: 200}},
			claims: 2, commits: 1, warn: "replay check unavailable"},
		{name: "record failed: still 200", steps: []step{{body: single, token: "t1", commitErr: errors.New("redis down"), code: 200}},
			claims: 1, commits: 1, warn: "could not record a one-time token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(zap.WarnLevel)
			pub := &stubPublisher{}
			store := &flakyStore{MemoryReplayStore: NewMemoryReplayStore(nil)}
			h := NewHandler(pub, metrics.New(), zap.New(core), 1<<20, tokenAdapter{NewGeneric(testToken)})
			h.SetReplayStore(store)
			mux := http.NewServeMux()
			h.Register(mux)
			for i, s := range tt.steps {
				pub.mu.Lock()
				pub.publishErr = s.publishErr
				pub.mu.Unlock()
				store.mu.Lock()
				store.claimErr, store.commitErr = s.claimErr, s.commitErr
				store.mu.Unlock()
				r := httptest.NewRequest(http.MethodPost, "/webhooks/generic", bytes.NewReader(s.body))
				r.Header.Set("Authorization", bearer)
				if s.token != "" {
					r.Header.Set("X-Token", s.token)
				}
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, r)
				if w.Code != s.code {
					t.Fatalf("step %d: status %d, want %d: %s", i, w.Code, s.code, w.Body)
				}
			}
			if store.claims != tt.claims || store.commits != tt.commits || store.releases != tt.releases {
				t.Errorf("claims %d, commits %d, releases %d; want %d, %d, %d", store.claims, store.commits, store.releases, tt.claims, tt.commits, tt.releases)
			}
			if tt.warn != "" && logs.FilterMessageSnippet(tt.warn).Len() != 1 {
				t.Errorf("no warning %q in %v", tt.warn, logs.All())
			}
		})
	}
}

// TestHandlerBusyToken: a token held by a request in flight (another replica's) gets a
// 503 with Retry-After, not a 401: if that request fails, this retry must pass.
func TestHandlerBusyToken(t *testing.T) {
	t.Parallel()
	store := NewMemoryReplayStore(nil)
	if _, err := store.Claim(context.Background(), ReplayKey("generic", "t1"), "elsewhere", time.Minute); err != nil {
		t.Fatal(err)
	}
	h := NewHandler(&stubPublisher{}, metrics.New(), zap.NewNop(), 1<<20, tokenAdapter{NewGeneric(testToken)})
	h.SetReplayStore(store)
	mux := http.NewServeMux()
	h.Register(mux)
	r := httptest.NewRequest(http.MethodPost, "/webhooks/generic", bytes.NewReader(fixture(t, "single.json")))
	r.Header.Set("Authorization", bearer)
	r.Header.Set("X-Token", "t1")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
}

// oneByteReader hands out its bytes one Read at a time at most n long, as a slow
// network does.
type oneByteReader struct {
	r io.Reader
	n int
}

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) > o.n {
		p = p[:o.n]
	}
	return o.r.Read(p)
}

func TestReadBody(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		size     int
		declared int64 // -1: unknown (chunked)
		limit    int64
		chunk    int
		tooBig   bool
		maxCap   int // the buffer's capacity may not exceed it; 0: not checked
	}{
		{name: "empty", size: 0, declared: 0, limit: 1 << 20, chunk: 1 << 20, maxCap: 1},
		{name: "small, declared", size: 700, declared: 700, limit: 1 << 20, chunk: 1 << 20, maxCap: 701},
		{name: "small, chunked", size: 700, declared: -1, limit: 1 << 20, chunk: 100, maxCap: initialBodyBuffer},
		{name: "large, declared", size: 300 << 10, declared: 300 << 10, limit: 1 << 20, chunk: 4096, maxCap: 300<<10 + 1},
		{name: "large, chunked", size: 300 << 10, declared: -1, limit: 1 << 20, chunk: 4096, maxCap: 600 << 10},
		{name: "exactly the limit", size: 4096, declared: -1, limit: 4096, chunk: 1000},
		{name: "over the limit", size: 4097, declared: -1, limit: 4096, chunk: 1000, tooBig: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := bytes.Repeat([]byte("abcdefg"), tt.size/7+1)[:tt.size]
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.Body = io.NopCloser(&oneByteReader{r: bytes.NewReader(want), n: tt.chunk})
			r.ContentLength = tt.declared
			got, err := readBody(httptest.NewRecorder(), r, tt.limit)
			var mbe *http.MaxBytesError
			switch {
			case tt.tooBig && !errors.As(err, &mbe):
				t.Fatalf("err = %v, want a MaxBytesError", err)
			case tt.tooBig:
				return
			case err != nil:
				t.Fatal(err)
			case !bytes.Equal(got, want):
				t.Fatalf("read %d bytes, want the %d sent", len(got), len(want))
			case tt.maxCap > 0 && cap(got) > tt.maxCap:
				t.Errorf("buffer capacity %d for %d bytes, want at most %d", cap(got), len(got), tt.maxCap)
			}
		})
	}
}

// TestReadBodyDeclaredIsNotAllocated: a declared length far over what arrives does not
// size the buffer (issue #10).
func TestReadBodyDeclaredIsNotAllocated(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 100)))
	r.ContentLength = 5 << 20 // a lie: the reader ends after 100 bytes
	got, _ := readBody(httptest.NewRecorder(), r, 5<<20)
	if cap(got) > initialBodyBuffer {
		t.Errorf("buffer of %d bytes for 100 received, want at most %d", cap(got), initialBodyBuffer)
	}
}
