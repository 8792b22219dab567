package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/config"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/stream"
)

// Publisher is what the handler needs from JetStream; stream.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, evs []events.Event) error
	DeadLetter(ctx context.Context, d stream.DeadLetter) error
}

// Handler serves `POST /webhooks/{esp}`.
type Handler struct {
	adapters map[string]Adapter
	pub      Publisher
	metrics  *metrics.Metrics
	log      *zap.Logger
	maxBody  int64
	limits   map[string]int64 // per-ESP body caps (REBOUND_<ESP>_MAX_BODY_BYTES)
	replay   ReplayStore

	// inflight bounds the requests whose body is being read or processed, in total and
	// per ESP: each holds up to its body cap in memory, so together they bound what
	// senders can make the process hold (REBOUND_WEBHOOK_CONCURRENCY, _PER_ESP).
	inflight    chan struct{}
	inflightESP map[string]chan struct{}
}

// NewHandler returns the ingest handler for the given adapters. One-time tokens are
// remembered in this process until SetReplayStore gives it a shared store, and the
// in-flight bounds are the configuration's defaults until SetConcurrency.
func NewHandler(pub Publisher, m *metrics.Metrics, log *zap.Logger, maxBody int64, adapters ...Adapter) *Handler {
	h := &Handler{adapters: map[string]Adapter{}, pub: pub, metrics: m, log: log, maxBody: maxBody, replay: NewMemoryReplayStore(nil)}
	for _, a := range adapters {
		h.adapters[a.ESP()] = a
	}
	d := config.Default()
	h.SetConcurrency(d.WebhookConcurrency, d.WebhookConcurrencyPerESP)
	return h
}

// SetLimits sets per-ESP body caps that replace the default for those ESPs.
func (h *Handler) SetLimits(limits map[string]int64) { h.limits = limits }

// SetReplayStore sets where one-time tokens are remembered (RedisReplayStore with
// replicas). Call it before the handler serves.
func (h *Handler) SetReplayStore(s ReplayStore) { h.replay = s }

// SetConcurrency bounds the webhook requests read and processed at once: total across
// ESPs and perESP for each (values below 1 count as 1). A request over either bound is
// answered 503 with Retry-After before its body is read. Call it before the handler
// serves.
func (h *Handler) SetConcurrency(total, perESP int) {
	h.inflight = make(chan struct{}, max(total, 1))
	h.inflightESP = make(map[string]chan struct{}, len(h.adapters))
	for esp := range h.adapters {
		h.inflightESP[esp] = make(chan struct{}, max(perESP, 1))
	}
}

// acquire takes an in-flight slot for esp without waiting: a sender that is already at
// the bound gets a 503 at once rather than a queue that would hold its connection.
func (h *Handler) acquire(esp string) (release func(), ok bool) {
	perESP := h.inflightESP[esp]
	select {
	case perESP <- struct{}{}:
	default:
		return nil, false
	}
	select {
	case h.inflight <- struct{}{}:
	default:
		<-perESP
		return nil, false
	}
	return func() { <-h.inflight; <-perESP }, true
}

func (h *Handler) maxBodyFor(esp string) int64 {
	if n, ok := h.limits[esp]; ok && n > 0 {
		return n
	}
	return h.maxBody
}

// Register adds the route to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /webhooks/{esp}", h.serve)
	// Some ESPs probe the URL before they save it (Mandrill sends HEAD): answer for
	// every known ESP, without authentication, revealing nothing.
	mux.HandleFunc("HEAD /webhooks/{esp}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := h.adapters[r.PathValue("esp")]; !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// Response is the body of a successful webhook answer.
type Response struct {
	Accepted int      `json:"accepted"`
	Rejected []Reject `json:"rejected"`
	Ignored  int      `json:"ignored,omitempty"`
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name := r.PathValue("esp")
	a, ok := h.adapters[name]
	if !ok {
		writeError(w, http.StatusNotFound, "no webhook for ESP "+strconv.Quote(name))
		return
	}
	code := h.handle(w, r, a)
	h.metrics.WebhookRequests.WithLabelValues(name, strconv.Itoa(code)).Inc()
	h.metrics.WebhookSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
}

// retryAfter is the Retry-After of a 503 for a full in-flight bound or a token in
// flight elsewhere: ESPs mostly keep their own schedule, in-house senders may honour it.
const retryAfter = "2"

// replayHold bounds how long a request may hold its one-time token before its outcome
// is known: more than the server's write timeout, so a live request never loses it,
// and short enough that a crashed replica does not block the ESP's retry for long.
const replayHold = time.Minute

func (h *Handler) handle(w http.ResponseWriter, r *http.Request, a Adapter) int {
	log := h.log.With(zap.String("esp", a.ESP()))
	// Whatever the headers alone can refuse is refused before a byte of the body is read.
	if ha, ok := a.(HeaderAuthenticator); ok {
		if err := ha.AuthenticateHeaders(r); err != nil {
			closeUnread(w)
			return h.unauthorized(w, r, a, log, err)
		}
	}
	limit := h.maxBodyFor(a.ESP())
	if r.ContentLength > limit {
		closeUnread(w)
		return writeError(w, http.StatusRequestEntityTooLarge, "body larger than "+strconv.FormatInt(limit, 10)+" bytes")
	}
	release, ok := h.acquire(a.ESP())
	if !ok {
		closeUnread(w)
		w.Header().Set("Retry-After", retryAfter)
		return writeError(w, http.StatusServiceUnavailable, "too many webhook requests in flight, retry later")
	}
	defer release()
	body, err := readBody(w, r, limit)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return writeError(w, http.StatusRequestEntityTooLarge, "body larger than "+strconv.FormatInt(limit, 10)+" bytes")
		}
		return writeError(w, http.StatusBadRequest, "could not read the body")
	}
	if err := a.Authenticate(r, body); err != nil {
		return h.unauthorized(w, r, a, log, err)
	}
	ctx := r.Context()
	tok, code := h.claim(w, r, a, body, log)
	if code != 0 {
		return code
	}
	batch, err := a.Parse(body)
	if err != nil {
		if errors.Is(err, ErrBadRequest) {
			tok.release(ctx)
			h.metrics.EventsRejected.WithLabelValues(a.ESP(), "bad_request").Inc()
			return writeError(w, http.StatusBadRequest, err.Error())
		}
		// An authenticated body we cannot read: keep it, and answer so the ESP stops retrying.
		batch = Batch{Rejects: []Reject{{Index: -1, Reason: err.Error(), Raw: body}}}
	}
	if err := h.pub.Publish(ctx, batch.Events); err != nil {
		tok.release(ctx)
		log.Warn("publish failed; asking the ESP to retry", zap.Int("events", len(batch.Events)), zap.Error(err))
		return writeError(w, http.StatusServiceUnavailable, "event stream unavailable, retry later")
	}
	for _, rej := range batch.Rejects {
		if err := h.pub.DeadLetter(ctx, stream.DeadLetter{Stage: "ingest", ESP: a.ESP(), Reason: rej.Reason, Raw: rej.Raw}); err != nil {
			// The ESP's retry publishes the events again (stored once: their IDs are the
			// message IDs), so its token must pass again too.
			tok.release(ctx)
			log.Warn("dead-letter failed; asking the ESP to retry", zap.Error(err))
			return writeError(w, http.StatusServiceUnavailable, "event stream unavailable, retry later")
		}
		h.metrics.DeadLetters.WithLabelValues("ingest").Inc()
		h.metrics.EventsRejected.WithLabelValues(a.ESP(), "invalid").Inc()
	}
	tok.commit(ctx)
	if batch.Ignored > 0 {
		h.metrics.EventsRejected.WithLabelValues(a.ESP(), "ignored_type").Add(float64(batch.Ignored))
	}
	h.metrics.EventsIngested.WithLabelValues(a.ESP()).Add(float64(len(batch.Events)))
	if len(batch.Rejects) > 0 {
		log.Info("webhook items dead-lettered", zap.Int("rejected", len(batch.Rejects)), zap.Int("accepted", len(batch.Events)))
	}
	resp := Response{Accepted: len(batch.Events), Rejected: batch.Rejects, Ignored: batch.Ignored}
	if resp.Rejected == nil {
		resp.Rejected = []Reject{}
	}
	return writeJSON(w, http.StatusOK, resp)
}

// closeUnread marks the connection of a request refused before its body was read to
// be closed after the answer. Otherwise net/http first drains up to 256 KiB of the
// unread body to reuse the connection, and a sender that stalls holds the answer and
// the connection until the read timeout.
func closeUnread(w http.ResponseWriter) { w.Header().Set("Connection", "close") }

// unauthorized answers a request that failed its ESP's check. The reason goes to the
// log and a metric, never to the caller.
func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request, a Adapter, log *zap.Logger, err error) int {
	log.Warn("webhook authentication failed", zap.Error(err), zap.String("remote", r.RemoteAddr))
	h.metrics.EventsRejected.WithLabelValues(a.ESP(), "unauthenticated").Inc()
	if c, ok := a.(Challenger); ok {
		if v := c.Challenge(); v != "" {
			w.Header().Set("WWW-Authenticate", v)
		}
	}
	return writeError(w, http.StatusUnauthorized, "unauthorized")
}

// heldToken is a one-time token claimed for the request in flight; the zero value
// (no token) does nothing.
type heldToken struct {
	h          *Handler
	log        *zap.Logger
	key, owner string
	ttl        time.Duration
}

// claim takes the request's one-time token, if its ESP signs one. A token already used
// is a replay (401); one held by a request in flight, or a store that cannot answer,
// gets a 503 so the ESP retries. code is 0 when the request may go on.
func (h *Handler) claim(w http.ResponseWriter, r *http.Request, a Adapter, body []byte, log *zap.Logger) (heldToken, int) {
	ra, ok := a.(Replayable)
	if !ok {
		return heldToken{}, 0
	}
	token, ttl := ra.ReplayToken(r, body)
	if token == "" {
		return heldToken{}, 0
	}
	t := heldToken{h: h, log: log, key: ReplayKey(a.ESP(), token), owner: newOwner(), ttl: ttl}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	state, err := h.replay.Claim(ctx, t.key, t.owner, replayHold)
	switch {
	case err != nil:
		log.Warn("replay check unavailable; asking the ESP to retry", zap.Error(err))
		return heldToken{}, writeError(w, http.StatusServiceUnavailable, "replay check unavailable, retry later")
	case state == ClaimUsed:
		return heldToken{}, h.unauthorized(w, r, a, log, fmt.Errorf("%w: one-time token already used (replay)", ErrUnauthenticated))
	case state == ClaimBusy:
		w.Header().Set("Retry-After", retryAfter)
		return heldToken{}, writeError(w, http.StatusServiceUnavailable, "the same webhook is in flight, retry later")
	}
	return t, 0
}

// storeTimeout bounds one replay-store call.
const storeTimeout = 2 * time.Second

// commit records the token once the request's events are stored. The events are
// already published, so a failure here only leaves this token replayable: logged, and
// the ESP is still answered 200.
func (t heldToken) commit(ctx context.Context) {
	if t.key == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := t.h.replay.Commit(ctx, t.key, t.ttl); err != nil {
		t.log.Warn("could not record a one-time token; it stays replayable within its window", zap.Error(err))
	}
}

// release gives the token up after a failure, so the ESP's retry is accepted; if the
// store cannot be reached the hold expires on its own (replayHold).
func (t heldToken) release(ctx context.Context) {
	if t.key == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := t.h.replay.Release(ctx, t.key, t.owner); err != nil {
		t.log.Warn("could not release a one-time token; the ESP's retry is refused until the hold expires", zap.Duration("hold", replayHold), zap.Error(err))
	}
}

func newOwner() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// initialBodyBuffer is the most a request's read buffer holds before its bytes
// arrive. Past it the buffer doubles only when full, so it is never more than twice
// what was actually received: a declared Content-Length is a claim, not bytes, and
// sizing the buffer by it let a sender make the process allocate the whole cap for a
// request that then sent nothing (issue #10).
const initialBodyBuffer = 16 << 10

// readBody reads at most limit bytes of the body into a buffer that grows with what
// arrives; MaxBytesReader enforces the limit.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	// A small declared body gets its exact size, plus one byte so the read that meets
	// EOF does not grow the buffer.
	size := int64(initialBodyBuffer)
	if r.ContentLength >= 0 && r.ContentLength < size {
		size = r.ContentLength + 1
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			// Double what has arrived, but never past what was declared (plus the EOF
			// byte) nor the cap (plus the byte that tells MaxBytesReader it is exceeded).
			next := max(2*int64(cap(buf)), 512)
			if r.ContentLength > int64(len(buf)) {
				next = min(next, r.ContentLength+1)
			}
			next = min(next, limit+1)
			grown := make([]byte, len(buf), max(next, int64(len(buf))+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
	return code
}

func writeError(w http.ResponseWriter, code int, msg string) int {
	return writeJSON(w, code, map[string]string{"error": msg})
}
