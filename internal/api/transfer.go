package api

import (
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/transfer"
)

// AuditSuppressionImport is the audit action of an import (Count: lines imported).
const AuditSuppressionImport = "suppression.import"

// exportSuppressions streams a tenant's suppressions as NDJSON (default) or CSV, a page
// at a time, so the answer never sits whole in memory. A failure after the first page
// can only cut the stream short: the client sees a truncated body (CSV: no final
// newline; NDJSON: a partial last line), and the error is logged.
func (a *API) exportSuppressions(w http.ResponseWriter, r *http.Request) {
	tenant, ok := tenantParam(w, r)
	if !ok {
		return
	}
	f, err := transfer.ParseFormat(r.URL.Query().Get("format"))
	if err != nil || f == transfer.FormatJSON {
		WriteError(w, http.StatusBadRequest, "format: want ndjson or csv")
		return
	}
	if f == transfer.FormatAuto {
		f = transfer.FormatNDJSON
	}
	// The first page decides between an error answer and a stream.
	if _, err := a.Store.ListPage(r.Context(), tenant, "", 1, suppress.ListFilter{}); err != nil {
		a.unavailable(w, err)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a long list outlives any fixed write timeout
	name := "suppressions.ndjson"
	w.Header().Set("Content-Type", "application/x-ndjson")
	if f == transfer.FormatCSV {
		name = "suppressions.csv"
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	}
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.WriteHeader(http.StatusOK)
	n, err := transfer.Export(r.Context(), a.Store, tenant, w, f, func() { _ = rc.Flush() })
	if err != nil {
		a.Log.Warn("export cut short", zap.String("tenant", tenant), zap.Int("written", n), zap.Error(err))
		return
	}
	a.Log.Info("suppressions exported", zap.String("tenant", tenant), zap.String("actor", Actor(r)), zap.Int("records", n))
}

// importSuppressions reads a list from the body as it arrives (any shape transfer
// recognises) and answers the summary: imported, skipped as duplicate, rejected with
// each line's reason. It is idempotent: sending the same body again after a failure
// imports the rest and counts what was done as duplicate.
func (a *API) importSuppressions(w http.ResponseWriter, r *http.Request) {
	tenant, ok := tenantParam(w, r)
	if !ok {
		return
	}
	f, err := transfer.ParseFormat(r.URL.Query().Get("format"))
	if err != nil {
		WriteError(w, http.StatusBadRequest, "format: want ndjson, csv or json (or none: recognised from the content)")
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{}) // a long list outlives any fixed read timeout
	_ = rc.SetWriteDeadline(time.Time{})
	opt := transfer.Options{
		Tenant:   tenant,
		Classify: func(reply string) catalog.Classification { return a.Catalog.Classify(reply, catalog.Hints{}) },
	}
	if a.Policy != nil {
		opt.Policy = a.Policy() // an import suppresses no more than the pipeline would
	}
	sum, err := transfer.Import(r.Context(), a.Store, transfer.NewReader(r.Body, f), opt)
	if sum.Imported > 0 {
		a.audit(r, suppress.AuditEntry{Action: AuditSuppressionImport, Tenant: tenant, Target: "tenant:" + tenant, Count: sum.Imported,
			Reason: "import: " + strconv.Itoa(sum.Imported) + " imported, " + strconv.Itoa(sum.Duplicate) + " duplicate, " + strconv.Itoa(sum.Rejected) + " rejected"}, false)
	}
	if err != nil {
		a.unavailable(w, err)
		return
	}
	if sum.Stopped != "" {
		WriteJSON(w, http.StatusUnprocessableEntity, map[string]any{
			"error":   ErrorDetail{Code: "unreadable_input", Message: "the input could not be read to its end: " + sum.Stopped},
			"summary": sum,
		})
		return
	}
	WriteJSON(w, http.StatusOK, sum)
}
