package guard

import (
	"context"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
)

// Scopes of a hold.
const (
	ScopeDomain = "domain" // the domain-wide hold: every tenant's suppressions for the domain
	ScopeTenant = "tenant" // one tenant's hold of the domain
)

// Verdict is the guard's answer for one change of a batch.
type Verdict struct {
	Domain string // the change's receiving domain; "" when the guard did not look at it
	Tenant string // the tenant it counted for (the event's tenant)
	// Held: the change must not be written as a suppression; it is pending (Hold stored
	// it) and the recipient's history records it as held.
	Held bool
	// Scope says which hold holds it: ScopeDomain or ScopeTenant ("" when not held).
	Scope string
	// NewlyHeld: this batch started the hold. Set on the first change of the batch that
	// hold holds only, so the caller announces each new hold once.
	NewlyHeld bool
	// Count is the distinct recipients in the window of the hold that holds the change
	// (the tenant's for a tenant hold, the domain's otherwise), after the batch: the
	// number `mass-bounce list` shows.
	Count int
}

// Guarded reports whether the guard looks at a change at all: only new suppressions
// can be held.
func Guarded(c *suppress.Change) bool { return c.Action == suppress.ActionSuppress }

// TenantOf is the tenant a change counts for: the event's tenant, whatever the
// namespace it suppresses in.
func TenantOf(c *suppress.Change) string {
	if c.EventTenant != "" {
		return c.EventTenant
	}
	return c.Tenant
}

// Group collects the changes the guard looks at by receiving domain, in batch order,
// as Hold takes them: those that are Guarded and, when eligible is set, eligible(i).
// Addresses must still be clear (not protected): the domain is read from them.
func Group(changes []suppress.Change, eligible func(i int) bool) map[string][]suppress.Change {
	var by map[string][]suppress.Change
	for i := range changes {
		if !looks(changes, eligible, i) {
			continue
		}
		if by == nil {
			by = map[string][]suppress.Change{}
		}
		d := events.Domain(changes[i].Address)
		by[d] = append(by[d], changes[i])
	}
	return by
}

// Decide maps Hold's per-domain results back onto the batch: one verdict per change,
// in order. It is pure; Check is Group, Hold and Decide in one call.
func Decide(changes []suppress.Change, eligible func(i int) bool, res map[string]Result) []Verdict {
	out := make([]Verdict, len(changes))
	announced := map[string]bool{}
	next := map[string]int{} // the domain's next change in its Result
	for i := range changes {
		if !looks(changes, eligible, i) {
			continue
		}
		d := events.Domain(changes[i].Address)
		t := TenantOf(&changes[i])
		r := res[d]
		k := next[d]
		next[d]++
		v := Verdict{Domain: d, Tenant: t, Count: r.Count}
		by := NotHeld
		if k < len(r.Changes) {
			by = r.Changes[k]
		}
		switch by {
		case HeldByDomain:
			v.Held, v.Scope = true, ScopeDomain
			if r.NewlyHeld && !announced[d] {
				announced[d] = true
				v.NewlyHeld = true
			}
		case HeldByTenant:
			tr := r.Tenants[t]
			v.Held, v.Scope, v.Count = true, ScopeTenant, tr.Count
			if key := d + "|" + t; tr.NewlyHeld && !announced[key] {
				announced[key] = true
				v.NewlyHeld = true
			}
		}
		out[i] = v
	}
	return out
}

func looks(changes []suppress.Change, eligible func(int) bool, i int) bool {
	return Guarded(&changes[i]) && (eligible == nil || eligible(i))
}

// Check runs the guard over a batch's changes under the policy's mass_bounce settings
// and returns one verdict per change — or nil when the guard is disabled or no change
// is one it looks at. eligible, if set, excludes changes beyond what Guarded does (the
// process role excludes complaints: a complaint is the recipient's own wish, not a
// directory's answer). The changes are not modified: marking the held ones is the
// caller's part.
func (g *Guard) Check(ctx context.Context, mb policy.MassBounce, changes []suppress.Change, eligible func(i int) bool) ([]Verdict, error) {
	if !mb.Enabled {
		return nil, nil
	}
	by := Group(changes, eligible)
	if len(by) == 0 {
		return nil, nil
	}
	res, err := g.Hold(ctx, mb, by)
	if err != nil {
		return nil, err
	}
	return Decide(changes, eligible, res), nil
}

// FixSteps are the fix steps of the domain's mass_bounce incident.
func FixSteps(domain string) []string {
	return []string{
		"Check whether " + domain + " has an outage (its status page, other senders, a test to a known-good address there): a directory outage answers 'user unknown' for everyone.",
		"See what is held: `worker mass-bounce list` or GET /v1/mass-bounce. A hold of one tenant only (scope tenant) is most often that tenant's bad list import; a domain-wide hold, the provider.",
		"If the bounces are real (a bad list import, a dead domain), apply the held suppressions: POST /v1/mass-bounce/" + domain + "/apply or `worker mass-bounce apply " + domain + "` (add ?tenant=T or --tenant T for one tenant's hold only).",
		"If the domain was having trouble, discard them: POST /v1/mass-bounce/" + domain + "/discard or `worker mass-bounce discard " + domain + "`.",
	}
}
