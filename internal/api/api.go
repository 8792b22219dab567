// Package api is the api role: the HTTP surface operators and sending platforms script
// against (suppression look-ups, recipient state, open sender-side incidents, the
// catalog and a classify endpoint), plus the probes and metrics every role serves.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
)

// API serves the /v1 endpoints.
type API struct {
	Store   *suppress.Store
	Alerts  *alert.Store
	Guard   *guard.Guard     // the mass-bounce guard's holds
	Metrics *metrics.Metrics // optional
	Catalog *catalog.Catalog
	Policy  func() *policy.Policy
	Log     *zap.Logger
	// PolicySource names the live policy file ("" = built-in); Shadow says whether a
	// shadow policy is configured.
	PolicySource func() string
	Shadow       bool
	// Tokens are the API's credentials, each with a scope: REBOUND_API_TOKENS, and
	// REBOUND_API_TOKEN as one more admin token (app.APITokens folds it in). With none,
	// reads from loopback are open and changes are refused (see auth).
	Tokens []Token

	patterns []string // what route registered, for the contract test

	outage        sync.Mutex // guards the three below: the last "unavailable" logged
	outageErr     string
	outageAt      time.Time
	outageRepeats int
}

// Route is one /v1 endpoint. Routes is the single table Register walks and the OpenAPI
// contract test checks: add an endpoint here, and to internal/api/openapi.yaml (copied
// to docs/). A handler that changes state records it with a.audit, which logs the change
// at info with the token's name (Actor) and appends it to GET /v1/audit.
type Route struct {
	Pattern string // "METHOD /path", as http.ServeMux reads it
	Scope   Scope  // the smallest scope allowed to call it
	Handler http.HandlerFunc
}

// Routes lists every /v1 endpoint with its scope.
func (a *API) Routes() []Route {
	return []Route{
		{"GET /v1/openapi.yaml", ScopeRead, serveOpenAPI},
		{"GET /v1/suppressions/{address}", ScopeRead, a.getSuppression},
		{"GET /v1/suppressions", ScopeRead, a.listSuppressions},
		{"POST /v1/suppressions/check", ScopeRead, a.checkSuppressions},
		{"GET /v1/suppressions/export", ScopeRead, a.exportSuppressions},
		{"POST /v1/suppressions/import", ScopeAdmin, a.importSuppressions},
		{"POST /v1/suppressions", ScopeWrite, a.addSuppression},
		{"DELETE /v1/suppressions/{address}", ScopeWrite, a.removeSuppression},
		{"GET /v1/suppressions/removals", ScopeRead, a.listRemovals},
		{"GET /v1/audit", ScopeRead, a.listAudit},
		{"GET /v1/recipients/{address}", ScopeRead, a.getRecipient},
		{"DELETE /v1/recipients/{address}", ScopeAdmin, a.eraseRecipient},
		{"GET /v1/alerts", ScopeRead, a.listAlerts},
		{"GET /v1/alerts/{id}", ScopeRead, a.getAlert},
		{"POST /v1/alerts/{id}/ack", ScopeWrite, a.changeAlert("ack")},
		{"POST /v1/alerts/{id}/resolve", ScopeWrite, a.changeAlert("resolve")},
		{"GET /v1/catalog/{code}", ScopeRead, a.getCatalogEntry},
		{"POST /v1/classify", ScopeRead, a.classify},
		{"GET /v1/policy/shadow", ScopeRead, a.shadowReport},
		{"GET /v1/unknown-replies", ScopeRead, a.unknownReplies},
		{"GET /v1/mass-bounce", ScopeRead, a.listHeld},
		{"POST /v1/mass-bounce/{domain}/apply", ScopeWrite, a.releaseHeld(true)},
		{"POST /v1/mass-bounce/{domain}/discard", ScopeWrite, a.releaseHeld(false)},
	}
}

// Register adds the /v1 routes to mux, each behind the token check for its scope, and
// a JSON 404 for any other /v1 path.
func (a *API) Register(mux *http.ServeMux) {
	for _, rt := range a.Routes() {
		a.route(mux, rt.Scope, rt.Pattern, rt.Handler)
	}
	mux.HandleFunc("/v1/", a.noRoute)
}

// AddRequest is the body of POST /v1/suppressions.
type AddRequest struct {
	Address string `json:"address"`
	Tenant  string `json:"tenant"`
	Reason  string `json:"reason"` // required: why it is added (kept in the record and the audit log)
	TTL     string `json:"ttl"`    // "" = permanent; "30d", "12h"
}

func (a *API) addSuppression(w http.ResponseWriter, r *http.Request) {
	var req AddRequest
	if !decode(w, r, &req) {
		return
	}
	addr, err := events.NormalizeAddress(req.Address)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "address: "+err.Error())
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		if ttl, err = policy.ParseDuration(req.TTL); err != nil || ttl <= 0 {
			WriteError(w, http.StatusBadRequest, "ttl: want a positive duration such as 30d or 12h")
			return
		}
	}
	if err := events.ValidateTenant(req.Tenant); err != nil {
		WriteError(w, http.StatusBadRequest, "tenant: "+err.Error())
		return
	}
	reason, ok := reasonParam(w, req.Reason)
	if !ok {
		return
	}
	actor := Actor(r)
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	outs, err := a.Store.Apply(r.Context(), []suppress.Change{{
		EventID: "manual:" + hex.EncodeToString(id), ESP: "manual", Tenant: req.Tenant, Address: addr,
		// Rule names who decided: the token, as the policy's rule names it for an event.
		Action: suppress.ActionSuppress, Reason: reason, Class: "manual", Rule: "api:" + actor, SuppressTTL: ttl,
	}})
	if err == nil && outs[0].Err != nil {
		err = outs[0].Err
	}
	if err != nil {
		a.unavailable(w, err)
		return
	}
	rec, err := a.Store.Suppression(r.Context(), req.Tenant, addr)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	if rec != nil {
		// The record holds the address in its Redis form ("h:…" with
		// REBOUND_ADDRESS_HASH_KEY): answer with the address the caller sent, normalised.
		rec.Address = addr
	}
	a.audit(r, suppress.AuditEntry{Action: suppress.AuditSuppressionAdd, Tenant: req.Tenant, Target: addr, Reason: reason}, true)
	WriteJSON(w, http.StatusCreated, rec)
}

// maxReason bounds a reason: it is stored with the record and in the audit log.
const maxReason = 500

// The ways a change's reason can be refused (CheckReason).
var (
	ErrReasonRequired = errors.New("a reason is required: say why (it is kept in the audit log)")
	ErrReasonTooLong  = errors.New("a reason is at most " + strconv.Itoa(maxReason) + " bytes on one line")
)

// CheckReason trims a change's reason and checks it: at most maxReason bytes on one
// line and, when required, not empty. The API and the console both check with it.
func CheckReason(raw string, required bool) (string, error) {
	reason := strings.TrimSpace(raw)
	switch {
	case reason == "" && required:
		return "", ErrReasonRequired
	case len(reason) > maxReason || strings.ContainsAny(reason, "\r\n"):
		return "", ErrReasonTooLong
	}
	return reason, nil
}

// reasonParam checks a change's required reason and answers 400 when it is refused.
func reasonParam(w http.ResponseWriter, raw string) (string, bool) {
	reason, err := CheckReason(raw, true)
	switch {
	case errors.Is(err, ErrReasonRequired):
		WriteErrorCode(w, http.StatusBadRequest, "reason_required", "reason: required; say why (it is kept in the audit log)")
		return "", false
	case err != nil:
		WriteError(w, http.StatusBadRequest, "reason: at most "+strconv.Itoa(maxReason)+" bytes on one line")
		return "", false
	}
	return reason, true
}

// optionalReason reads ?reason= where a reason is welcome but not required.
func optionalReason(w http.ResponseWriter, r *http.Request) (string, bool) {
	if raw := r.URL.Query().Get("reason"); strings.TrimSpace(raw) != "" {
		return reasonParam(w, raw)
	}
	return "", true
}

// audit records a change made through the API under the token's name.
func (a *API) audit(r *http.Request, e suppress.AuditEntry, targetIsAddress bool) {
	e.Actor = Actor(r)
	RecordChange(r.Context(), a.Log, a.Store, "api change", e, targetIsAddress)
}

// Lift removes a suppression on behalf of actor and records the change; nil when the
// address was not suppressed in that namespace. DELETE /v1/suppressions/{address} and
// the console's lift both go through it; via ("api", "console") starts the log line.
func Lift(ctx context.Context, log *zap.Logger, store *suppress.Store, via, actor, tenant, addr, reason string) (*suppress.Removal, error) {
	rem, err := store.Remove(ctx, tenant, addr, actor, reason)
	if err != nil || rem == nil {
		return rem, err
	}
	RecordChange(ctx, log, store, via+" change", suppress.AuditEntry{Action: suppress.AuditSuppressionRemove, Actor: actor, Tenant: tenant, Target: addr, Reason: reason}, true)
	return rem, nil
}

// RecordChange logs a change at info with its actor (never a clear-text address: a
// target that is an address stays out of the line) and appends it to the change log
// GET /v1/audit lists. The change is already made, so a failure to record it is
// logged, not answered. The API and the console both record through it.
//
// The reason is free text, and people write "request from ana@example.com": addresses
// in it are redacted before it is logged or kept (an erasure's reason would otherwise
// keep the very address it erased).
func RecordChange(ctx context.Context, log *zap.Logger, store *suppress.Store, msg string, e suppress.AuditEntry, targetIsAddress bool) {
	e.Reason = events.RedactAddresses(e.Reason)
	fields := []zap.Field{zap.String("action", e.Action), zap.String("actor", e.Actor), zap.String("tenant", e.Tenant), zap.String("reason", e.Reason)}
	if !targetIsAddress {
		fields = append(fields, zap.String("target", e.Target))
	}
	if e.Count > 0 {
		fields = append(fields, zap.Int("count", e.Count))
	}
	log.Info(msg, fields...)
	if err := store.Audit(ctx, e, targetIsAddress); err != nil {
		log.Error("change made but not audited", zap.String("action", e.Action), zap.String("actor", e.Actor), zap.Error(err))
	}
}

func (a *API) removeSuppression(w http.ResponseWriter, r *http.Request) {
	addr, ok := a.address(w, r)
	if !ok {
		return
	}
	// ?reason= is required ("note", its earlier name, is read too); who lifted it is the
	// token's name, not anything the caller says.
	q := r.URL.Query()
	raw := q.Get("reason")
	if raw == "" {
		raw = q.Get("note")
	}
	tenant, ok := tenantParam(w, r)
	if !ok {
		return
	}
	reason, ok := reasonParam(w, raw)
	if !ok {
		return
	}
	rem, err := Lift(r.Context(), a.Log, a.Store, "api", Actor(r), tenant, addr, reason)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	if rem == nil {
		WriteError(w, http.StatusNotFound, "not suppressed in this namespace (tenant="+strconv.Quote(tenant)+")")
		return
	}
	// The removal (and the audit log) keep the address in its Redis form ("h:…" with
	// REBOUND_ADDRESS_HASH_KEY); the answer names the address the caller sent, normalised.
	out := *rem
	out.Address = addr
	if out.Record != nil {
		recCopy := *out.Record
		recCopy.Address = addr
		out.Record = &recCopy
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *API) listRemovals(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r.URL.Query().Get("limit"), 100, 1, 1000)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "limit: "+err.Error())
		return
	}
	rems, err := a.Store.Removals(r.Context(), limit)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"removals": rems})
}

// listAudit answers the change log: every change made through the API, newest first.
func (a *API) listAudit(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r.URL.Query().Get("limit"), 100, 1, 1000)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "limit: "+err.Error())
		return
	}
	log, err := a.Store.AuditLog(r.Context(), limit)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"changes": log})
}

// CheckRequest is the body of POST /v1/suppressions/check.
type CheckRequest struct {
	Tenant    string   `json:"tenant"`
	Addresses []string `json:"addresses"`
}

// maxCheck bounds one bulk check.
const maxCheck = 1000

func (a *API) checkSuppressions(w http.ResponseWriter, r *http.Request) {
	var req CheckRequest
	if !decode(w, r, &req) {
		return
	}
	if len(req.Addresses) == 0 || len(req.Addresses) > maxCheck {
		WriteError(w, http.StatusBadRequest, "addresses: want 1 to "+strconv.Itoa(maxCheck))
		return
	}
	norm := make([]string, len(req.Addresses))
	for i, raw := range req.Addresses {
		n, err := events.NormalizeAddress(raw)
		if err != nil {
			WriteError(w, http.StatusBadRequest, "addresses["+strconv.Itoa(i)+"]: "+err.Error())
			return
		}
		norm[i] = n
	}
	if err := events.ValidateTenant(req.Tenant); err != nil {
		WriteError(w, http.StatusBadRequest, "tenant: "+err.Error())
		return
	}
	res, err := a.Store.CheckMany(r.Context(), req.Tenant, norm)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"results": res})
}

func (a *API) listHeld(w http.ResponseWriter, r *http.Request) {
	held, err := a.Guard.Held(r.Context())
	if err != nil {
		a.unavailable(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"held": held})
}

// releaseHeld applies or discards what the guard holds for a domain: every hold of it,
// or with ?tenant=T only that tenant's hold (T may be "" for the default tenant).
func (a *API) releaseHeld(apply bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		domain := strings.ToLower(r.PathValue("domain"))
		reason, ok := optionalReason(w, r)
		if !ok {
			return
		}
		q := r.URL.Query()
		oneTenant := q.Has("tenant")
		tenant := q.Get("tenant")
		if err := events.ValidateTenant(tenant); err != nil {
			WriteError(w, http.StatusBadRequest, "tenant: "+err.Error())
			return
		}
		var n int
		var err error
		if oneTenant {
			n, err = a.Guard.ReleaseTenant(r.Context(), domain, tenant, apply)
		} else {
			n, err = a.Guard.Release(r.Context(), domain, apply)
		}
		if errors.Is(err, guard.ErrNotHeld) {
			what := "no held suppressions for " + strconv.Quote(domain)
			if oneTenant {
				what += " of tenant " + strconv.Quote(tenant)
			}
			WriteError(w, http.StatusNotFound, what)
			return
		}
		if err != nil {
			a.unavailable(w, err)
			return
		}
		verb := "discarded"
		if apply {
			verb = "applied"
		}
		body := map[string]any{"domain": domain, verb: n}
		if oneTenant {
			body["tenant"] = tenant
		}
		action := suppress.AuditMassBounceDiscard
		if apply {
			action = suppress.AuditMassBounceApply
		}
		a.audit(r, suppress.AuditEntry{Action: action, Tenant: tenant, Target: domain, Reason: reason, Count: n}, false)
		WriteJSON(w, http.StatusOK, body)
	}
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		WriteError(w, http.StatusBadRequest, "body: "+err.Error())
		return false
	}
	return true
}

// unknownReplies lists the replies no rule recognised, most frequent first: what the
// catalog's rules (or REBOUND_CATALOG_RULES) should learn next.
func (a *API) unknownReplies(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r.URL.Query().Get("limit"), 100, 1, 1000)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "limit: "+err.Error())
		return
	}
	list, err := a.Store.UnknownReplies(r.Context(), limit)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"unknown_replies": list})
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
	tenant, ok := tenantParam(w, r)
	if !ok {
		return
	}
	rec, err := a.Store.Lookup(r.Context(), tenant, addr)
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

func (a *API) getRecipient(w http.ResponseWriter, r *http.Request) {
	addr, ok := a.address(w, r)
	if !ok {
		return
	}
	pol := a.Policy()
	tenant, ok := tenantParam(w, r)
	if !ok {
		return
	}
	st, err := a.Store.RecipientWindow(r.Context(), tenant, addr, pol.SoftWindow)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{
		"address":     addr,
		"suppression": st.Suppression,
		"soft_bounces": map[string]any{
			"count": st.SoftBounces, "threshold": pol.SoftThreshold, "window": pol.SoftWindow.String(), "since": st.SoftSince,
		},
		"history": st.History,
	})
}

func (a *API) listAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), 100, 1, 1000)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "limit: "+err.Error())
		return
	}
	state := q.Get("state")
	switch alert.State(state) {
	case "", alert.StateOpen, alert.StateNotified, alert.StateResolved, alert.StateReopened:
	default:
		WriteError(w, http.StatusBadRequest, "state: want open (every state but resolved), notified, resolved or reopened")
		return
	}
	tenant, ok := tenantParam(w, r)
	if !ok {
		return
	}
	incs, err := a.Alerts.List(r.Context(), alert.Filter{State: state, Class: q.Get("class"), Tenant: tenant, Limit: limit})
	if err != nil {
		a.unavailable(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"alerts": incs})
}

func (a *API) getAlert(w http.ResponseWriter, r *http.Request) {
	inc, err := a.Alerts.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, alert.ErrNotFound) {
		WriteError(w, http.StatusNotFound, "no incident "+strconv.Quote(r.PathValue("id")))
		return
	}
	if err != nil {
		a.unavailable(w, err)
		return
	}
	WriteJSON(w, http.StatusOK, inc)
}

// changeAlert acknowledges or resolves an incident. `by` (query) names who did it for
// the incident's record and the receivers' messages; it defaults to "api".
func (a *API) changeAlert(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		// The token's name is who did it (token names hold no '|' or line break).
		by := Actor(r)
		reason, ok := optionalReason(w, r)
		if !ok {
			return
		}
		var changed bool
		var err error
		if op == "ack" {
			changed, err = a.Alerts.Ack(r.Context(), id, by)
		} else {
			changed, err = a.Alerts.Resolve(r.Context(), id, by)
		}
		if errors.Is(err, alert.ErrNotFound) {
			WriteError(w, http.StatusNotFound, "no incident "+strconv.Quote(id))
			return
		}
		if err != nil {
			a.unavailable(w, err)
			return
		}
		inc, err := a.Alerts.Get(r.Context(), id)
		if err != nil {
			a.unavailable(w, err)
			return
		}
		if changed {
			action := suppress.AuditAlertAck
			if op == "resolve" {
				action = suppress.AuditAlertResolve
			}
			a.audit(r, suppress.AuditEntry{Action: action, Tenant: inc.Tenant, Target: id, Reason: reason}, false)
			if op == "resolve" && a.Metrics != nil {
				a.Metrics.IncidentsResolved.WithLabelValues(inc.Class, "manual").Inc()
			}
		}
		WriteJSON(w, http.StatusOK, map[string]any{"changed": changed, "alert": inc})
	}
}

func (a *API) getCatalogEntry(w http.ResponseWriter, r *http.Request) {
	e, ok := a.Catalog.Entry(r.PathValue("code"))
	if !ok {
		WriteError(w, http.StatusNotFound, "no catalog entry for "+strconv.Quote(r.PathValue("code")))
		return
	}
	WriteJSON(w, http.StatusOK, e)
}

// Bounds of one POST /v1/classify: each reply is classified on the request's goroutine,
// so the work a caller can ask for at once is capped (the body is capped at 1 MiB too).
const (
	maxClassify   = 1000
	maxReplyBytes = 16 << 10
)

// ClassifyRequest is the body of POST /v1/classify.
type ClassifyRequest struct {
	Reply   string   `json:"reply"`
	Replies []string `json:"replies"`
	// Sender is our sender address for the message, as an event carries it: a reply
	// about this address and no other is about our side (catalog.Hints.Sender).
	Sender string `json:"sender,omitempty"`
}

// Classified is one classified reply, as `worker classify` prints it.
type Classified struct {
	Reply string `json:"reply"`
	catalog.Classification
	Action policy.Action `json:"action"`
}

// Classify classifies a reply as a bounce under the policy (the CLI uses it too).
// sender is our sender address for the message ("" if unknown), as an event gives it.
func Classify(cat *catalog.Catalog, pol *policy.Policy, reply, sender string) Classified {
	cl := cat.Classify(reply, catalog.Hints{Sender: sender})
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
	if len(req.Replies) > maxClassify {
		WriteError(w, http.StatusBadRequest, "replies: at most "+strconv.Itoa(maxClassify)+" per request")
		return
	}
	for i, s := range req.Replies {
		if len(s) > maxReplyBytes {
			WriteError(w, http.StatusBadRequest, "replies["+strconv.Itoa(i)+"]: longer than "+strconv.Itoa(maxReplyBytes)+" bytes")
			return
		}
	}
	pol := a.Policy()
	out := make([]Classified, len(req.Replies))
	for i, s := range req.Replies {
		out[i] = Classify(a.Catalog, pol, s, req.Sender)
	}
	WriteJSON(w, http.StatusOK, map[string]any{"results": out})
}

// unavailable answers 503. During a Redis outage every request fails the same way, so
// the warning is logged when the error changes, and otherwise at most every 30 s with
// how often it repeated.
func (a *API) unavailable(w http.ResponseWriter, err error) {
	a.outage.Lock()
	now := time.Now()
	if err.Error() != a.outageErr || now.Sub(a.outageAt) >= 30*time.Second {
		a.Log.Warn("api: state unavailable", zap.Error(err), zap.Int("repeats_since_last_log", a.outageRepeats))
		a.outageErr, a.outageAt, a.outageRepeats = err.Error(), now, 0
	} else {
		a.outageRepeats++
	}
	a.outage.Unlock()
	WriteError(w, http.StatusServiceUnavailable, "state store unavailable")
}

// tenantParam reads ?tenant= and answers 400 for a name outside the tenant character
// set (events.ValidateTenant): such a name could address another tenant's keys.
func tenantParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	t := r.URL.Query().Get("tenant")
	if err := events.ValidateTenant(t); err != nil {
		WriteError(w, http.StatusBadRequest, "tenant: "+err.Error())
		return "", false
	}
	return t, true
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

// Probes serves /healthz and /readyz (both listeners) and /metrics (the admin listener:
// see MetricsHandler).
type Probes struct {
	// Checks run on /readyz; each names what it checks (nats, redis, streams).
	Checks  map[string]func(context.Context) error
	Metrics *metrics.Metrics
	// Log receives a failed check's detail: /readyz answers anyone who can reach the
	// port, so it says only "ok" or "unavailable" per check.
	Log *zap.Logger

	mu   sync.Mutex
	last map[string]string // the last failure logged per check, to log changes only
}

// Register adds /healthz and /readyz to mux.
func (p *Probes) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", p.ready)
}

// MetricsHandler serves m's registry on GET /metrics. It belongs on the admin listener:
// the metrics describe the traffic of every tenant.
func MetricsHandler(m *metrics.Metrics) http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

func (p *Probes) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, failed := map[string]string{}, []string{}
	for name, check := range p.Checks {
		err := check(ctx)
		p.logChange(name, err)
		if err != nil {
			status[name] = "unavailable"
			failed = append(failed, name)
			continue
		}
		status[name] = "ok"
	}
	code := http.StatusOK
	if len(failed) > 0 {
		code = http.StatusServiceUnavailable
		slices.Sort(failed)
		status["error"] = "not ready: " + strings.Join(failed, ", ")
	}
	WriteJSON(w, code, status)
}

// logChange logs a check's failure when it starts or its text changes, and its
// recovery, rather than on every probe.
func (p *Probes) logChange(name string, err error) {
	if p.Log == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = map[string]string{}
	}
	prev, had := p.last[name]
	switch {
	case err == nil && had:
		delete(p.last, name)
		p.Log.Info("readiness check passes again", zap.String("check", name))
	case err != nil && prev != err.Error():
		p.last[name] = err.Error()
		p.Log.Warn("readiness check failed", zap.String("check", name), zap.Error(err))
	}
}

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ErrorBody is every error answer: {"error": {"code": "...", "message": "..."}}. Code is
// stable and meant for programs; message is for people and may change.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError writes an error answer whose code follows from the HTTP status
// (ErrorCode); WriteErrorCode names a more precise one.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteErrorCode(w, status, ErrorCode(status), msg)
}

// WriteErrorCode writes {"error": {"code": code, "message": msg}}.
func WriteErrorCode(w http.ResponseWriter, status int, code, msg string) {
	WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: msg}})
}

// ErrorCode is the error code of an HTTP status when nothing more precise applies.
func ErrorCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusTooManyRequests:
		return "too_many_requests"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	if status >= 500 {
		return "internal"
	}
	return "error"
}
