package policy

import (
	"fmt"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
)

// Action is the decision's effect. The names are part of the public surface: the
// `classify` CLI prints them and metrics carry them as a label.
type Action string

// The actions.
const (
	ActionSuppress Action = "suppress" // the recipient cannot receive mail
	ActionSoft     Action = "soft"     // count; suppress after Threshold in Window
	ActionAlert    Action = "alert"    // a sender-side incident; the recipient is untouched
	ActionNone     Action = "none"     // record only
	ActionReset    Action = "reset"    // delivered: clear soft-bounce state
)

// Policy holds the tunables of the default decision table.
type Policy struct {
	SoftThreshold      int           // soft bounces that make a suppression
	SoftWindow         time.Duration // … within this sliding window
	SoftSuppressionTTL time.Duration // how long that suppression lasts
	HardSuppressionTTL time.Duration // 0 = permanent
	ComplaintTTL       time.Duration // 0 = permanent
}

// Default is the built-in policy: 3 soft bounces in 7 days suppress for 30 days; hard
// bounces and complaints suppress permanently.
func Default() *Policy {
	return &Policy{SoftThreshold: 3, SoftWindow: 7 * 24 * time.Hour, SoftSuppressionTTL: 30 * 24 * time.Hour}
}

// Validate reports a policy that could not work.
func (p *Policy) Validate() error {
	switch {
	case p.SoftThreshold < 1:
		return fmt.Errorf("soft_threshold: %d (want at least 1)", p.SoftThreshold)
	case p.SoftWindow <= 0:
		return fmt.Errorf("soft_window: %s (want a positive duration)", p.SoftWindow)
	case p.SoftSuppressionTTL <= 0:
		return fmt.Errorf("soft_suppression_ttl: %s (want a positive duration)", p.SoftSuppressionTTL)
	}
	return nil
}

// Decision is what the policy decided for one event.
type Decision struct {
	Action      Action
	Reason      string        // the suppression's reason when Action is suppress
	SuppressTTL time.Duration // 0 = permanent
}

// Decide maps an event and its classification to a decision.
func (p *Policy) Decide(e *events.Event, c catalog.Classification) Decision {
	switch e.Type {
	case events.TypeDelivered:
		return Decision{Action: ActionReset}
	case events.TypeComplaint:
		return Decision{Action: ActionSuppress, Reason: "complaint", SuppressTTL: p.ComplaintTTL}
	}
	switch c.Scope {
	case catalog.ScopeSender:
		return Decision{Action: ActionAlert}
	case catalog.ScopeRecipient:
		if c.Class == catalog.ClassUnknown {
			return Decision{Action: ActionNone}
		}
		if e.Type == events.TypeDeferral {
			// The ESP is still retrying: not a bounce yet, whatever the reply says.
			return Decision{Action: ActionNone}
		}
		if c.Permanent {
			return Decision{Action: ActionSuppress, Reason: string(c.Class), SuppressTTL: p.HardSuppressionTTL}
		}
		if e.ProviderSuppressed {
			// Not a fresh observation: the ESP did not even try.
			return Decision{Action: ActionNone}
		}
		return Decision{Action: ActionSoft}
	}
	return Decision{Action: ActionNone}
}
