package policy

import (
	"bytes"
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the built-in policy file.
func DefaultYAML() []byte { return slices.Clone(defaultYAML) }

// Action is the decision's effect. The names are part of the public surface: the
// `classify` CLI prints them and metrics carry them as a label. The policy file also
// accepts `incident` for alert and `record` for none.
type Action string

// The actions.
const (
	ActionSuppress Action = "suppress" // the recipient cannot receive mail
	ActionSoft     Action = "soft"     // count; suppress after Threshold in Window
	ActionAlert    Action = "alert"    // a sender-side incident; the recipient is untouched
	ActionNone     Action = "none"     // record only
	ActionReset    Action = "reset"    // delivered: clear soft-bounce state
)

// Spec is what one entry of the policy says to do.
type Spec struct {
	Action Action
	TTL    time.Duration // suppress: 0 = permanent
	Global bool          // suppression scope
	Rule   string        // where it came from: "classes.mailbox_full", "overrides[2]", …
}

// Override is one entry of `overrides`.
type Override struct {
	RecipientDomain string
	ESP             string
	Tenant          string
	Class           catalog.Class
	Type            events.Type
	Spec
}

// Policy is a validated policy file. It is immutable; a reload builds a new one.
type Policy struct {
	SoftThreshold      int
	SoftWindow         time.Duration
	SoftSuppressionTTL time.Duration

	globalByDefault bool
	classes         map[catalog.Class]Spec
	scopes          map[string]Spec // recipient_permanent, recipient_transient, sender, message, infrastructure, unknown
	complaint       Spec
	allowAddresses  map[string]bool
	allowDomains    []string
	overrides       []Override
	source          string

	// MassBounce is the mass-bounce guard: when one receiving domain suddenly turns
	// many distinct recipients into hard bounces, new suppressions for it are held.
	MassBounce MassBounce

	// Incidents is how sender-side incidents live: quiet period, reminders, severity.
	Incidents Incidents

	// ErasureMarker says whether erasing a recipient (DELETE /v1/recipients/{address})
	// leaves a do-not-mail marker: a suppression holding only the address's keyed hash
	// (REBOUND_ADDRESS_HASH_KEY) and reason "erased", so the address is not mailed
	// again. `erasure.marker: keep` (the default) or `drop`.
	ErasureMarker bool
}

// Incidents configures the life of sender-side incidents (the `incidents` section and
// each class's resolve_after and severity). It is what the alert package's Lifecycle
// asks for.
type Incidents struct {
	DefaultResolveAfter time.Duration            // incidents.resolve_after (default 30m)
	Remind              time.Duration            // incidents.remind_every (0: no reminders)
	resolveAfter        map[string]time.Duration // classes.<class>.resolve_after
	severity            map[string]string        // defaults per class, then classes.<class>.severity
}

// ResolveAfter is how long an incident of the class stays open without a new event.
func (in Incidents) ResolveAfter(class string) time.Duration {
	if d, ok := in.resolveAfter[class]; ok {
		return d
	}
	return in.DefaultResolveAfter
}

// Severity is the severity of the class's incidents: critical, high, warning or info.
func (in Incidents) Severity(class string) string {
	if s, ok := in.severity[class]; ok {
		return s
	}
	return "high"
}

// RemindEvery is the reminder interval of an open, unacknowledged incident (0: none).
func (in Incidents) RemindEvery() time.Duration { return in.Remind }

// defaultSeverity ranks sender-side classes by how soon a person must act: our
// credentials failing stops all mail at once; throttling usually heals by itself.
var defaultSeverity = map[string]string{
	"auth_required": "critical", "auth_failed": "critical",
	"tls_required": "high", "relay_denied": "high", "sender_auth_policy": "high", "reputation_block": "high",
	"sender_address_rejected": "high", "mass_bounce": "high",
	"rate_limited": "warning",
}

var severities = []string{"critical", "high", "warning", "info"}

// MassBounce configures the mass-bounce guard. Distinct hard-bounced recipients of a
// receiving domain are counted twice over the window: per tenant (the tenant whose
// mail bounced) and for the domain across tenants. A tenant whose own count reaches
// TenantThreshold has its suppressions for the domain held (a bad list import); a
// domain whose count reaches Threshold has every tenant's held (a provider's outage).
// A held tenant's further recipients no longer count toward the domain, so one tenant
// alone never holds the whole domain (see docs/policy.md for sizing).
type MassBounce struct {
	Enabled         bool
	Window          time.Duration // distinct recipients are counted over this window
	Threshold       int           // this many within the window, across tenants, holds the domain
	TenantThreshold int           // this many of one tenant within the window holds that tenant's (0: Threshold)
	HoldFor         time.Duration // undecided holds are discarded this long after they started
	OnRecovery      string        // hold | apply | discard, when the count falls below the threshold
}

// PerTenant is the tenant threshold in force: TenantThreshold, or Threshold when unset.
func (mb MassBounce) PerTenant() int {
	if mb.TenantThreshold > 0 {
		return mb.TenantThreshold
	}
	return mb.Threshold
}

// Source names the file the policy came from ("built-in" for the default).
func (p *Policy) Source() string { return p.source }

var (
	defaultOnce sync.Once
	defaultPol  *Policy
	defaultErr  error
)

// Default is the built-in policy (default.yaml). It panics if the embedded file is
// invalid, which a unit test rules out.
func Default() *Policy {
	defaultOnce.Do(func() {
		cat, err := catalog.Default()
		if err != nil {
			defaultErr = err
			return
		}
		defaultPol, defaultErr = Parse(defaultYAML, "built-in", cat)
	})
	if defaultErr != nil {
		panic("policy: built-in policy is invalid: " + defaultErr.Error())
	}
	return defaultPol
}

// Decision is what the policy decided for one event.
type Decision struct {
	Action      Action
	Reason      string        // the suppression's reason when Action is suppress
	SuppressTTL time.Duration // 0 = permanent
	Global      bool          // the suppression holds for every tenant
	Rule        string        // the policy entry that decided
}

// Decide maps an event and its classification to a decision.
func (p *Policy) Decide(e *events.Event, c catalog.Classification) Decision {
	if e.Type == events.TypeDelivered {
		// Reset where soft bounces are counted by default.
		return Decision{Action: ActionReset, Global: p.scopes["recipient_transient"].Global, Rule: "delivered"}
	}
	if p.allowed(e.Recipient) {
		return Decision{Action: ActionNone, Rule: "allowlist"}
	}
	spec, reason := p.lookup(e, c)
	d := Decision{Action: spec.Action, SuppressTTL: spec.TTL, Global: spec.Global, Rule: spec.Rule}
	if d.Action == ActionSuppress {
		d.Reason = reason
	}
	// Safety rails that no file can turn off. A complaint is the recipient's own
	// word, so it is exempt from the reply-based ones.
	switch {
	case e.Type == events.TypeComplaint:
	case d.Action == ActionSuppress || d.Action == ActionSoft:
		if c.Scope == catalog.ScopeSender || c.Class == catalog.ClassUnknown || c.Class == "" {
			// A sender-side fault or an unrecognised reply never touches the recipient.
			d = Decision{Action: ActionNone, Rule: d.Rule + "+guard"}
			if c.Scope == catalog.ScopeSender {
				d.Action = ActionAlert
			}
		} else if e.Type == events.TypeDeferral {
			// The ESP is still retrying: not a bounce yet, whatever the reply says.
			d = Decision{Action: ActionNone, Rule: d.Rule + "+deferral"}
		} else if d.Action == ActionSuppress && !c.Permanent {
			// A transient reply (4xx: "address verification in progress", "too many
			// recent messages" with 4.1.1) is never a permanent verdict on the address:
			// at most it counts in the soft window, which suppresses with an expiry.
			d = Decision{Action: ActionSoft, Global: p.scopes["recipient_transient"].Global, Rule: d.Rule + "+transient"}
		}
		if d.Action == ActionSoft && e.ProviderSuppressed {
			// Not a fresh observation: the ESP did not even try.
			d = Decision{Action: ActionNone, Rule: d.Rule + "+provider_suppressed"}
		}
	case d.Action == ActionAlert && e.ProviderSuppressed:
		// The ESP refused from its own list; its text says nothing about our sending path
		// (SparkPost's "suppressed due to customer policy" reads like a policy block).
		d = Decision{Action: ActionNone, Rule: d.Rule + "+provider_suppressed"}
	}
	return d
}

func (p *Policy) lookup(e *events.Event, c catalog.Classification) (Spec, string) {
	domain := ""
	if at := strings.LastIndexByte(e.Recipient, '@'); at >= 0 {
		domain = e.Recipient[at+1:]
	}
	for _, o := range p.overrides {
		if (o.RecipientDomain == "" || domainMatches(domain, o.RecipientDomain)) &&
			(o.ESP == "" || o.ESP == e.ESP) && (o.Tenant == "" || o.Tenant == e.Tenant) &&
			(o.Class == "" || o.Class == c.Class) && (o.Type == "" || o.Type == e.Type) {
			return o.Spec, string(c.Class)
		}
	}
	if e.Type == events.TypeComplaint {
		return p.complaint, "complaint"
	}
	if s, ok := p.classes[c.Class]; ok {
		return s, string(c.Class)
	}
	key := string(c.Scope)
	if c.Scope == catalog.ScopeRecipient {
		key = "recipient_transient"
		if c.Permanent {
			key = "recipient_permanent"
		}
	}
	if s, ok := p.scopes[key]; ok {
		return s, string(c.Class)
	}
	return Spec{Action: ActionNone, Rule: "fallback"}, string(c.Class)
}

// Allowlisted says whether the policy's allowlist covers addr: the pipeline never
// suppresses it, and neither does an import.
func (p *Policy) Allowlisted(addr string) bool { return p.allowed(addr) }

func (p *Policy) allowed(addr string) bool {
	if p.allowAddresses[strings.ToLower(addr)] {
		return true
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return false
	}
	d := addr[at+1:]
	for _, a := range p.allowDomains {
		if domainMatches(d, a) {
			return true
		}
	}
	return false
}

func domainMatches(domain, pattern string) bool {
	return domain == pattern || strings.HasSuffix(domain, "."+pattern)
}

// --- file format -------------------------------------------------------------

type fileSpec struct {
	Version          int                                   `yaml:"version"`
	Soft             softSpec                              `yaml:"soft"`
	SuppressionScope string                                `yaml:"suppression_scope"`
	Classes          map[string]actionNode                 `yaml:"classes"`
	Scopes           map[string]actionNode                 `yaml:"scopes"`
	Complaint        *actionNode                           `yaml:"complaint"`
	Allowlist        struct{ Addresses, Domains []string } `yaml:"allowlist"`
	Overrides        []overrideSpec                        `yaml:"overrides"`
	MassBounce       *massBounceSpec                       `yaml:"mass_bounce"`
	Incidents        *incidentsSpec                        `yaml:"incidents"`
	Erasure          *erasureSpec                          `yaml:"erasure"`
}

type erasureSpec struct {
	Marker string `yaml:"marker"`
}

type incidentsSpec struct {
	ResolveAfter duration `yaml:"resolve_after"`
	RemindEvery  duration `yaml:"remind_every"`
}

type massBounceSpec struct {
	Enabled    *bool    `yaml:"enabled"`
	Window     duration `yaml:"window"`
	Threshold  int      `yaml:"threshold"`
	TenantThr  int      `yaml:"tenant_threshold"`
	HoldFor    duration `yaml:"hold_for"`
	OnRecovery string   `yaml:"on_recovery"`
}

type softSpec struct {
	Threshold int      `yaml:"threshold"`
	Window    duration `yaml:"window"`
	TTL       duration `yaml:"ttl"`
}

type whenSpec struct {
	RecipientDomain string `yaml:"recipient_domain"`
	ESP             string `yaml:"esp"`
	Tenant          string `yaml:"tenant"`
	Class           string `yaml:"class"`
	Type            string `yaml:"type"`
}

type overrideSpec struct {
	When whenSpec
	actionNode
}

func (o *overrideSpec) UnmarshalYAML(n *yaml.Node) error {
	var p struct {
		When   whenSpec `yaml:"when"`
		Action string   `yaml:"action"`
		TTL    duration `yaml:"ttl"`
		Scope  string   `yaml:"scope"`
	}
	if err := n.Decode(&p); err != nil {
		return err
	}
	o.When = p.When
	o.actionNode = actionNode{Action: p.Action, TTL: p.TTL, Scope: p.Scope, line: n.Line}
	return nil
}

// actionNode is `{action: …, ttl: …, scope: …}` or a bare action name, with the line
// it was written on so errors can point at it.
type actionNode struct {
	Action string   `yaml:"action"`
	TTL    duration `yaml:"ttl"`
	Scope  string   `yaml:"scope"`
	// ResolveAfter and Severity tune a class's incidents (classes only).
	ResolveAfter duration `yaml:"resolve_after"`
	Severity     string   `yaml:"severity"`
	line         int
}

func (a *actionNode) UnmarshalYAML(n *yaml.Node) error {
	a.line = n.Line
	if n.Kind == yaml.ScalarNode {
		a.Action = n.Value
		return nil
	}
	type plain actionNode
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*a = actionNode(p)
	a.line = n.Line
	return nil
}

// duration accepts Go durations plus a day suffix ("7d", "30d").
type duration struct {
	d    time.Duration
	set  bool
	line int
}

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	d.line = n.Line
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	d.d, d.set = v, true
	return nil
}

// ParseDuration parses "90s", "2h", "7d" or "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a duration (e.g. 30s, 2h, 7d)", s)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30s, 2h, 7d)", s)
	}
	return days + d, nil
}

// Parse reads and validates a policy file. Every error names the file and the line.
func Parse(data []byte, name string, cat *catalog.Catalog) (*Policy, error) {
	var f fileSpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p, err := build(&f, name, cat)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

func build(f *fileSpec, name string, cat *catalog.Catalog) (*Policy, error) {
	if f.Version != 1 {
		return nil, fmt.Errorf("version: %d (want 1)", f.Version)
	}
	p := &Policy{
		SoftThreshold: f.Soft.Threshold, SoftWindow: f.Soft.Window.d, SoftSuppressionTTL: f.Soft.TTL.d,
		classes: map[catalog.Class]Spec{}, scopes: map[string]Spec{}, allowAddresses: map[string]bool{}, source: name,
		Incidents: Incidents{DefaultResolveAfter: 30 * time.Minute, resolveAfter: map[string]time.Duration{}, severity: map[string]string{}},
	}
	for k, v := range defaultSeverity {
		p.Incidents.severity[k] = v
	}
	if in := f.Incidents; in != nil {
		if in.ResolveAfter.set {
			if in.ResolveAfter.d < time.Second {
				return nil, fmt.Errorf("line %d: incidents.resolve_after: %s (want at least 1s)", in.ResolveAfter.line, in.ResolveAfter.d)
			}
			p.Incidents.DefaultResolveAfter = in.ResolveAfter.d
		}
		if in.RemindEvery.set {
			if in.RemindEvery.d != 0 && in.RemindEvery.d < 5*time.Minute {
				return nil, fmt.Errorf("line %d: incidents.remind_every: %s (want 0 to turn reminders off, or at least 5m)", in.RemindEvery.line, in.RemindEvery.d)
			}
			p.Incidents.Remind = in.RemindEvery.d
		}
	}
	switch {
	case p.SoftThreshold < 1:
		return nil, fmt.Errorf("soft.threshold: %d (want at least 1)", p.SoftThreshold)
	case p.SoftWindow <= 0:
		return nil, fmt.Errorf("line %d: soft.window: want a positive duration", f.Soft.Window.line)
	case p.SoftSuppressionTTL <= 0:
		return nil, fmt.Errorf("line %d: soft.ttl: want a positive duration", f.Soft.TTL.line)
	}
	p.ErasureMarker = true
	if f.Erasure != nil {
		switch f.Erasure.Marker {
		case "", "keep":
		case "drop":
			p.ErasureMarker = false
		default:
			return nil, fmt.Errorf("erasure.marker: %q (want keep or drop)", f.Erasure.Marker)
		}
	}
	switch f.SuppressionScope {
	case "", "global":
		p.globalByDefault = true
	case "tenant":
	default:
		return nil, fmt.Errorf("suppression_scope: %q (want global or tenant)", f.SuppressionScope)
	}
	for cls, n := range f.Classes {
		c := catalog.Class(cls)
		scope, ok := cat.ClassScope(c)
		if !ok {
			return nil, fmt.Errorf("line %d: classes.%s: unknown class (known: %s)", n.line, cls, joinClasses(cat.Classes()))
		}
		s, err := p.spec(n, "classes."+cls)
		if err != nil {
			return nil, err
		}
		if err := allowedFor(s, scope, c, n.line, "classes."+cls); err != nil {
			return nil, err
		}
		p.classes[c] = s
		if n.ResolveAfter.set {
			if n.ResolveAfter.d < time.Second {
				return nil, fmt.Errorf("line %d: classes.%s.resolve_after: %s (want at least 1s)", n.line, cls, n.ResolveAfter.d)
			}
			p.Incidents.resolveAfter[cls] = n.ResolveAfter.d
		}
		if n.Severity != "" {
			if !slices.Contains(severities, n.Severity) {
				return nil, fmt.Errorf("line %d: classes.%s.severity: %q (want critical, high, warning or info)", n.line, cls, n.Severity)
			}
			p.Incidents.severity[cls] = n.Severity
		}
	}
	for key, n := range f.Scopes {
		s, err := p.spec(n, "scopes."+key)
		if err != nil {
			return nil, err
		}
		var scope catalog.Scope
		switch key {
		case "recipient_permanent", "recipient_transient":
			scope = catalog.ScopeRecipient
		case "sender", "message", "infrastructure", "unknown":
			scope = catalog.Scope(key)
		default:
			return nil, fmt.Errorf("line %d: scopes.%s: unknown (want recipient_permanent, recipient_transient, sender, message, infrastructure or unknown)", n.line, key)
		}
		if err := allowedFor(s, scope, "", n.line, "scopes."+key); err != nil {
			return nil, err
		}
		p.scopes[key] = s
	}
	// Scope keys a file leaves out take the built-in fallback.
	for key, a := range map[string]Action{"recipient_permanent": ActionSuppress, "recipient_transient": ActionSoft, "sender": ActionAlert, "message": ActionNone, "infrastructure": ActionNone, "unknown": ActionNone} {
		if _, ok := p.scopes[key]; !ok {
			p.scopes[key] = Spec{Action: a, Global: p.globalByDefault, Rule: "scopes." + key}
		}
	}
	if f.Complaint != nil {
		s, err := p.spec(*f.Complaint, "complaint")
		if err != nil {
			return nil, err
		}
		if s.Action == ActionSoft {
			return nil, fmt.Errorf("line %d: complaint: soft is not an action for complaints (want suppress, incident or record)", f.Complaint.line)
		}
		p.complaint = s
	} else {
		p.complaint = Spec{Action: ActionSuppress, Rule: "complaint"}
	}
	for _, a := range f.Allowlist.Addresses {
		norm, err := events.NormalizeAddress(a)
		if err != nil {
			return nil, fmt.Errorf("allowlist.addresses: %q: %v", a, err)
		}
		p.allowAddresses[strings.ToLower(norm)] = true
	}
	for _, d := range f.Allowlist.Domains {
		d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
		if d == "" || !strings.Contains(d, ".") {
			return nil, fmt.Errorf("allowlist.domains: %q is not a domain", d)
		}
		p.allowDomains = append(p.allowDomains, d)
	}
	for i, o := range f.Overrides {
		where := fmt.Sprintf("overrides[%d]", i)
		s, err := p.spec(o.actionNode, where)
		if err != nil {
			return nil, err
		}
		w := o.When
		ov := Override{RecipientDomain: strings.ToLower(w.RecipientDomain), ESP: w.ESP, Tenant: w.Tenant, Class: catalog.Class(w.Class), Type: events.Type(w.Type), Spec: s}
		if ov == (Override{Spec: s}) {
			return nil, fmt.Errorf("line %d: %s: `when` names nothing to match", o.line, where)
		}
		if ov.Class != "" {
			scope, ok := cat.ClassScope(ov.Class)
			if !ok {
				return nil, fmt.Errorf("line %d: %s.when.class: unknown class %q", o.line, where, w.Class)
			}
			if err := allowedFor(s, scope, ov.Class, o.line, where); err != nil {
				return nil, err
			}
		} else if s.Action == ActionSuppress || s.Action == ActionSoft {
			return nil, fmt.Errorf("line %d: %s: %s needs when.class, so it can never apply to a sender-side class", o.line, where, s.Action)
		}
		if ov.ESP != "" && !slices.Contains(events.ESPs, ov.ESP) {
			return nil, fmt.Errorf("line %d: %s.when.esp: unknown ESP %q", o.line, where, ov.ESP)
		}
		switch ov.Type {
		case "", events.TypeBounce, events.TypeDeferral, events.TypeComplaint, events.TypeDropped:
		default:
			return nil, fmt.Errorf("line %d: %s.when.type: %q (want bounce, deferral, complaint or dropped)", o.line, where, ov.Type)
		}
		p.overrides = append(p.overrides, ov)
	}
	p.MassBounce = MassBounce{Enabled: true, Window: 10 * time.Minute, Threshold: 100, HoldFor: 72 * time.Hour, OnRecovery: "hold"}
	if mb := f.MassBounce; mb != nil {
		if mb.Enabled != nil {
			p.MassBounce.Enabled = *mb.Enabled
		}
		if mb.Window.set {
			p.MassBounce.Window = mb.Window.d
		}
		if mb.HoldFor.set {
			p.MassBounce.HoldFor = mb.HoldFor.d
		}
		if mb.Threshold != 0 {
			p.MassBounce.Threshold = mb.Threshold
		}
		if mb.TenantThr != 0 {
			p.MassBounce.TenantThreshold = mb.TenantThr
		}
		if mb.OnRecovery != "" {
			p.MassBounce.OnRecovery = mb.OnRecovery
		}
		switch {
		case p.MassBounce.Threshold < 2:
			return nil, fmt.Errorf("mass_bounce.threshold: %d (want at least 2)", p.MassBounce.Threshold)
		case mb.TenantThr != 0 && (mb.TenantThr < 2 || mb.TenantThr > p.MassBounce.Threshold):
			return nil, fmt.Errorf("mass_bounce.tenant_threshold: %d (want 2 to threshold, %d)", mb.TenantThr, p.MassBounce.Threshold)
		case p.MassBounce.Window <= 0:
			return nil, fmt.Errorf("line %d: mass_bounce.window: want a positive duration", mb.Window.line)
		case p.MassBounce.HoldFor < p.MassBounce.Window:
			return nil, fmt.Errorf("mass_bounce.hold_for: %s is shorter than the window %s", p.MassBounce.HoldFor, p.MassBounce.Window)
		}
		switch p.MassBounce.OnRecovery {
		case "hold", "apply", "discard":
		default:
			return nil, fmt.Errorf("mass_bounce.on_recovery: %q (want hold, apply or discard)", p.MassBounce.OnRecovery)
		}
	}
	return p, nil
}

// spec turns one action node into a Spec.
func (p *Policy) spec(n actionNode, where string) (Spec, error) {
	s := Spec{Global: p.globalByDefault, Rule: where, TTL: n.TTL.d}
	switch n.Action {
	case "suppress":
		s.Action = ActionSuppress
	case "soft":
		s.Action = ActionSoft
	case "incident", "alert":
		s.Action = ActionAlert
	case "record", "none":
		s.Action = ActionNone
	case "":
		return Spec{}, fmt.Errorf("line %d: %s: action is required", n.line, where)
	default:
		return Spec{}, fmt.Errorf("line %d: %s: unknown action %q (want suppress, soft, incident or record)", n.line, where, n.Action)
	}
	if (n.ResolveAfter.set || n.Severity != "") && !strings.HasPrefix(where, "classes.") {
		return Spec{}, fmt.Errorf("line %d: %s: resolve_after and severity belong under classes.<class>", n.line, where)
	}
	if (n.ResolveAfter.set || n.Severity != "") && s.Action != ActionAlert {
		return Spec{}, fmt.Errorf("line %d: %s: resolve_after and severity apply only to action incident", n.line, where)
	}
	if n.TTL.set && s.Action != ActionSuppress {
		return Spec{}, fmt.Errorf("line %d: %s: ttl applies only to suppress", n.line, where)
	}
	switch n.Scope {
	case "":
	case "global":
		s.Global = true
	case "tenant":
		s.Global = false
	default:
		return Spec{}, fmt.Errorf("line %d: %s: scope %q (want global or tenant)", n.line, where, n.Scope)
	}
	return s, nil
}

// allowedFor refuses, at load time, what the safety rails would refuse at run time.
func allowedFor(s Spec, scope catalog.Scope, class catalog.Class, line int, where string) error {
	touchesRecipient := s.Action == ActionSuppress || s.Action == ActionSoft
	switch {
	case touchesRecipient && scope == catalog.ScopeSender:
		return fmt.Errorf("line %d: %s: %s is refused for a sender-side class: our own fault must never suppress a recipient (use incident)", line, where, s.Action)
	case touchesRecipient && (scope == catalog.ScopeUnknown || class == catalog.ClassUnknown):
		return fmt.Errorf("line %d: %s: %s is refused for unknown replies: an unrecognised reply is never a suppression", line, where, s.Action)
	}
	return nil
}

func joinClasses(cs []catalog.Class) string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return strings.Join(out, ", ")
}
