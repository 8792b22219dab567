package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/config"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/all"
	"github.com/reboundhq/rebound/internal/ingest/ingesttest"
	"github.com/reboundhq/rebound/internal/ingest/mailgun"
	"github.com/reboundhq/rebound/internal/ingest/resend"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/stream"
	"github.com/reboundhq/rebound/internal/testsvc"
)

const (
	edgeToken      = "edge-generic-token"
	edgeMailgunKey = "key-edge-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

// pub is a Publisher whose Publish fails while fail is set.
type pub struct {
	mu        sync.Mutex
	fail      bool
	published []events.Event
}

func (p *pub) Publish(_ context.Context, evs []events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return fmt.Errorf("%w: test", stream.ErrUnavailable)
	}
	p.published = append(p.published, evs...)
	return nil
}

func (p *pub) DeadLetter(context.Context, stream.DeadLetter) error { return nil }

func (p *pub) setFail(v bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = v
}

func (p *pub) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.published)
}

// edgeHandler is the handler the app builds, with a configured Mailgun (the body carries
// its signature, so nothing can be checked before it is read) and generic endpoint.
func edgeHandler(t testing.TB, p ingest.Publisher) *ingest.Handler {
	t.Helper()
	mg, err := mailgun.New(ingesttest.Env(map[string]string{"REBOUND_MAILGUN_SIGNING_KEY": edgeMailgunKey}))
	if err != nil {
		t.Fatal(err)
	}
	return ingest.NewHandler(p, metrics.New(), zap.NewNop(), 5<<20, mg, ingest.NewGeneric(edgeToken))
}

// server serves h through a real loopback listener with the app's timeouts; entered
// counts the requests that reached the handler and codes the answers given.
type server struct {
	*httptest.Server
	entered atomic.Int64
	mu      sync.Mutex
	codes   map[int]int
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func serve(t testing.TB, h *ingest.Handler) *server {
	t.Helper()
	mux := http.NewServeMux()
	h.Register(mux)
	s := &server{codes: map[int]int{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.entered.Add(1)
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		mux.ServeHTTP(sw, r)
		s.mu.Lock()
		s.codes[sw.code]++
		s.mu.Unlock()
	}))
	// The app's timeouts (internal/app): ReadTimeout would end a stalled read after 8 s,
	// long after any test below is done with it.
	s.Config.ReadHeaderTimeout, s.Config.ReadTimeout, s.Config.WriteTimeout = 5*time.Second, 8*time.Second, 15*time.Second
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *server) answered(code int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.codes[code]
}

// stall opens a connection and sends the head of a request declaring length bytes of
// body, then partial of them, and leaves it there. The connection is closed when the
// test ends.
func stall(t testing.TB, addr, path, headers string, length int, partial string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := "POST " + path + " HTTP/1.1\r\nHost: rebound\r\nContent-Type: application/json\r\n" + headers +
		"Content-Length: " + strconv.Itoa(length) + "\r\n\r\n" + partial
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatalf("write: %v", err)
	}
	return c
}

// answer reads the response on c, which must come within a few seconds although the
// request's body was never sent.
func answer(t testing.TB, c net.Conn) *http.Response {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer before the body arrived: %v", err)
	}
	_ = resp.Body.Close()
	return resp
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStalledBodiesHeap is the probe of issue #10: many concurrent requests that declare
// a 5 MiB body, send about 100 bytes and stall, half to Mailgun (whose signature is in
// the body, so nothing can be checked first) and half to the generic endpoint with its
// valid token. Before the fix each one made the handler allocate the declared length
// up front: 900 of them held 4.5 GB. Now the buffer grows only with what arrives, and
// past the in-flight bounds requests are answered 503 before any buffer exists.
//
// Not parallel: it measures the whole process's heap.
func TestStalledBodiesHeap(t *testing.T) {
	const conns = 900
	for _, tt := range []struct {
		name          string
		total, perESP int // 0: the defaults
	}{
		{name: "default in-flight bounds"},
		// The bounds out of the way: the growing buffer alone keeps the heap small.
		{name: "bounds wide open", total: conns, perESP: conns},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := edgeHandler(t, &pub{})
			reading := conns
			if tt.total > 0 {
				h.SetConcurrency(tt.total, tt.perESP)
			} else {
				d := config.Default()
				reading = min(d.WebhookConcurrency, 2*d.WebhookConcurrencyPerESP)
			}
			s := serve(t, h)
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)

			partial := strings.Repeat("x", 100)
			for i := range conns {
				path, auth := "/webhooks/mailgun", ""
				if i%2 == 1 {
					path, auth = "/webhooks/generic", "Authorization: Bearer "+edgeToken+"\r\n"
				}
				stall(t, s.Listener.Addr().String(), path, auth, 5<<20, partial)
			}
			waitFor(t, "every request to reach the handler", func() bool { return s.entered.Load() == conns })
			waitFor(t, "the requests over the bounds to be answered", func() bool { return s.answered(http.StatusServiceUnavailable) == conns-reading })
			// Give the handlers still reading time to make whatever allocation they make.
			time.Sleep(300 * time.Millisecond)
			runtime.GC()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			const mb = 1 << 20
			t.Logf("%d stalled requests, %d reading, %d answered 503: live heap %d MB (before %d MB), heap in use %d MB, from the OS %d MB",
				conns, reading, s.answered(http.StatusServiceUnavailable), after.HeapAlloc/mb, before.HeapAlloc/mb, after.HeapInuse/mb, after.Sys/mb)
			if after.HeapAlloc > 100*mb {
				t.Fatalf("live heap %d MB with %d stalled requests, want under 100 MB", after.HeapAlloc/mb, conns)
			}
		})
	}
}

// TestRefusedBeforeBody: what the headers can refuse is answered at once, although the
// declared body never arrives: nothing waits on it or buffers for it.
func TestRefusedBeforeBody(t *testing.T) {
	t.Parallel()
	// Every ESP with nothing configured, and the configured handler of the other tests.
	adapters, err := all.Adapters(ingesttest.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	bare := serve(t, ingest.NewHandler(&pub{}, metrics.New(), zap.NewNop(), 5<<20, append(adapters, ingest.NewGeneric(""))...))
	for _, a := range append(adapters, ingest.NewGeneric("")) {
		if _, ok := a.(ingest.HeaderAuthenticator); !ok {
			t.Errorf("%s does not check headers before the body", a.ESP())
		}
		resp := answer(t, stall(t, bare.Listener.Addr().String(), "/webhooks/"+a.ESP(), "", 1<<20, ""))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s not configured: status %d, want 401", a.ESP(), resp.StatusCode)
		}
	}
	s := serve(t, edgeHandler(t, &pub{}))
	for _, tt := range []struct {
		name, path, headers string
		length, code        int
	}{
		{"no token", "/webhooks/generic", "", 1 << 20, http.StatusUnauthorized},
		// Under net/http's 256 KiB drain: answered at once all the same, not after the
		// read timeout, because the connection is closed instead of drained.
		{"no token, small declared body", "/webhooks/generic", "", 1000, http.StatusUnauthorized},
		{"wrong token", "/webhooks/generic", "Authorization: Bearer nope\r\n", 1 << 20, http.StatusUnauthorized},
		{"declared over the cap", "/webhooks/generic", "Authorization: Bearer " + edgeToken + "\r\n", 5<<20 + 1, http.StatusRequestEntityTooLarge},
	} {
		resp := answer(t, stall(t, s.Listener.Addr().String(), tt.path, tt.headers, tt.length, "[{"))
		if resp.StatusCode != tt.code {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.code)
		}
	}
}

// TestInFlightBounds: past the per-ESP bound, or the total one, a request is answered
// 503 with Retry-After before its body is read; other ESPs are not held up by one ESP's
// bound, and a slot frees when its request ends.
func TestInFlightBounds(t *testing.T) {
	t.Parallel()
	const genericAuth = "Authorization: Bearer " + edgeToken + "\r\n"
	body := `{"id":"generic:1","esp":"generic","type":"bounce","occurred_at":"2026-01-01T00:00:00Z","recipient":"a@example.com"}`
	// holdMailgun stalls a Mailgun request and waits until it holds its slot, which it
	// takes as soon as it reaches the handler.
	holdMailgun := func(t *testing.T, s *server) net.Conn {
		n := s.entered.Load()
		c := stall(t, s.Listener.Addr().String(), "/webhooks/mailgun", "", 1000, "{")
		waitFor(t, "the stalled request to hold its slot", func() bool { return s.entered.Load() == n+1 })
		return c
	}

	t.Run("per ESP", func(t *testing.T) {
		t.Parallel()
		h := edgeHandler(t, &pub{})
		h.SetConcurrency(2, 1)
		s := serve(t, h)
		addr := s.Listener.Addr().String()
		held := holdMailgun(t, s)
		resp := answer(t, stall(t, addr, "/webhooks/mailgun", "", 2, "{}"))
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("second Mailgun request: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if resp := answer(t, stall(t, addr, "/webhooks/generic", genericAuth, len(body), body)); resp.StatusCode != http.StatusOK {
			t.Fatalf("generic while Mailgun is at its bound: %d, want 200", resp.StatusCode)
		}
		_ = held.Close()
		waitFor(t, "Mailgun's slot to free", func() bool {
			// Unsigned, so 401: it got a slot and its body was read.
			return answer(t, stall(t, addr, "/webhooks/mailgun", "", 2, "{}")).StatusCode == http.StatusUnauthorized
		})
	})

	t.Run("total", func(t *testing.T) {
		t.Parallel()
		h := edgeHandler(t, &pub{})
		h.SetConcurrency(1, 1)
		s := serve(t, h)
		holdMailgun(t, s)
		resp := answer(t, stall(t, s.Listener.Addr().String(), "/webhooks/generic", genericAuth, len(body), body))
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("generic with every slot taken by Mailgun: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	})
}

// mailgunBody is a Mailgun webhook signed with token at ts, carrying eventData.
func mailgunBody(t testing.TB, token string, ts time.Time, eventData string) []byte {
	t.Helper()
	stamp := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, []byte(edgeMailgunKey))
	m.Write([]byte(stamp + token))
	return []byte(`{"signature":{"timestamp":"` + stamp + `","token":"` + token + `","signature":"` + hex.EncodeToString(m.Sum(nil)) +
		`"},"event-data":` + eventData + `}`)
}

func mailgunEvent(id, rcpt string) string {
	return `{"id":"` + id + `","event":"failed","severity":"permanent","reason":"bounce","timestamp":` + strconv.FormatInt(time.Now().Unix(), 10) +
		`,"recipient":"` + rcpt + `","delivery-status":{"code":550,"message":"5.1.1 user unknown"}}`
}

// TestReplayAcrossReplicas: two handlers standing for two replicas (and a third for one
// restarted) share the real Redis. A Mailgun signature accepted by one is refused by
// the others, with its event-data or made-up event-data alike, and so is a Resend
// svix-id; a request whose publish failed is accepted when the ESP retries it.
func TestReplayAcrossReplicas(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	prefix := testsvc.Prefix(t, rdb)
	resendKey := []byte("resend-edge-secret-0123456789")
	replica := func() (*http.ServeMux, *pub) {
		mg, err := mailgun.New(ingesttest.Env(map[string]string{"REBOUND_MAILGUN_SIGNING_KEY": edgeMailgunKey}))
		if err != nil {
			t.Fatal(err)
		}
		rs, err := resend.New(ingesttest.Env(map[string]string{"REBOUND_RESEND_SIGNING_SECRET": "whsec_" + base64.StdEncoding.EncodeToString(resendKey)}))
		if err != nil {
			t.Fatal(err)
		}
		p := &pub{}
		h := ingest.NewHandler(p, metrics.New(), zap.NewNop(), 1<<20, mg, rs)
		h.SetReplayStore(ingest.NewRedisReplayStore(rdb, prefix))
		mux := http.NewServeMux()
		h.Register(mux)
		return mux, p
	}
	a, pa := replica()
	b, pb := replica()
	post := func(mux *http.ServeMux, r *http.Request) int {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Code
	}
	mailgunReq := func(body []byte) *http.Request {
		return httptest.NewRequest(http.MethodPost, "/webhooks/mailgun", bytes.NewReader(body))
	}

	genuine := mailgunBody(t, "tok-"+testsvc.ID(), time.Now(), mailgunEvent("evt-1", "ana@example.net"))
	if code := post(a, mailgunReq(genuine)); code != http.StatusOK {
		t.Fatalf("genuine Mailgun request on replica A: %d, want 200", code)
	}
	var captured struct {
		Signature json.RawMessage `json:"signature"`
	}
	if err := json.Unmarshal(genuine, &captured); err != nil {
		t.Fatal(err)
	}
	forged := []byte(`{"signature":` + string(captured.Signature) + `,"event-data":` + mailgunEvent("made-up", "victim@example.net") + `}`)
	for name, body := range map[string][]byte{"the same request": genuine, "its signature with made-up event-data": forged} {
		if code := post(b, mailgunReq(body)); code != http.StatusUnauthorized {
			t.Errorf("%s on replica B: %d, want 401", name, code)
		}
		if code := post(a, mailgunReq(body)); code != http.StatusUnauthorized {
			t.Errorf("%s on replica A again: %d, want 401", name, code)
		}
	}
	restarted, _ := replica()
	if code := post(restarted, mailgunReq(forged)); code != http.StatusUnauthorized {
		t.Errorf("replay on a restarted replica: %d, want 401", code)
	}
	if pa.count() != 1 || pb.count() != 0 {
		t.Fatalf("published %d events on A and %d on B, want 1 and 0", pa.count(), pb.count())
	}

	// The token is kept under the prefix for two replay windows, hashed.
	keys, err := rdb.Keys(context.Background(), prefix+"replay:mailgun:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("replay keys %v, %v; want one", keys, err)
	}
	if ttl := rdb.TTL(context.Background(), keys[0]).Val(); ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Errorf("TTL of %s = %s, want 10m", keys[0], ttl)
	}

	// Publish fails on A: 503, and the ESP's retry (here to B) goes through, once.
	retried := mailgunBody(t, "tok-"+testsvc.ID(), time.Now(), mailgunEvent("evt-2", "ben@example.net"))
	pa.setFail(true)
	if code := post(a, mailgunReq(retried)); code != http.StatusServiceUnavailable {
		t.Fatalf("publish failure on A: %d, want 503", code)
	}
	pa.setFail(false)
	if code := post(b, mailgunReq(retried)); code != http.StatusOK {
		t.Fatalf("the ESP's retry on B after a 503: %d, want 200", code)
	}
	if code := post(a, mailgunReq(retried)); code != http.StatusUnauthorized {
		t.Fatalf("the same request after the retry succeeded: %d, want 401", code)
	}

	// Resend: the svix-id.
	body := []byte(`{"type":"email.bounced","created_at":"2026-02-03T15:30:00.000Z","data":{"email_id":"e1","created_at":"2026-02-03T15:29:58.000Z","from":"r@mail.shop.example","to":["ines@example.org"],"bounce":{"type":"Permanent","subType":"General","message":"550 5.1.1 user unknown"}}}`)
	id, ts := "msg_"+testsvc.ID(), strconv.FormatInt(time.Now().Unix(), 10)
	m := hmac.New(sha256.New, resendKey)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	sig := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	resendReq := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/resend", bytes.NewReader(body))
		r.Header.Set("svix-id", id)
		r.Header.Set("svix-timestamp", ts)
		r.Header.Set("svix-signature", sig)
		return r
	}
	if code := post(b, resendReq()); code != http.StatusOK {
		t.Fatalf("genuine Resend request on B: %d, want 200", code)
	}
	if code := post(a, resendReq()); code != http.StatusUnauthorized {
		t.Fatalf("Resend replay on A: %d, want 401", code)
	}
}
