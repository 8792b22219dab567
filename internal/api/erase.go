package api

import (
	"net/http"

	"github.com/reboundhq/rebound/internal/erasure"
	"github.com/reboundhq/rebound/internal/suppress"
)

// eraseRecipient answers DELETE /v1/recipients/{address}?tenant=&reason=: the
// recipient's history and clear-text data go from the global namespace and the
// tenant's (see erasure.Eraser); the policy's erasure.marker decides whether a hashed
// do-not-mail marker stays. It answers what was removed.
func (a *API) eraseRecipient(w http.ResponseWriter, r *http.Request) {
	addr, ok := a.address(w, r)
	if !ok {
		return
	}
	tenant, ok := tenantParam(w, r)
	if !ok {
		return
	}
	reason, ok := optionalReason(w, r)
	if !ok {
		return
	}
	marker := a.Policy().ErasureMarker
	rep, err := erasure.Eraser{Store: a.Store, Guard: a.Guard, Alerts: a.Alerts}.Erase(r.Context(), tenant, addr, marker)
	if err != nil {
		a.unavailable(w, err)
		return
	}
	target := "(erased)"
	if rep.Marker {
		target = a.Store.AddressKey(addr) // a keyed hash: the marker holds it anyway
	}
	a.audit(r, suppress.AuditEntry{Action: suppress.AuditRecipientErase, Tenant: tenant, Target: target, Reason: reason}, false)
	WriteJSON(w, http.StatusOK, rep)
}
