package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/reboundhq/rebound/internal/suppress"
)

// listSuppressions answers GET /v1/suppressions: one page of a tenant's
// suppressions in address order, filtered by class, reason and since, with the cursor
// of the next page. The cursor walk never lists a record twice nor misses one that
// exists for the whole walk, whatever is written meanwhile (see suppress.ListPage).
func (a *API) listSuppressions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("offset") {
		WriteError(w, http.StatusBadRequest, "offset: no longer accepted; follow next_cursor with ?cursor=")
		return
	}
	limit, err := intParam(q.Get("limit"), 100, 1, 1000)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "limit: "+err.Error())
		return
	}
	tenant, ok := tenantParam(w, r)
	if !ok {
		return
	}
	f := suppress.ListFilter{Class: q.Get("class"), Reason: q.Get("reason")}
	if s := q.Get("since"); s != "" {
		if f.Since, err = time.Parse(time.RFC3339, s); err != nil {
			WriteError(w, http.StatusBadRequest, "since: want an RFC 3339 time such as 2026-01-31T00:00:00Z")
			return
		}
	}
	page, err := a.Store.ListPage(r.Context(), tenant, q.Get("cursor"), limit, f)
	if errors.Is(err, suppress.ErrBadCursor) {
		WriteError(w, http.StatusBadRequest, "cursor: "+err.Error())
		return
	}
	if err != nil {
		a.unavailable(w, err)
		return
	}
	body := map[string]any{"suppressions": page.Records, "limit": limit}
	if page.Next != "" {
		body["next_cursor"] = page.Next
	}
	WriteJSON(w, http.StatusOK, body)
}
