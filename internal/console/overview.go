package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/api"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/stats"
	"github.com/reboundhq/rebound/internal/suppress"
)

// The overview's period and bounds.
const (
	overviewHours   = 7 * 24
	overviewDomains = 10
	overviewOpen    = 20
	chartSeriesMax  = 5 // named series per chart; the rest is "other"
)

type overviewPage struct {
	Total             int64
	ByAction, ByClass chart
	Domains           []stats.DomainCount
	Open              []alert.Incident
	Held              []guard.HeldDomain
	Changes           []suppress.AuditEntry // the newest changes made through the API and the console
}

// overviewChanges is how many of the newest audited changes the overview lists.
const overviewChanges = 15

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	week, err := stats.Read(ctx, c.cfg.Store, c.cfg.Now(), overviewHours, overviewDomains)
	if err != nil {
		c.unavailable(w, s, err)
		return
	}
	p := overviewPage{Domains: week.Domains}
	for _, h := range week.Hours {
		p.Total += h.Total
	}
	p.ByAction = buildChart("by-action", "Events per hour by the policy's action", week.Hours, func(h stats.Hour) map[string]int64 { return h.ByAction })
	p.ByClass = buildChart("by-class", "Events per hour by class", week.Hours, func(h stats.Hour) map[string]int64 { return h.ByClass })
	if p.Open, err = c.cfg.Alerts.List(ctx, alert.Filter{State: "open", Limit: overviewOpen}); err != nil {
		c.unavailable(w, s, err)
		return
	}
	if c.cfg.Guard != nil {
		if p.Held, err = c.cfg.Guard.Held(ctx); err != nil {
			c.unavailable(w, s, err)
			return
		}
	}
	if p.Changes, err = c.cfg.Store.AuditLog(ctx, overviewChanges); err != nil {
		c.unavailable(w, s, err)
		return
	}
	c.render(w, http.StatusOK, "overview", pageData{Title: "Overview", Nav: "overview", Session: s, Flash: doneMessages[r.URL.Query().Get("done")], Page: p})
}

// releaseHeld applies or discards a mass-bounce hold, as POST /v1/mass-bounce/{domain}/…
// does: the whole domain's, or with a tenant field (scope tenant) that tenant's.
func (c *Console) releaseHeld(apply bool) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		domain := strings.ToLower(r.PathValue("domain"))
		reason, err := api.CheckReason(r.PostFormValue("reason"), false)
		if err != nil {
			c.fail(w, s, http.StatusBadRequest, "The reason must fit on one line of at most 500 bytes.")
			return
		}
		oneTenant := r.PostFormValue("scope") == guard.ScopeTenant
		tenant := r.PostFormValue("tenant")
		if err := events.ValidateTenant(tenant); err != nil {
			c.fail(w, s, http.StatusBadRequest, "Tenant: "+err.Error())
			return
		}
		var n int
		if oneTenant {
			n, err = c.cfg.Guard.ReleaseTenant(r.Context(), domain, tenant, apply)
		} else {
			n, err = c.cfg.Guard.Release(r.Context(), domain, apply)
		}
		if errors.Is(err, guard.ErrNotHeld) {
			c.fail(w, s, http.StatusNotFound, "Nothing is held for "+domain+" (any more).")
			return
		}
		if err != nil {
			c.unavailable(w, s, err)
			return
		}
		action, done := suppress.AuditMassBounceDiscard, "discarded"
		if apply {
			action, done = suppress.AuditMassBounceApply, "applied"
		}
		t := ""
		if oneTenant {
			t = tenant
		}
		c.audit(r, suppress.AuditEntry{Action: action, Actor: s.Actor, Tenant: t, Target: domain, Reason: reason, Count: n}, false)
		http.Redirect(w, r, "/ui/overview?done="+done, http.StatusSeeOther)
	}
}

// The chart: an SVG drawn here, bars stacked by series. Each series has a fill pattern
// as well as a colour (patternFor), the legend and a table under the chart carry the
// numbers, and each day is one focusable group whose label reads its counts.

type chart struct {
	ID, Title     string
	Width, Height float64
	PlotLeft      float64
	PlotTop       float64
	PlotH         float64
	Max           int64
	Series        []chartSeries
	Days          []chartDay
	Ticks         []chartTick
}

type chartSeries struct {
	Name    string
	Pattern string
	Total   int64
}

type chartDay struct {
	Label  string // "Mon 30"
	Date   string // "2026-11-30"
	X, W   float64
	Aria   string
	Bars   []chartBar
	Counts []int64 // per series, for the table
	Total  int64
}

type chartBar struct {
	X     float64
	Title string
	Segs  []chartSeg
}

type chartSeg struct {
	Y, H    float64
	Pattern string
}

type chartTick struct {
	Y     float64
	Label string
}

const (
	barW   = 5.0
	barGap = 1.0
)

// patterns are the fills the layout's <defs> define, in the order series get them.
var patterns = []string{"pat-solid", "pat-stripes", "pat-dots", "pat-hlines", "pat-cross", "pat-vlines"}

func buildChart(id, title string, hours []stats.Hour, get func(stats.Hour) map[string]int64) chart {
	ch := chart{ID: id, Title: title, PlotLeft: 44, PlotTop: 8, PlotH: 180}
	ch.Width = ch.PlotLeft + float64(len(hours))*(barW+barGap) + 4
	ch.Height = ch.PlotTop + ch.PlotH + 24

	totals := map[string]int64{}
	for _, h := range hours {
		for k, n := range get(h) {
			totals[k] += n
		}
		ch.Max = max(ch.Max, sum(get(h)))
	}
	names := make([]string, 0, len(totals))
	for k := range totals {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(totals[b], totals[a]), strings.Compare(a, b)) })
	index := map[string]int{}
	for i, k := range names {
		if i < chartSeriesMax {
			index[k] = i
			ch.Series = append(ch.Series, chartSeries{Name: k, Pattern: patterns[i], Total: totals[k]})
			continue
		}
		if i == chartSeriesMax {
			ch.Series = append(ch.Series, chartSeries{Name: "other", Pattern: patterns[chartSeriesMax]})
		}
		index[k] = chartSeriesMax
		ch.Series[chartSeriesMax].Total += totals[k]
	}
	scale := 0.0
	if ch.Max > 0 {
		scale = ch.PlotH / float64(ch.Max)
	}
	for _, f := range []float64{0, 0.5, 1} {
		v := int64(float64(ch.Max) * f)
		ch.Ticks = append(ch.Ticks, chartTick{Y: ch.PlotTop + ch.PlotH - float64(v)*scale, Label: strconv.FormatInt(v, 10)})
	}

	var day *chartDay
	for i, h := range hours {
		x := ch.PlotLeft + float64(i)*(barW+barGap)
		date := h.Start.UTC().Format("2006-01-02")
		if day == nil || day.Date != date {
			ch.Days = append(ch.Days, chartDay{Date: date, Label: h.Start.UTC().Format("Mon 02"), X: x, Counts: make([]int64, len(ch.Series))})
			day = &ch.Days[len(ch.Days)-1]
		}
		day.W = x + barW - day.X
		counts := make([]int64, len(ch.Series))
		for k, n := range get(h) {
			counts[index[k]] += n
		}
		bar := chartBar{X: x}
		y := ch.PlotTop + ch.PlotH
		var parts []string
		for si, n := range counts {
			day.Counts[si] += n
			day.Total += n
			if n == 0 {
				continue
			}
			hgt := float64(n) * scale
			y -= hgt
			bar.Segs = append(bar.Segs, chartSeg{Y: y, H: hgt, Pattern: ch.Series[si].Pattern})
			parts = append(parts, fmt.Sprintf("%s %d", ch.Series[si].Name, n))
		}
		bar.Title = h.Start.UTC().Format("2006-01-02 15:00") + " UTC: " + strconv.FormatInt(sum(get(h)), 10) + " events"
		if len(parts) > 0 {
			bar.Title += " (" + strings.Join(parts, ", ") + ")"
		}
		day.Bars = append(day.Bars, bar)
	}
	for i := range ch.Days {
		d := &ch.Days[i]
		var parts []string
		for si, n := range d.Counts {
			if n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", ch.Series[si].Name, n))
			}
		}
		if d.W < 30 { // a day of a few hours at the edge: its label would run into the next
			d.Label = ""
		}
		d.Aria = d.Date + ": " + strconv.FormatInt(d.Total, 10) + " events"
		if len(parts) > 0 {
			d.Aria += ": " + strings.Join(parts, ", ")
		}
	}
	return ch
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
