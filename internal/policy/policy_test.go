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
	// A 4xx carrying 4.1.1 ("address verification in progress"): a recipient class,
	// but not a permanent verdict.
	transientUnknown = catalog.Classification{Class: catalog.ClassRecipientUnknown, Scope: catalog.ScopeRecipient, Permanent: false, Code: "4.1.1", Rule: "enhanced.4.1.1"}
	unknownFallback  = catalog.Classification{Class: catalog.ClassUnknown, Scope: catalog.ScopeUnknown, Permanent: true, Rule: "fallback.unknown"}
	// A class the catalog could not name must never suppress, even if a caller
	// (an operator rule, a bug) gave it a recipient scope and permanence.
	unknownRecipient = catalog.Classification{Class: catalog.ClassUnknown, Scope: catalog.ScopeRecipient, Permanent: true, Rule: "operator.odd"}
)

// ttls is a policy with TTLs on hard bounces and complaints, so the tests see which
// TTL a decision carries.
const ttls = `version: 1
soft: {threshold: 3, window: 7d, ttl: 30d}
classes:
  recipient_unknown: {action: suppress, ttl: 365d}
  mailbox_full: {action: soft}
  unknown: {action: record}
scopes: {recipient_permanent: {action: suppress, ttl: 365d}, recipient_transient: soft, sender: incident, message: record, infrastructure: record, unknown: record}
complaint: {action: suppress, ttl: 90d, scope: tenant}
`

const (
	hardTTL      = 365 * 24 * time.Hour
	complaintTTL = 90 * 24 * time.Hour
)

func setup(t *testing.T) *Policy {
	t.Helper()
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse([]byte(ttls), "ttls.yaml", cat)
	if err != nil {
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
		{"complaint suppresses", events.TypeComplaint, false, catalog.Classification{}, Decision{Action: ActionSuppress, Reason: "complaint", SuppressTTL: complaintTTL}},
		{"complaint suppresses even with a sender class", events.TypeComplaint, false, authRequired, Decision{Action: ActionSuppress, Reason: "complaint", SuppressTTL: complaintTTL}},
		{"recipient permanent bounce suppresses", events.TypeBounce, false, recipientUnknown, Decision{Action: ActionSuppress, Reason: string(catalog.ClassRecipientUnknown), SuppressTTL: hardTTL}},
		{"recipient permanent dropped suppresses", events.TypeDropped, false, recipientUnknown, Decision{Action: ActionSuppress, Reason: "recipient_unknown", SuppressTTL: hardTTL}},
		{"recipient permanent provider-suppressed still suppresses", events.TypeBounce, true, recipientUnknown, Decision{Action: ActionSuppress, Reason: "recipient_unknown", SuppressTTL: hardTTL}},
		{"recipient permanent but deferral", events.TypeDeferral, false, recipientUnknown, Decision{Action: ActionNone}},
		{"recipient class from a transient reply only counts", events.TypeBounce, false, transientUnknown, Decision{Action: ActionSoft}},
		{"recipient class from a transient reply, provider-suppressed", events.TypeBounce, true, transientUnknown, Decision{Action: ActionNone}},
		{"recipient transient bounce is soft", events.TypeBounce, false, mailboxFull, Decision{Action: ActionSoft}},
		{"recipient transient provider-suppressed", events.TypeBounce, true, mailboxFull, Decision{Action: ActionNone}},
		{"recipient transient dropped provider-suppressed", events.TypeDropped, true, mailboxFull, Decision{Action: ActionNone}},
		{"recipient transient deferral", events.TypeDeferral, false, mailboxFull, Decision{Action: ActionNone}},
		{"sender 530 bounce alerts", events.TypeBounce, false, authRequired, Decision{Action: ActionAlert}},
		{"sender 5.7.26 bounce alerts", events.TypeBounce, false, senderAuthPolicy, Decision{Action: ActionAlert}},
		{"sender blocklist dropped alerts", events.TypeDropped, false, reputationBlock, Decision{Action: ActionAlert}},
		{"sender throttle deferral alerts", events.TypeDeferral, false, rateLimited, Decision{Action: ActionAlert}},
		{"sender provider-suppressed records only", events.TypeBounce, true, authRequired, Decision{Action: ActionNone}},
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
			got.Rule, got.Global = "", false
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
					want := ActionAlert
					if provS {
						want = ActionNone // the ESP's own list says nothing about our sending path
					}
					if got.Action != want {
						t.Errorf("Decide(%s, sender/%s permanent=%t provider_suppressed=%t) = %s, want %s", typ, class, perm, provS, got.Action, want)
					}
				}
			}
		}
	}
}

func TestDecideDefaultPolicyIsPermanent(t *testing.T) {
	t.Parallel()
	p := Default()
	if d := p.Decide(event(events.TypeBounce, false), recipientUnknown); d.SuppressTTL != 0 || d.Action != ActionSuppress || !d.Global {
		t.Errorf("default hard bounce = %+v, want a permanent global suppression", d)
	}
	if d := p.Decide(event(events.TypeComplaint, false), catalog.Classification{}); d.SuppressTTL != 0 || d.Action != ActionSuppress || d.Global {
		t.Errorf("default complaint = %+v, want a permanent per-tenant suppression", d)
	}
	if p.SoftThreshold != 3 || p.SoftWindow != 7*24*time.Hour || p.SoftSuppressionTTL != 30*24*time.Hour {
		t.Errorf("default soft = %d in %s for %s, want 3 in 7d for 30d", p.SoftThreshold, p.SoftWindow, p.SoftSuppressionTTL)
	}
}

// An ESP's drop of an address on its suppression list suppresses under the default
// policy whichever list it is, but an unsubscribe or spam report is the recipient's wish
// about this sender: suppressed for the tenant, like a complaint, while a bounced
// address is dead for everyone.
func TestDecideESPSuppressionListDrops(t *testing.T) {
	t.Parallel()
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	p := Default()
	for _, tc := range []struct {
		reply  string
		global bool
	}{
		{"sendgrid dropped: Bounced Address", true},
		{"Not delivering to previously bounced address", true},
		{"sendgrid dropped: Unsubscribed Address", false},
		{"sendgrid dropped: Spam Reporting Address", false},
		{"607 Not delivering to a user that already marked you as spam", false},
	} {
		e := event(events.TypeDropped, true)
		e.Tenant = "acme"
		d := p.Decide(e, cat.Classify(tc.reply, catalog.Hints{}))
		if d.Action != ActionSuppress || d.Global != tc.global {
			t.Errorf("%q: %+v, want suppress, global %v", tc.reply, d, tc.global)
		}
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	t.Parallel()
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	const head = "version: 1\nsoft: {threshold: 3, window: 7d, ttl: 30d}\n"
	tests := []struct {
		name, body, want string
	}{
		{"sender class suppress", head + "classes:\n  auth_required: {action: suppress}\n", "line 4: classes.auth_required: suppress is refused for a sender-side class"},
		{"sender scope soft", head + "scopes:\n  sender: soft\n", "line 4: scopes.sender: soft is refused"},
		{"unknown suppress", head + "classes:\n  unknown: {action: suppress}\n", "line 4: classes.unknown: suppress is refused for unknown replies"},
		{"unknown class", head + "classes:\n  no_such_class: {action: record}\n", "line 4: classes.no_such_class: unknown class"},
		{"unknown action", head + "classes:\n  mailbox_full: {action: delete}\n", `line 4: classes.mailbox_full: unknown action "delete"`},
		{"ttl on soft", head + "classes:\n  mailbox_full: {action: soft, ttl: 1d}\n", "line 4: classes.mailbox_full: ttl applies only to suppress"},
		{"bad duration", "version: 1\nsoft: {threshold: 3, window: 7x, ttl: 30d}\n", "line 2"},
		{"unknown field", head + "sof: {}\n", "line 3"},
		{"zero threshold", "version: 1\nsoft: {threshold: 0, window: 7d, ttl: 30d}\n", "soft.threshold"},
		{"wrong version", "version: 2\nsoft: {threshold: 3, window: 7d, ttl: 30d}\n", "version: 2"},
		{"override without class suppresses", head + "overrides:\n  - when: {esp: sendgrid}\n    action: suppress\n", "line 4: overrides[0]: suppress needs when.class"},
		{"override naming nothing", head + "overrides:\n  - when: {}\n    action: record\n", "names nothing to match"},
		{"bad allowlist address", head + "allowlist: {addresses: [nobody]}\n", "allowlist.addresses"},
		{"bad severity", head + "classes:\n  auth_required: {action: incident, severity: urgent}\n", `line 4: classes.auth_required.severity: "urgent"`},
		{"resolve_after on a suppress class", head + "classes:\n  recipient_unknown: {action: suppress, resolve_after: 1h}\n", "line 4: classes.recipient_unknown: resolve_after and severity apply only to action incident"},
		{"severity outside classes", head + "scopes:\n  sender: {action: incident, severity: info}\n", "line 4: scopes.sender: resolve_after and severity belong under classes"},
		{"resolve_after too short", head + "incidents: {resolve_after: 10ms}\n", "line 3: incidents.resolve_after"},
		{"remind_every too short", head + "incidents: {remind_every: 1m}\n", "line 3: incidents.remind_every"},
		{"unknown incidents key", head + "incidents: {resolve_afer: 1h}\n", "line 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.body), "p.yaml", cat)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "p.yaml: ") {
				t.Fatalf("Parse error = %v, want it to name the file and contain %q", err, tt.want)
			}
		})
	}
}

func TestOverridesAllowlistAndScope(t *testing.T) {
	t.Parallel()
	cat, _ := catalog.Default()
	p, err := Parse([]byte(`version: 1
soft: {threshold: 3, window: 7d, ttl: 30d}
suppression_scope: tenant
classes:
  recipient_unknown: {action: suppress, scope: global}
overrides:
  - when: {recipient_domain: odd.example, class: recipient_unknown}
    action: soft
  - when: {tenant: quiet}
    action: record
allowlist:
  addresses: [Seed@Example.com]
  domains: [internal.example]
`), "p.yaml", cat)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(rcpt, tenant string) *events.Event {
		e := event(events.TypeBounce, false)
		e.Recipient, e.Tenant = rcpt, tenant
		return e
	}
	tests := []struct {
		name   string
		e      *events.Event
		cl     catalog.Classification
		action Action
		global bool
	}{
		{"class table, global scope", ev("a@example.com", ""), recipientUnknown, ActionSuppress, true},
		{"override by domain (subdomain matches)", ev("a@mx.odd.example", ""), recipientUnknown, ActionSoft, false},
		{"override by tenant", ev("a@example.com", "quiet"), recipientUnknown, ActionNone, false},
		{"allowlisted address", ev("Seed@example.com", ""), recipientUnknown, ActionNone, false},
		{"allowlisted domain", ev("x@dev.internal.example", ""), recipientUnknown, ActionNone, false},
		{"scope fallback uses the file's default scope", ev("a@example.com", ""), mailboxFull, ActionSoft, false},
		{"tenant override still never suppresses a sender fault", ev("a@example.com", "quiet"), authRequired, ActionNone, false},
	}
	for _, tt := range tests {
		d := p.Decide(tt.e, tt.cl)
		if d.Action != tt.action || (d.Action == ActionSuppress && d.Global != tt.global) {
			t.Errorf("%s: Decide = %+v, want %s (global %t)", tt.name, d, tt.action, tt.global)
		}
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "90s": 90 * time.Second, "0s": 0} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "7x", "1.5d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = nil error", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(DefaultYAML())
	f.Add([]byte("version: 1\nsoft: {threshold: 3, window: 7d, ttl: 30d}\n"))
	cat, err := catalog.Default()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.yaml", cat)
		if err != nil {
			return
		}
		// Whatever a valid file says, a sender-side fault never suppresses.
		d := p.Decide(event(events.TypeBounce, false), authRequired)
		if d.Action == ActionSuppress || d.Action == ActionSoft {
			t.Fatalf("a valid policy suppressed for a sender-side fault: %+v", d)
		}
	})
}

func TestIncidentLifecycle(t *testing.T) {
	t.Parallel()
	def := Default().Incidents
	for class, want := range map[string]string{"auth_required": "critical", "auth_failed": "critical", "rate_limited": "warning", "reputation_block": "high", "mass_bounce": "high", "some_new_class": "high"} {
		if got := def.Severity(class); got != want {
			t.Errorf("built-in severity of %s = %s, want %s", class, got, want)
		}
	}
	if def.ResolveAfter("auth_required") != 30*time.Minute || def.ResolveAfter("rate_limited") != 15*time.Minute || def.RemindEvery() != 4*time.Hour {
		t.Errorf("built-in lifecycle = %v / %v / %v, want 30m, 15m for rate_limited, reminders every 4h",
			def.ResolveAfter("auth_required"), def.ResolveAfter("rate_limited"), def.RemindEvery())
	}
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse([]byte(`version: 1
soft: {threshold: 3, window: 7d, ttl: 30d}
classes:
  auth_required: {action: incident, resolve_after: 2h, severity: high}
  rate_limited: incident
incidents: {resolve_after: 45m, remind_every: 0}
`), "p.yaml", cat)
	if err != nil {
		t.Fatal(err)
	}
	in := p.Incidents
	if in.ResolveAfter("auth_required") != 2*time.Hour || in.ResolveAfter("rate_limited") != 45*time.Minute || in.RemindEvery() != 0 || in.Severity("auth_required") != "high" || in.Severity("auth_failed") != "critical" {
		t.Errorf("lifecycle = %+v, want auth_required 2h high, others 45m, no reminders, defaults kept for other severities", in)
	}
}

// TestDecideTransientNeverSuppressesForGood holds whatever the policy file says: even a
// file that suppresses recipient_unknown forever cannot make a 4xx do it.
func TestDecideTransientNeverSuppressesForGood(t *testing.T) {
	t.Parallel()
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse([]byte(`version: 1
soft: {threshold: 3, window: 7d, ttl: 30d}
classes: {recipient_unknown: {action: suppress}}
scopes: {recipient_transient: suppress}
overrides:
  - when: {class: recipient_unknown, esp: generic}
    action: suppress
`), "strict.yaml", cat)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []events.Type{events.TypeBounce, events.TypeDropped} {
		d := p.Decide(event(typ, false), transientUnknown)
		if d.Action == ActionSuppress {
			t.Errorf("%s with a transient 4.1.1 = %+v, want no permanent suppression", typ, d)
		}
	}
}
