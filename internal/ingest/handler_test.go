package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/stream"
)

// stubPublisher records what the handler publishes; its errors are set per test.
type stubPublisher struct {
	mu           sync.Mutex
	publishErr   error
	deadErr      error
	publishCalls int
	published    []events.Event
	dead         []stream.DeadLetter
}

func (p *stubPublisher) Publish(_ context.Context, evs []events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.publishCalls++
	if p.publishErr != nil {
		return p.publishErr
	}
	p.published = append(p.published, evs...)
	return nil
}

func (p *stubPublisher) DeadLetter(_ context.Context, d stream.DeadLetter) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.deadErr != nil {
		return p.deadErr
	}
	p.dead = append(p.dead, d)
	return nil
}

func (p *stubPublisher) snapshot() (calls int, published []events.Event, dead []stream.DeadLetter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.publishCalls, append([]events.Event(nil), p.published...), append([]stream.DeadLetter(nil), p.dead...)
}

// bundle is one handler under test with everything it talks to.
type bundle struct {
	mux     *http.ServeMux
	pub     *stubPublisher
	metrics *metrics.Metrics
	logs    *observer.ObservedLogs
}

// setup builds a handler serving the generic adapter (token testToken) on a real mux.
func setup(t *testing.T, maxBody int64) *bundle {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	b := &bundle{mux: http.NewServeMux(), pub: &stubPublisher{}, metrics: metrics.New(), logs: logs}
	NewHandler(b.pub, b.metrics, zap.New(core), maxBody, NewGeneric(testToken)).Register(b.mux)
	return b
}

// post sends body to path; auth is the Authorization header ("" = none).
func (b *bundle) post(t *testing.T, path string, body []byte, auth string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	b.mux.ServeHTTP(w, r)
	return w
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func decodeResponse(t *testing.T, w *httptest.ResponseRecorder) Response {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var resp Response
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("response body: %v", err)
	}
	return resp
}

const bearer = "Bearer " + testToken

func TestHandlerAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fixture string
		want    int
	}{
		{"single", "single.json", 1},
		{"batch", "batch.json", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, 1<<20)
			w := b.post(t, "/webhooks/generic", fixture(t, tt.fixture), bearer)
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d, body %s", w.Code, w.Body)
			}
			raw := w.Body.String()
			resp := decodeResponse(t, w)
			if resp.Accepted != tt.want || len(resp.Rejected) != 0 || resp.Ignored != 0 {
				t.Errorf("response = %+v, want %d accepted and nothing rejected", resp, tt.want)
			}
			if !strings.Contains(raw, `"rejected":[]`) {
				t.Errorf("body %s: rejected should be an empty list, not null", raw)
			}
			_, published, dead := b.pub.snapshot()
			if len(published) != tt.want || len(dead) != 0 {
				t.Errorf("published %d events and %d dead letters, want %d and 0", len(published), len(dead), tt.want)
			}
			if got := counter(t, b.metrics.EventsIngested.WithLabelValues("generic")); got != float64(tt.want) {
				t.Errorf("events ingested metric = %v, want %d", got, tt.want)
			}
			if got := counter(t, b.metrics.WebhookRequests.WithLabelValues("generic", "200")); got != 1 {
				t.Errorf("webhook requests{code=200} = %v, want 1", got)
			}
		})
	}
}

func TestHandlerEmptyArray(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	w := b.post(t, "/webhooks/generic", []byte(`[]`), bearer)
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", w.Code, w.Body)
	}
	if resp := decodeResponse(t, w); resp.Accepted != 0 || len(resp.Rejected) != 0 {
		t.Errorf("response = %+v, want nothing accepted or rejected", resp)
	}
}

func TestHandlerUnauthorized(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		auth string
	}{
		{"no header", ""},
		{"wrong token", "Bearer wrong"},
		{"wrong scheme", "Basic " + testToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, 1<<20)
			w := b.post(t, "/webhooks/generic", fixture(t, "batch.json"), tt.auth)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", w.Code)
			}
			// The reason (no token, wrong token…) goes to the log, never to the caller.
			if got, want := w.Body.String(), `{"error":"unauthorized"}`+"\n"; got != want {
				t.Errorf("body = %q, want exactly %q", got, want)
			}
			calls, published, dead := b.pub.snapshot()
			if calls != 0 || len(published) != 0 || len(dead) != 0 {
				t.Errorf("after a failed authentication: %d publish calls, %d dead letters; want none", calls, len(dead))
			}
			if got := counter(t, b.metrics.EventsRejected.WithLabelValues("generic", "unauthenticated")); got != 1 {
				t.Errorf("rejected{unauthenticated} = %v, want 1", got)
			}
			if got := counter(t, b.metrics.WebhookRequests.WithLabelValues("generic", "401")); got != 1 {
				t.Errorf("webhook requests{code=401} = %v, want 1", got)
			}
			if n := b.logs.FilterMessage("webhook authentication failed").Len(); n != 1 {
				t.Errorf("logged %d authentication failures, want 1", n)
			}
		})
	}
}

func TestHandlerDisabledGenericRefusesEveryRequest(t *testing.T) {
	t.Parallel()
	pub := &stubPublisher{}
	mux := http.NewServeMux()
	NewHandler(pub, metrics.New(), zap.NewNop(), 1<<20, NewGeneric("")).Register(mux)
	for _, auth := range []string{"", "Bearer ", "Bearer x", "Bearer " + testToken} {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/generic", bytes.NewReader(fixture(t, "single.json")))
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized || w.Body.String() != `{"error":"unauthorized"}`+"\n" {
			t.Errorf("Authorization %q: status %d body %q, want 401 unauthorized", auth, w.Code, w.Body)
		}
	}
	if calls, _, _ := pub.snapshot(); calls != 0 {
		t.Errorf("Publish called %d times, want 0", calls)
	}
}

func TestHandlerErrors(t *testing.T) {
	t.Parallel()
	unavailable := fmt.Errorf("%w: publish generic:msg-0002: nats: timeout", stream.ErrUnavailable)
	tests := []struct {
		name       string
		path       string
		body       []byte
		maxBody    int64
		publishErr error
		deadErr    error
		status     int
		bodyHas    string
		// publishes is how many Publish calls the handler may make.
		publishes int
	}{
		{name: "unknown ESP", path: "/webhooks/acme", body: fixture(t, "single.json"), status: http.StatusNotFound, bodyHas: "acme"},
		{name: "body over the cap", path: "/webhooks/generic", body: fixture(t, "batch.json"), maxBody: 64, status: http.StatusRequestEntityTooLarge, bodyHas: "64 bytes"},
		{name: "not JSON", path: "/webhooks/generic", body: fixture(t, "malformed.json"), status: http.StatusBadRequest, bodyHas: "bad request"},
		{name: "scalar", path: "/webhooks/generic", body: []byte(`42`), status: http.StatusBadRequest, bodyHas: "bad request"},
		{name: "publish unavailable", path: "/webhooks/generic", body: fixture(t, "batch.json"), publishErr: unavailable, status: http.StatusServiceUnavailable, bodyHas: "retry", publishes: 1},
		{name: "dead letter fails", path: "/webhooks/generic", body: fixture(t, "invalid-item.json"), deadErr: fmt.Errorf("%w: dead-letter (ingest): nats: timeout", stream.ErrUnavailable), status: http.StatusServiceUnavailable, bodyHas: "retry", publishes: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.maxBody == 0 {
				tt.maxBody = 1 << 20
			}
			b := setup(t, tt.maxBody)
			b.pub.publishErr, b.pub.deadErr = tt.publishErr, tt.deadErr
			w := b.post(t, tt.path, tt.body, bearer)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.status, w.Body)
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body) != 1 {
				t.Fatalf("body %q: want {\"error\": …}", w.Body)
			}
			if !strings.Contains(body["error"], tt.bodyHas) {
				t.Errorf("error %q does not mention %q", body["error"], tt.bodyHas)
			}
			if strings.Contains(body["error"], "nats") {
				t.Errorf("error %q leaks the internal cause", body["error"])
			}
			if calls, _, _ := b.pub.snapshot(); calls != tt.publishes {
				t.Errorf("Publish called %d times, want %d", calls, tt.publishes)
			}
		})
	}
}

func TestHandlerWrongMethod(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	r := httptest.NewRequest(http.MethodGet, "/webhooks/generic", nil)
	w := httptest.NewRecorder()
	b.mux.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET status = %d, want 405", w.Code)
	}
}

func TestHandlerDeadLettersRejects(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	body := fixture(t, "invalid-item.json")
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		t.Fatal(err)
	}

	w := b.post(t, "/webhooks/generic", body, bearer)
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", w.Code, w.Body)
	}
	resp := decodeResponse(t, w)
	if resp.Accepted != 2 {
		t.Errorf("accepted = %d, want 2", resp.Accepted)
	}
	if len(resp.Rejected) != 1 || resp.Rejected[0].Index != 1 || !strings.Contains(resp.Rejected[0].Reason, "recipient") {
		t.Fatalf("rejected = %+v, want item 1 with a reason naming recipient", resp.Rejected)
	}

	_, published, dead := b.pub.snapshot()
	if len(published) != 2 || published[0].ID != "generic:msg-0005" || published[1].ID != "generic:msg-0007" {
		t.Errorf("published %+v, want msg-0005 and msg-0007", published)
	}
	if len(dead) != 1 {
		t.Fatalf("dead letters = %+v, want 1", dead)
	}
	d := dead[0]
	if d.Stage != "ingest" || d.ESP != "generic" {
		t.Errorf("dead letter stage/esp = %q/%q, want ingest/generic", d.Stage, d.ESP)
	}
	if !bytes.Equal(d.Raw, items[1]) {
		t.Errorf("dead letter raw = %s\nwant the item's bytes %s", d.Raw, items[1])
	}
	if d.Reason != resp.Rejected[0].Reason {
		t.Errorf("dead letter reason %q differs from the answer's %q", d.Reason, resp.Rejected[0].Reason)
	}
	if got := counter(t, b.metrics.DeadLetters.WithLabelValues("ingest")); got != 1 {
		t.Errorf("dead letters metric = %v, want 1", got)
	}
	if got := counter(t, b.metrics.EventsRejected.WithLabelValues("generic", "invalid")); got != 1 {
		t.Errorf("rejected{invalid} metric = %v, want 1", got)
	}
}

// TestHandlerPublishErrorNotUnavailable pins that any publish failure, not only
// stream.ErrUnavailable, makes the ESP retry rather than lose the events.
func TestHandlerPublishErrorNotUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t, 1<<20)
	b.pub.publishErr = errors.New("encode event: boom")
	w := b.post(t, "/webhooks/generic", fixture(t, "single.json"), bearer)
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", w.Code)
	}
	if _, _, dead := b.pub.snapshot(); len(dead) != 0 {
		t.Errorf("dead letters after a failed publish: %+v", dead)
	}
}

func TestPerESPBodyLimit(t *testing.T) {
	t.Parallel()
	limits, err := BodyLimits(func(k string) string {
		if k == "REBOUND_GENERIC_MAX_BODY_BYTES" {
			return "2048"
		}
		return ""
	}, []Adapter{NewGeneric("tok")})
	if err != nil || limits["generic"] != 2048 {
		t.Fatalf("BodyLimits = %v, %v", limits, err)
	}
	if _, err := BodyLimits(func(string) string { return "12" }, []Adapter{NewGeneric("tok")}); err == nil || !strings.Contains(err.Error(), "REBOUND_GENERIC_MAX_BODY_BYTES") {
		t.Fatalf("a tiny limit = %v, want an error naming the variable", err)
	}
	h := NewHandler(&stubPublisher{}, metrics.New(), zap.NewNop(), 1<<20, NewGeneric("tok"))
	h.SetLimits(limits)
	mux := http.NewServeMux()
	h.Register(mux)
	req := httptest.NewRequest(http.MethodPost, "/webhooks/generic", strings.NewReader("["+strings.Repeat(" ", 4096)+"]"))
	req.Header.Set("Authorization", "Bearer tok")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "2048") {
		t.Fatalf("over the per-ESP cap = %d %s, want 413 naming 2048", rec.Code, rec.Body)
	}
}
