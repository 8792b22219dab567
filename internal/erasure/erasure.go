// Package erasure erases one recipient from every store that holds something of it:
// the suppression state (records, soft-bounce windows, histories, listing indexes,
// audit logs), the mass-bounce guard's counts and held suppressions, and the
// sender-side incidents' counted event IDs and example replies. The API's
// DELETE /v1/recipients/{address} and `worker recipients erase` both call it.
package erasure

import (
	"context"
	"strings"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/suppress"
)

// Report is what an erasure removed and left.
type Report struct {
	suppress.Erasure
	GuardEntries    int `json:"guard_entries"`    // mass-bounce counts and held suppressions
	IncidentEntries int `json:"incident_entries"` // incidents' counted event IDs and examples
}

// Eraser holds the stores an erasure cleans. Guard and Alerts may be nil (not wired).
type Eraser struct {
	Store  *suppress.Store
	Guard  *guard.Guard
	Alerts *alert.Store
}

// Erase removes the normalised address from the global namespace and the tenant's.
// The guard goes first, so a held suppression cannot be applied after the rest is
// gone; marker follows the policy's erasure.marker.
func (e Eraser) Erase(ctx context.Context, tenant, addr string, marker bool) (Report, error) {
	var rep Report
	nss := []string{""}
	if tenant != "" {
		nss = append(nss, tenant)
	}
	if e.Guard != nil {
		domain := addr[strings.LastIndexByte(addr, '@')+1:]
		n, err := e.Guard.Forget(ctx, domain, e.Store.AddressKey(addr), nss, nss)
		rep.GuardEntries = n
		if err != nil {
			return rep, err
		}
	}
	er, err := e.Store.Erase(ctx, tenant, addr, marker)
	rep.Erasure = er
	if err != nil {
		return rep, err
	}
	if e.Alerts != nil {
		n, err := e.Alerts.ForgetRecipient(ctx, addr)
		rep.IncidentEntries = n
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}
