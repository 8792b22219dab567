package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

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
}

// NewHandler returns the ingest handler for the given adapters.
func NewHandler(pub Publisher, m *metrics.Metrics, log *zap.Logger, maxBody int64, adapters ...Adapter) *Handler {
	h := &Handler{adapters: map[string]Adapter{}, pub: pub, metrics: m, log: log, maxBody: maxBody}
	for _, a := range adapters {
		h.adapters[a.ESP()] = a
	}
	return h
}

// SetLimits sets per-ESP body caps that replace the default for those ESPs.
func (h *Handler) SetLimits(limits map[string]int64) { h.limits = limits }

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

func (h *Handler) handle(w http.ResponseWriter, r *http.Request, a Adapter) int {
	log := h.log.With(zap.String("esp", a.ESP()))
	limit := h.maxBodyFor(a.ESP())
	body, err := readBody(w, r, limit)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return writeError(w, http.StatusRequestEntityTooLarge, "body larger than "+strconv.FormatInt(limit, 10)+" bytes")
		}
		return writeError(w, http.StatusBadRequest, "could not read the body")
	}
	if err := a.Authenticate(r, body); err != nil {
		// The reason goes to the log and a metric, never to the caller.
		log.Warn("webhook authentication failed", zap.Error(err), zap.String("remote", r.RemoteAddr))
		h.metrics.EventsRejected.WithLabelValues(a.ESP(), "unauthenticated").Inc()
		if c, ok := a.(Challenger); ok {
			if v := c.Challenge(); v != "" {
				w.Header().Set("WWW-Authenticate", v)
			}
		}
		return writeError(w, http.StatusUnauthorized, "unauthorized")
	}
	batch, err := a.Parse(body)
	if err != nil {
		if errors.Is(err, ErrBadRequest) {
			h.metrics.EventsRejected.WithLabelValues(a.ESP(), "bad_request").Inc()
			return writeError(w, http.StatusBadRequest, err.Error())
		}
		// An authenticated body we cannot read: keep it, and answer so the ESP stops retrying.
		batch = Batch{Rejects: []Reject{{Index: -1, Reason: err.Error(), Raw: body}}}
	}
	ctx := r.Context()
	if err := h.pub.Publish(ctx, batch.Events); err != nil {
		log.Warn("publish failed; asking the ESP to retry", zap.Int("events", len(batch.Events)), zap.Error(err))
		return writeError(w, http.StatusServiceUnavailable, "event stream unavailable, retry later")
	}
	for _, rej := range batch.Rejects {
		if err := h.pub.DeadLetter(ctx, stream.DeadLetter{Stage: "ingest", ESP: a.ESP(), Reason: rej.Reason, Raw: rej.Raw}); err != nil {
			log.Warn("dead-letter failed; asking the ESP to retry", zap.Error(err))
			return writeError(w, http.StatusServiceUnavailable, "event stream unavailable, retry later")
		}
		h.metrics.DeadLetters.WithLabelValues("ingest").Inc()
		h.metrics.EventsRejected.WithLabelValues(a.ESP(), "invalid").Inc()
	}
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

// readBody reads at most limit bytes of the body. A declared Content-Length sizes the
// buffer once, instead of io.ReadAll doubling it from 512 bytes for a batch of tens of
// kilobytes; the length is only a hint, MaxBytesReader still enforces the limit.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength <= 0 || r.ContentLength > limit {
		return io.ReadAll(body)
	}
	buf := bytes.NewBuffer(make([]byte, 0, r.ContentLength+bytes.MinRead))
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
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
