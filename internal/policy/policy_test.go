package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
)

// Classifications built by hand, as the catalog would return them.
var (
	recipientUnknown = catalog.Classification{Class: catalog.ClassRecipientUnknown, Scope: catalog.ScopeRecipient, Permanent: true, Code: "5.1.1", Rule: "enhanced.5.1.1"}
	mailboxFull      = catalog.Classification{Class: catalog.ClassMailboxFull, Scope: catalog.ScopeRecipient, Permanent: false, Code: "4.2.2", Rule: "enhanced.4.2.2"}
	authRequired     = catalog.Classification{Class: catalog.ClassAuthRequired, Scope: catalog.ScopeSender, Permanent: true, Code: "530", Rule: "basic.530"}
	senderAuthPolicy = catalog.Classification{Class: catalog.ClassSenderAuthPolicy, Scope: catalog.ScopeSender, Permanent: true, Code: "5.7.26", Rule: "enhanced.5.7.26"}
	reputationBlock  = catalog.Classification{Class: catalog.ClassReputationBlock, Scope: catalog.ScopeSender, Permanent: true, Code: "5.7.1", Rule: "generic.blocklist"}
	rateLimited      = catalog.Classification{Class: catalog.ClassRateLimited, Scope: catalog.ScopeSender, Permanent: false, Code: "4.7.0", Rule: "generic.throttle"}
	tooLarge         = catalog.Classification{Class: catalog.ClassMessageTooLarge, Scope: catalog.ScopeMessage, Permanent: true, Code: "5.3.4", Rule: "enhanced.5.3.4"}
	networkError     = catalog.Classification{Class: catalog.ClassNetworkError, Scope: catalog.ScopeInfrastructure, Permanent: false, Code: "4.4.1", Rule: "enhanced.4.4.1"}
	expired          = catalog.Classification{Class: catalog.ClassExpired, Scope: catalog.ScopeInfrastructure, Permanent: true, Code: "5.4.7", Rule: "enhanced.5.4.7"}
	unknownFallback  = catalog.Classification{Class: catalog.ClassUnknown, Scope: catalog.ScopeUnknown, Permanent: true, Rule: "fallback.unknown"}
	// A class the catalog could not name must never suppress, even if a caller
	// (an operator rule, a bug) gave it a recipient scope and permanence.
	unknownRecipient = catalog.Classification{Class: catalog.ClassUnknown, Scope: catalog.ScopeRecipient, Permanent: true, Rule: "operator.odd"}
)

// setup returns a policy with TTLs set, so the tests see which TTL a decision carries.
func setup(t *testing.T) *Policy {
	t.Helper()
	p := Default()
	p.HardSuppressionTTL = 365 * 24 * time.Hour
	p.ComplaintTTL = 90 * 24 * time.Hour
	if err := p.Validate(); err != nil {
		t.Fatalf("test policy invalid: %v", err)
	}
	return p
}

func event(typ events.Type, providerSuppressed bool) *events.Event {
	return &events.Event{
		ID: "generic:e1", ESP: "generic", Type: typ, ProviderSuppressed: providerSuppressed,
		OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Recipient: "ana@example.com",
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	p := setup(t)
	tests := []struct {
		name  string
		typ   events.Type
		provS bool
		cl    catalog.Classification
		want  Decision
	}{
		{"delivered resets", events.TypeDelivered, false, catalog.Classification{}, Decision{Action: ActionReset}},
		{"delivered resets whatever the classification", events.TypeDelivered, false, recipientUnknown, Decision{Action: ActionReset}},
		{"complaint suppresses", events.TypeComplaint, false, catalog.Classification{}, Decision{Action: ActionSuppress, Reason: "complaint", SuppressTTL: p.ComplaintTTL}},
		{"complaint suppresses even with a sender class", events.TypeComplaint, false, authRequired, Decision{Action: ActionSuppress, Reason: "complaint", SuppressTTL: p.ComplaintTTL}},
		{"recipient permanent bounce suppresses", events.TypeBounce, false, recipientUnknown, Decision{Action: ActionSuppress, Reason: string(catalog.ClassRecipientUnknown), SuppressTTL: p.HardSuppressionTTL}},
		{"recipient permanent dropped suppresses", events.TypeDropped, false, recipientUnknown, Decision{Action: ActionSuppress, Reason: "recipient_unknown", SuppressTTL: p.HardSuppressionTTL}},
		{"recipient permanent provider-suppressed still suppresses", events.TypeBounce, true, recipientUnknown, Decision{Action: ActionSuppress, Reason: "recipient_unknown", SuppressTTL: p.HardSuppressionTTL}},
		{"recipient permanent but deferral", events.TypeDeferral, false, recipientUnknown, Decision{Action: ActionNone}},
		{"recipient transient bounce is soft", events.TypeBounce, false, mailboxFull, Decision{Action: ActionSoft}},
		{"recipient transient provider-suppressed", events.TypeBounce, true, mailboxFull, Decision{Action: ActionNone}},
		{"recipient transient dropped provider-suppressed", events.TypeDropped, true, mailboxFull, Decision{Action: ActionNone}},
		{"recipient transient deferral", events.TypeDeferral, false, mailboxFull, Decision{Action: ActionNone}},
		{"sender 530 bounce alerts", events.TypeBounce, false, authRequired, Decision{Action: ActionAlert}},
		{"sender 5.7.26 bounce alerts", events.TypeBounce, false, senderAuthPolicy, Decision{Action: ActionAlert}},
		{"sender blocklist dropped alerts", events.TypeDropped, false, reputationBlock, Decision{Action: ActionAlert}},
		{"sender throttle deferral alerts", events.TypeDeferral, false, rateLimited, Decision{Action: ActionAlert}},
		{"sender provider-suppressed alerts", events.TypeBounce, true, authRequired, Decision{Action: ActionAlert}},
		{"message scope", events.TypeBounce, false, tooLarge, Decision{Action: ActionNone}},
		{"infrastructure transient", events.TypeBounce, false, networkError, Decision{Action: ActionNone}},
		{"infrastructure permanent", events.TypeBounce, false, expired, Decision{Action: ActionNone}},
		{"unknown fallback", events.TypeBounce, false, unknownFallback, Decision{Action: ActionNone}},
		{"unknown class with recipient scope and permanent", events.TypeBounce, false, unknownRecipient, Decision{Action: ActionNone}},
		{"empty classification", events.TypeBounce, false, catalog.Classification{}, Decision{Action: ActionNone}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := p.Decide(event(tt.typ, tt.provS), tt.cl)
			if got != tt.want {
				t.Errorf("Decide(%s, %s/%s permanent=%t) = %+v, want %+v", tt.typ, tt.cl.Scope, tt.cl.Class, tt.cl.Permanent, got, tt.want)
			}
		})
	}
}

// TestDecideSenderNeverSuppresses is the policy's central promise: whatever the event
// type (bar a complaint, which is the recipient's own word) and permanence, a
// sender-side classification never suppresses a recipient.
func TestDecideSenderNeverSuppresses(t *testing.T) {
	t.Parallel()
	p := setup(t)
	classes := []catalog.Class{
		catalog.ClassAuthRequired, catalog.ClassAuthFailed, catalog.ClassTLSRequired, catalog.ClassRelayDenied,
		catalog.ClassSenderAuthPolicy, catalog.ClassSenderAddressRejected, catalog.ClassReputationBlock,
		catalog.ClassRateLimited, catalog.ClassPolicyRejected,
	}
	for _, typ := range []events.Type{events.TypeBounce, events.TypeDropped, events.TypeDeferral} {
		for _, class := range classes {
			for _, perm := range []bool{true, false} {
				for _, provS := range []bool{true, false} {
					cl := catalog.Classification{Class: class, Scope: catalog.ScopeSender, Permanent: perm}
					got := p.Decide(event(typ, provS), cl)
					if got.Action != ActionAlert {
						t.Errorf("Decide(%s, sender/%s permanent=%t provider_suppressed=%t) = %s, want alert", typ, class, perm, provS, got.Action)
					}
				}
			}
		}
	}
}

func TestDecideDefaultPolicyIsPermanent(t *testing.T) {
	t.Parallel()
	p := Default()
	if err := p.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if d := p.Decide(event(events.TypeBounce, false), recipientUnknown); d.SuppressTTL != 0 {
		t.Errorf("default hard bounce TTL = %s, want 0 (permanent)", d.SuppressTTL)
	}
	if d := p.Decide(event(events.TypeComplaint, false), catalog.Classification{}); d.SuppressTTL != 0 {
		t.Errorf("default complaint TTL = %s, want 0 (permanent)", d.SuppressTTL)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(*Policy)
		field string // "" = valid
	}{
		{"default", func(*Policy) {}, ""},
		{"threshold 1", func(p *Policy) { p.SoftThreshold = 1 }, ""},
		{"threshold 0", func(p *Policy) { p.SoftThreshold = 0 }, "soft_threshold"},
		{"threshold negative", func(p *Policy) { p.SoftThreshold = -3 }, "soft_threshold"},
		{"window 0", func(p *Policy) { p.SoftWindow = 0 }, "soft_window"},
		{"window negative", func(p *Policy) { p.SoftWindow = -time.Hour }, "soft_window"},
		{"soft ttl 0", func(p *Policy) { p.SoftSuppressionTTL = 0 }, "soft_suppression_ttl"},
		{"soft ttl negative", func(p *Policy) { p.SoftSuppressionTTL = -time.Second }, "soft_suppression_ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Default()
			tt.edit(p)
			err := p.Validate()
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.field != "" && err == nil:
				t.Errorf("Validate() = nil, want an error naming %s", tt.field)
			case tt.field != "" && !strings.HasPrefix(err.Error(), tt.field+":"):
				t.Errorf("Validate() = %q, want it to start with %q", err, tt.field+":")
			}
		})
	}
}
