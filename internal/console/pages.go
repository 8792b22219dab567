package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/api"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/suppress"
)

// done messages follow a change's redirect (?done=…): fixed texts, never request data.
var doneMessages = map[string]string{
	"ack":        "Incident acknowledged.",
	"resolve":    "Incident resolved.",
	"unchanged":  "Nothing changed: the incident was already in that state.",
	"lift":       "Suppression lifted; the removal is in the audit log under your token's name.",
	"not-lifted": "Nothing to lift: the recipient is not suppressed in that namespace.",
	"applied":    "The held suppressions were applied.",
	"discarded":  "The held suppressions were discarded.",
}

// Bounds of what the incidents page lists.
const (
	maxOpenShown     = 50
	maxResolvedShown = 10
)

type incidentView struct {
	alert.Incident
	Entry *catalog.Entry // the catalog's entry for its code, when there is one
}

type incidentsPage struct {
	Open, Resolved []incidentView
}

func (c *Console) incidents(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var p incidentsPage
	for _, q := range []struct {
		state string
		limit int
		into  *[]incidentView
	}{{"open", maxOpenShown, &p.Open}, {string(alert.StateResolved), maxResolvedShown, &p.Resolved}} {
		// Detail: each receiver's delivery too, read in the list's own round trips.
		list, err := c.cfg.Alerts.List(ctx, alert.Filter{State: q.state, Limit: q.limit, Detail: true})
		if err != nil {
			c.unavailable(w, s, err)
			return
		}
		for _, inc := range list {
			v := incidentView{Incident: inc}
			if e, ok := c.cfg.Catalog.Entry(inc.Code); ok && inc.Code != "" {
				v.Entry = &e
			}
			*q.into = append(*q.into, v)
		}
	}
	c.render(w, http.StatusOK, "incidents", pageData{Title: "Incidents", Nav: "incidents", Session: s, Flash: doneMessages[r.URL.Query().Get("done")], Page: p})
}

// changeIncident acknowledges or resolves an incident, as POST /v1/alerts/{id}/… does.
func (c *Console) changeIncident(op string) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		id := r.PathValue("id")
		var changed bool
		var err error
		if op == "ack" {
			changed, err = c.cfg.Alerts.Ack(r.Context(), id, s.Actor)
		} else {
			changed, err = c.cfg.Alerts.Resolve(r.Context(), id, s.Actor)
		}
		if errors.Is(err, alert.ErrNotFound) {
			c.fail(w, s, http.StatusNotFound, "No such incident (it may have expired).")
			return
		}
		if err != nil {
			c.unavailable(w, s, err)
			return
		}
		done := "unchanged"
		if changed {
			done = op
			action := suppress.AuditAlertAck
			if op == "resolve" {
				action = suppress.AuditAlertResolve
			}
			tenant, class := "", ""
			if inc, err := c.cfg.Alerts.Get(r.Context(), id); err == nil {
				tenant, class = inc.Tenant, inc.Class
			}
			c.audit(r, suppress.AuditEntry{Action: action, Actor: s.Actor, Tenant: tenant, Target: id}, false)
			if op == "resolve" && c.cfg.Metrics != nil && class != "" {
				c.cfg.Metrics.IncidentsResolved.WithLabelValues(class, "manual").Inc()
			}
		}
		http.Redirect(w, r, "/ui/incidents?done="+done, http.StatusSeeOther)
	}
}

type recipientPage struct {
	Query, Tenant string
	Searched      bool
	Address       string // normalised
	State         suppress.RecipientState
	SoftThreshold int
	SoftWindow    string
}

func (c *Console) recipient(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	p := recipientPage{Query: q.Get("address"), Tenant: q.Get("tenant")}
	d := pageData{Title: "Recipient", Nav: "recipient", Session: s, Flash: doneMessages[q.Get("done")], Page: &p}
	if strings.TrimSpace(p.Query) == "" {
		c.render(w, http.StatusOK, "recipient", d)
		return
	}
	addr, err := events.NormalizeAddress(p.Query)
	if err != nil {
		d.Error = "Address: " + err.Error()
		c.render(w, http.StatusBadRequest, "recipient", d)
		return
	}
	if err := events.ValidateTenant(p.Tenant); err != nil {
		d.Error = "Tenant: " + err.Error()
		c.render(w, http.StatusBadRequest, "recipient", d)
		return
	}
	pol := c.cfg.Policy()
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st, err := c.cfg.Store.RecipientWindow(ctx, p.Tenant, addr, pol.SoftWindow)
	if err != nil {
		c.unavailable(w, s, err)
		return
	}
	p.Searched, p.Address, p.State = true, addr, st
	p.SoftThreshold, p.SoftWindow = pol.SoftThreshold, days(pol.SoftWindow)
	c.render(w, http.StatusOK, "recipient", d)
}

// lift removes a suppression with the same store call as DELETE /v1/suppressions/…,
// and the same audit entry, under the session's token name.
func (c *Console) lift(w http.ResponseWriter, r *http.Request, s *session) {
	addr, err := events.NormalizeAddress(r.PostFormValue("address"))
	if err != nil {
		c.fail(w, s, http.StatusBadRequest, "Address: "+err.Error())
		return
	}
	tenant := r.PostFormValue("tenant")
	if err := events.ValidateTenant(tenant); err != nil {
		c.fail(w, s, http.StatusBadRequest, "Tenant: "+err.Error())
		return
	}
	reason, err := api.CheckReason(r.PostFormValue("reason"), true)
	switch {
	case errors.Is(err, api.ErrReasonRequired):
		c.fail(w, s, http.StatusBadRequest, "A reason is required: say why the suppression is lifted (it is kept in the audit log).")
		return
	case err != nil:
		c.fail(w, s, http.StatusBadRequest, "The reason must fit on one line of at most 500 bytes.")
		return
	}
	rem, err := api.Lift(r.Context(), c.cfg.Log, c.cfg.Store, "console", s.Actor, tenant, addr, reason)
	if err != nil {
		c.unavailable(w, s, err)
		return
	}
	done := "not-lifted"
	if rem != nil {
		done = "lift"
	}
	// The search the page came from: its own tenant field, which may differ from the
	// namespace of the lifted record (a global one).
	back := url.Values{"address": {addr}, "tenant": {r.PostFormValue("search_tenant")}, "done": {done}}
	http.Redirect(w, r, "/ui/recipient?"+back.Encode(), http.StatusSeeOther)
}

type catalogPage struct {
	Query      string
	Searched   bool
	Classified api.Classified
	Entry      *catalog.Entry
	ClassInfo  string
}

var codeLike = regexp.MustCompile(`^[245][0-9][0-9]$|^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)

// maxReply bounds a pasted reply, as POST /v1/classify does.
const maxReply = 16 << 10

func (c *Console) catalogPage(w http.ResponseWriter, r *http.Request, s *session) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	p := catalogPage{Query: q}
	d := pageData{Title: "Catalog", Nav: "catalog", Session: s, Page: &p}
	if q == "" {
		c.render(w, http.StatusOK, "catalog", d)
		return
	}
	if len(q) > maxReply {
		d.Error = "The reply is longer than 16 KiB."
		c.render(w, http.StatusBadRequest, "catalog", d)
		return
	}
	p.Searched = true
	p.Classified = api.Classify(c.cfg.Catalog, c.cfg.Policy(), q, "")
	code := p.Classified.Code
	if codeLike.MatchString(q) {
		code = q
	}
	if e, ok := c.cfg.Catalog.Entry(code); ok && code != "" {
		p.Entry = &e
	}
	p.ClassInfo = c.cfg.Catalog.ClassDescription(p.Classified.Class)
	c.render(w, http.StatusOK, "catalog", d)
}

// audit records a change made from the console, as the API records its own.
func (c *Console) audit(r *http.Request, e suppress.AuditEntry, targetIsAddress bool) {
	api.RecordChange(r.Context(), c.cfg.Log, c.cfg.Store, "console change", e, targetIsAddress)
}

func (c *Console) unavailable(w http.ResponseWriter, s *session, err error) {
	c.cfg.Log.Warn("console: state unavailable", zap.Error(err))
	c.fail(w, s, http.StatusServiceUnavailable, "The state store (Redis) is unavailable; try again shortly.")
}

// days writes a whole number of days as "7d", anything else as Go does ("36h0m0s").
func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
