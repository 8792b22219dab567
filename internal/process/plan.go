package process

import (
	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
)

// plan is what a batch would change, worked out without any I/O: each event decoded,
// classified and decided by the live policy (and the shadow one), turned into the
// store's change and, for a sender-side event, an incident observation. The guard's
// verdicts are marked on it before it is applied (markHeld).
type plan struct {
	policy, shadow *policy.Policy
	items          []item              // one per decoded event, in batch order
	changes        []suppress.Change   // changes[i] is items[i]'s recipient change
	obs            []alert.Observation // incident observations; item.obs indexes them
	poison         []undecodable       // messages that are not canonical events
}

// item is one decoded event of a batch.
type item struct {
	msg int // its message's index in the batch
	res Result
	obs int // index of its incident observation, -1 when none
	// shadow is the shadow policy's decision (when one is configured); it is compared
	// with the live one once the live outcome (the soft count) is known.
	shadow *policy.Decision
	// applied: its change and observation were written; it is acknowledged once the
	// batch's statistics are added up.
	applied bool
}

type undecodable struct {
	msg int
	err error
}

// plan decodes, classifies and decides a batch of raw events. It reads nothing but its
// arguments, the catalog and the store's ID form.
func (p *Processor) plan(pol, shadow *policy.Policy, data [][]byte) plan {
	return p.planInto(&plan{}, pol, shadow, data)
}

// planInto is plan reusing buf's slices (emptied by reset) for the new plan.
func (p *Processor) planInto(buf *plan, pol, shadow *policy.Policy, data [][]byte) plan {
	pl := plan{policy: pol, shadow: shadow, items: buf.items[:0], changes: buf.changes[:0], obs: buf.obs[:0], poison: buf.poison[:0]}
	if cap(pl.items) < len(data) {
		pl.items = make([]item, 0, len(data))
		pl.changes = make([]suppress.Change, 0, len(data))
	}
	for i, raw := range data {
		ev, err := events.Decode(raw)
		if err != nil {
			pl.poison = append(pl.poison, undecodable{msg: i, err: err})
			continue
		}
		// From here on the ID is in its stored form: with addresses hashed, no part of
		// it names the recipient (SES and Resend IDs do).
		ev.ID = p.cfg.Store.EventID(ev.ID)
		reply := ev.Reply.String()
		cl := p.cfg.Catalog.Classify(reply, catalog.EventHints(&ev))
		d := pol.Decide(&ev, cl)
		pl.items = append(pl.items, item{msg: i, res: Result{Event: ev, Classification: cl, Decision: d}, obs: -1})
		it := &pl.items[len(pl.items)-1]
		if shadow != nil {
			sd := shadow.Decide(&it.res.Event, cl)
			it.shadow = &sd
		}
		if d.Action == policy.ActionAlert {
			it.obs = len(pl.obs)
			pl.obs = append(pl.obs, p.observation(&it.res.Event, reply, cl, pol))
		}
		pl.changes = append(pl.changes, change(&it.res.Event, reply, cl, d, pol))
	}
	return pl
}

// reset empties the plan for reuse, its slices' elements cleared so that nothing of the
// batch (events, replies, changes) stays reachable from the pool.
func (pl *plan) reset() {
	clear(pl.items)
	clear(pl.changes)
	clear(pl.obs)
	clear(pl.poison)
	*pl = plan{items: pl.items[:0], changes: pl.changes[:0], obs: pl.obs[:0], poison: pl.poison[:0]}
}

// guardEligible says which changes the guard may hold: never a complaint (the
// recipient's own wish, not a directory's answer), and never an event the ESP did not
// even try to deliver because the address is on its own suppression list: that is the
// ESP's memory of earlier bounces, not a receiving domain answering now, so a campaign
// to an old list must not look like the domain's outage (and page on-call for it).
func (pl *plan) guardEligible(i int) bool {
	ev := &pl.items[i].res.Event
	return ev.Type != events.TypeComplaint && !ev.ProviderSuppressed
}

// markHeld applies the guard's verdicts (one per change, or nil): a held suppression
// becomes a history-only change whose entry's action reads "held" — its class stays the
// event's own, Result.Held says it — and every held event counts into its domain's
// mass_bounce incident, which the first one opens. It returns the verdicts that started
// a hold, for the caller to announce.
func (pl *plan) markHeld(verdicts []guard.Verdict) []guard.Verdict {
	var started []guard.Verdict
	for i, v := range verdicts {
		if !v.Held {
			continue
		}
		c := &pl.changes[i]
		c.Action = suppress.ActionHeld
		it := &pl.items[i]
		it.res.Held = true
		ev := &it.res.Event
		it.obs = len(pl.obs)
		pl.obs = append(pl.obs, alert.Observation{
			EventID: ev.ID, Class: alert.ClassMassBounce, Severity: pl.policy.Incidents.Severity(alert.ClassMassBounce),
			ReceivingDomain: v.Domain, Recipient: ev.Recipient, Code: c.Code, Rule: "mass_bounce_guard", ESP: ev.ESP,
			Reply: events.RedactAddresses(c.Reply), Fix: guard.FixSteps(v.Domain),
		})
		if v.NewlyHeld {
			started = append(started, v)
		}
	}
	return started
}

// change turns a decision into the store's change for that event.
func change(ev *events.Event, reply string, cl catalog.Classification, d policy.Decision, pol *policy.Policy) suppress.Change {
	ns := ev.Tenant // the state namespace: "" when the policy makes this global
	if d.Global {
		ns = ""
	}
	c := suppress.Change{
		EventID: ev.ID, ESP: ev.ESP, Tenant: ns, EventTenant: ev.Tenant, Address: ev.Recipient,
		Reason: d.Reason, Class: string(cl.Class), Rule: cl.Rule, Code: cl.Code, Reply: reply,
		SuppressTTL: d.SuppressTTL, SoftWindow: pol.SoftWindow, SoftThreshold: pol.SoftThreshold, SoftTTL: pol.SoftSuppressionTTL,
	}
	switch d.Action {
	case policy.ActionSuppress:
		c.Action = suppress.ActionSuppress
	case policy.ActionSoft:
		c.Action = suppress.ActionSoft
	case policy.ActionReset:
		c.Action = suppress.ActionReset
	default:
		c.Action = suppress.ActionRecord
	}
	return c
}

// observation is what a sender-side event tells its incident.
func (p *Processor) observation(ev *events.Event, reply string, cl catalog.Classification, pol *policy.Policy) alert.Observation {
	return alert.Observation{
		EventID: ev.ID, Tenant: ev.Tenant, Class: string(cl.Class), Severity: pol.Incidents.Severity(string(cl.Class)),
		SendingDomain: ev.SendingDomain, SendingIP: ev.SendingIP, Recipient: ev.Recipient,
		// The incident is shown to on-call and sent to chat: no recipient address in it.
		Code: cl.Code, Rule: cl.Rule, ESP: ev.ESP, Reply: events.RedactAddresses(reply), Fix: p.cfg.Catalog.FixSteps(cl),
	}
}
