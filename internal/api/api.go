// Package api is the api role: the HTTP surface operators and sending platforms script
// against (suppression look-ups, recipient state, open sender-side incidents, the
// catalog and a classify endpoint), plus the probes and metrics every role serves.
package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
)

// API serves the /v1 endpoints.
type API struct {
	Store   *suppress.Store
	Catalog *catalog.Catalog
	Policy  func() *policy.Policy
	Log     *zap.Logger
	// PolicySource names the live policy file ("" = built-in); Shadow says whether a
	// shadow policy is configured.
	PolicySource func() string
	Shadow       bool
}

// Register adds the /v1 routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/suppressions/{address}", a.getSuppression)
	mux.HandleFunc("GET /v1/suppressions", a.listSuppressions)
	mux.HandleFunc("GET /v1/recipients/{address}", a.getRecipient)
	mux.HandleFunc("GET /v1/alerts", a.listAlerts)
	mux.HandleFunc("GET /v1/catalog/{code}", a.getCatalogEntry)
	mux.HandleFunc("POST /v1/classify", a.classify)
	mux.HandleFunc("GET /v1/policy/shadow", a.shadowReport)
}

func (a *API) shadowReport(w http.ResponseWriter, r *http.Request) {
	counts, samples, err := a.Store.ShadowReport(r.Context())
	if err != nil {
		a.unavailable(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"enabled": a.Shadow, "disagreements": counts, "samples": samples})
}

func (a *API) address(w http.ResponseWriter, r *http.Request) (string, bool) {
	addr, err := events.NormalizeAddress(r.PathValue("address"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "address: "+err.Error())
		return "", false
	}
	return addr, true
}

func (a *API) getSuppression(w http.ResponseWriter, r *http.Request) {
	addr, ok := a.address(w, r)
	if !ok {
		return
	}
	rec, err := a.Store.Lookup(r.Context(), r.URL.Query().Get("tenant"), addr)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	if rec == nil {
		WriteError(w, http.StatusNotFound, "not suppressed")
		return
	}
	WriteJSON(w, http.StatusOK, rec)
}

func (a *API) listSuppressions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), 100, 1, 1000)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "limit: "+err.Error())
		return
	}
	offset, err := intParam(q.Get("offset"), 0, 0, 1<<30)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "offset: "+err.Error())
		return
	}
	recs, err := a.Store.ListSuppressions(r.Context(), q.Get("tenant"), offset, limit)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"suppressions": recs, "offset": offset, "limit": limit})
}

func (a *API) getRecipient(w http.ResponseWriter, r *http.Request) {
	addr, ok := a.address(w, r)
	if !ok {
		return
	}
	st, err := a.Store.Recipient(r.Context(), r.URL.Query().Get("tenant"), addr)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	pol := a.Policy()
	WriteJSON(w, http.StatusOK, map[string]any{
		"address":     addr,
		"suppression": st.Suppression,
		"soft_bounces": map[string]any{
			"count": st.SoftBounces, "threshold": pol.SoftThreshold, "window": pol.SoftWindow.String(),
		},
		"history": st.History,
	})
}

func (a *API) listAlerts(w http.ResponseWriter, r *http.Request) {
	incs, err := a.Store.OpenIncidents(r.Context(), 500)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"alerts": incs})
}

func (a *API) getCatalogEntry(w http.ResponseWriter, r *http.Request) {
	e, ok := a.Catalog.Entry(r.PathValue("code"))
	if !ok {
		WriteError(w, http.StatusNotFound, "no catalog entry for "+strconv.Quote(r.PathValue("code")))
		return
	}
	WriteJSON(w, http.StatusOK, e)
}

// ClassifyRequest is the body of POST /v1/classify.
type ClassifyRequest struct {
	Reply   string   `json:"reply"`
	Replies []string `json:"replies"`
}

// Classified is one classified reply, as `worker classify` prints it.
type Classified struct {
	Reply string `json:"reply"`
	catalog.Classification
	Action policy.Action `json:"action"`
}

// Classify classifies a reply as a bounce under the policy (the CLI uses it too).
func Classify(cat *catalog.Catalog, pol *policy.Policy, reply string) Classified {
	cl := cat.Classify(reply, catalog.Hints{})
	ev := events.Event{Type: events.TypeBounce}
	return Classified{Reply: reply, Classification: cl, Action: pol.Decide(&ev, cl).Action}
}

func (a *API) classify(w http.ResponseWriter, r *http.Request) {
	var req ClassifyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		WriteError(w, http.StatusBadRequest, "body: want {\"reply\": \"…\"} or {\"replies\": [\"…\"]}: "+err.Error())
		return
	}
	if req.Reply != "" {
		req.Replies = append(req.Replies, req.Reply)
	}
	if len(req.Replies) == 0 {
		WriteError(w, http.StatusBadRequest, "reply: required")
		return
	}
	pol := a.Policy()
	out := make([]Classified, len(req.Replies))
	for i, s := range req.Replies {
		out[i] = Classify(a.Catalog, pol, s)
	}
	WriteJSON(w, http.StatusOK, map[string]any{"results": out})
}

func (a *API) unavailable(w http.ResponseWriter, err error) {
	a.Log.Warn("api: state unavailable", zap.Error(err))
	WriteError(w, http.StatusServiceUnavailable, "state store unavailable")
}

func intParam(s string, def, min, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, &paramError{min: min, max: max}
	}
	return n, nil
}

type paramError struct{ min, max int }

func (e *paramError) Error() string {
	return "want a whole number from " + strconv.Itoa(e.min) + " to " + strconv.Itoa(e.max)
}

// Probes serves /healthz, /readyz and /metrics.
type Probes struct {
	// Checks run on /readyz; each names what it checks (nats, redis, streams).
	Checks  map[string]func(context.Context) error
	Metrics *metrics.Metrics
}

// Register adds the probe routes to mux.
func (p *Probes) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", p.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.Metrics.Registry, promhttp.HandlerOpts{}))
}

func (p *Probes) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, failed := map[string]string{}, []string{}
	for name, check := range p.Checks {
		if err := check(ctx); err != nil {
			status[name] = err.Error()
			failed = append(failed, name)
			continue
		}
		status[name] = "ok"
	}
	code := http.StatusOK
	if len(failed) > 0 {
		code = http.StatusServiceUnavailable
		status["error"] = "not ready: " + strings.Join(failed, ", ")
	}
	WriteJSON(w, code, status)
}

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// WriteError writes {"error": msg}.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, map[string]string{"error": msg})
}
