package catalog

import (
	"fmt"
	"sort"
	"strings"

	"github.com/reboundhq/rebound/internal/catalog/internal/fallback"
	"github.com/reboundhq/rebound/internal/events"
)

// Scope says whose problem a bounce is; it decides the policy action
// (suppress the recipient, alert the sender's owners, or neither).
type Scope string

// Scopes.
const (
	ScopeRecipient      Scope = "recipient"      // the address, mailbox or recipient domain
	ScopeSender         Scope = "sender"         // our credentials, DNS/auth, reputation, volume, TLS, routing
	ScopeMessage        Scope = "message"        // this message: size, content, format
	ScopeInfrastructure Scope = "infrastructure" // network, DNS, remote system trouble, greylisting, expiry
	ScopeUnknown        Scope = "unknown"        // only for ClassUnknown
)

// Class is the catalog's verdict about what went wrong; each class has one
// scope, so policy can act on the scope and report the class.
type Class string

// Classes. Their scope, default permanence, description and fix steps live
// in data/classes.yaml.
const (
	ClassRecipientUnknown      Class = "recipient_unknown"
	ClassDomainInvalid         Class = "domain_invalid"
	ClassMailboxDisabled       Class = "mailbox_disabled"
	ClassRecipientOptedOut     Class = "recipient_opted_out"
	ClassMailboxFull           Class = "mailbox_full"
	ClassRecipientMoved        Class = "recipient_moved"
	ClassRecipientRateLimited  Class = "recipient_rate_limited"
	ClassAuthRequired          Class = "auth_required"
	ClassAuthFailed            Class = "auth_failed"
	ClassTLSRequired           Class = "tls_required"
	ClassRelayDenied           Class = "relay_denied"
	ClassSenderAuthPolicy      Class = "sender_auth_policy"
	ClassSenderAddressRejected Class = "sender_address_rejected"
	ClassReputationBlock       Class = "reputation_block"
	ClassRateLimited           Class = "rate_limited"
	ClassMessageTooLarge       Class = "message_too_large"
	ClassContentRejected       Class = "content_rejected"
	ClassPolicyRejected        Class = "policy_rejected"
	ClassGreylisted            Class = "greylisted"
	ClassNetworkError          Class = "network_error"
	ClassRemoteError           Class = "remote_error"
	ClassExpired               Class = "expired"
	ClassProtocolError         Class = "protocol_error"
	ClassAutoReply             Class = "auto_reply"
	ClassUnknown               Class = "unknown"
)

// Hints are structured values an ESP reported beside the reply text. They
// fill gaps the text leaves (a reply without codes, a provider chosen by MX
// host) but never outvote what the remote server itself wrote.
type Hints struct {
	Code       int    // ESP-given basic code (e.g. Mailgun's code), 0 if none
	Enhanced   string // ESP-given enhanced code (SendGrid or SES status), "" if none
	RemoteHost string // remote MTA host name if known, "" if none
	// Sender is our sender address as the event gives it (the envelope
	// sender, or the From address where the ESP reports only that), "" if
	// unknown. A reply about this address and no other is about our side,
	// whatever recipient words it uses: "553 <bounces@ours> Invalid email
	// address" refused our MAIL FROM, not the recipient.
	Sender string
}

// EventHints are the hints an event carries for its reply: the ESP's codes, the
// remote MTA and our sender address. Every caller that classifies an event's
// reply builds them here, so a new hint reaches all of them at once.
func EventHints(ev *events.Event) Hints {
	return Hints{Code: ev.Reply.Code, Enhanced: ev.Reply.Enhanced, RemoteHost: ev.MTA, Sender: ev.Sender}
}

// Classification is the catalog's answer for one reply.
type Classification struct {
	Class      Class   `json:"class"`
	Scope      Scope   `json:"scope"`
	Permanent  bool    `json:"permanent"`
	Code       string  `json:"code"`       // catalog entry it resolved to: "5.1.1", "530", "" if none
	Rule       string  `json:"rule"`       // ID of the deciding rule: "yahoo.tss04", "enhanced.5.1.1", "basic.530", "fallback.unknown"
	Confidence float64 `json:"confidence"` // 0..1, how specific the evidence was
	// Reason says, in one sentence, which rule or code decided and why: the
	// phrase a text rule matched and the code it agreed with or overrode,
	// or the code entry that decided, and whether a 4xx removed permanence.
	Reason string `json:"reason"`
}

// Suppressible reports whether the recipient may be suppressed on this
// classification alone: only a permanent, recipient-side, known verdict is.
func (cl Classification) Suppressible() bool {
	return cl.Scope == ScopeRecipient && cl.Permanent && cl.Class != ClassUnknown
}

// Unrecognised reports whether no text rule and no code knew the reply: its class
// is unknown, or only the statistical fallback decided it (rule model.sender).
// Such replies are what the rules should learn next, so the worker lists them
// for review (GET /v1/unknown-replies), whatever the fallback made of them.
func (cl Classification) Unrecognised() bool {
	return cl.Class == ClassUnknown || cl.Rule == modelRule
}

// Entry is one catalog entry for a basic or enhanced code: what an on-call
// engineer needs to read when that code shows up.
type Entry struct {
	Code      string   `json:"code" yaml:"code"`
	Title     string   `json:"title" yaml:"title"`
	RFC       string   `json:"rfc" yaml:"rfc"`
	Permanent bool     `json:"permanent" yaml:"permanent"`
	Scope     Scope    `json:"scope" yaml:"scope"`
	Class     Class    `json:"class" yaml:"class"`       // the class this code means when nothing more specific matches
	Severity  string   `json:"severity" yaml:"severity"` // low|medium|high|critical
	Category  string   `json:"category" yaml:"category"`
	Meaning   string   `json:"meaning" yaml:"meaning"`
	Causes    []string `json:"causes" yaml:"causes"`
	Fix       []string `json:"fix" yaml:"fix"`
}

// classInfo is what classes.yaml says about a class.
type classInfo struct {
	scope           Scope
	permanent       bool // permanence when the reply carries no code
	alwaysTransient bool // never permanent, whatever the code says (mailbox full, throttling)
	description     string
	fix             []string
}

// Catalog holds the code entries, the class table and the compiled rules.
// It is immutable after Load, so one value serves all goroutines.
type Catalog struct {
	entries map[string]*entrySpec // "530", "5.1.1", "4.1.1"
	// basicByCode and enhByCode index the same entries by number so the
	// hot path looks them up without formatting strings.
	basicByCode [600]*entrySpec
	enhByCode   map[[3]int]*entrySpec
	order       []string // entry codes in display order
	classes     map[Class]*classInfo
	rules       []*rule
	byID        map[string]*rule
	m           *matcher
	// patRules maps a pattern ID to the rules that list it under match:
	// the only rules worth evaluating when that pattern is seen.
	patRules [][]int32
	nwords   int // bitset words needed for all patterns
	nrwords  int // bitset words needed for all rules
	// railMask holds the subject rails' our-side and message words in the
	// pattern bitset (subject.go).
	railMask []wordMask
	// bareMask holds the negations written without their apostrophe ("doesnt",
	// "isnt"), which ride in the same scan: a reply that has one is spelled out
	// (expandBare) and scanned again.
	bareMask []wordMask
	// reasons caches "rule over code" reason sentences (see reason.go).
	reasons reasonCache
	// model is the statistical fallback (data/fallback.tsv), consulted
	// only when no rule decided and no code names a class (model.go);
	// modelReason is the reason sentence of its decisions.
	model       *fallback.Model
	modelReason string
}

// Entry returns the catalog entry for a code. It accepts a basic code
// ("530"), an enhanced code ("5.1.1", "4.2.2"), the class-less form "X.1.1"
// (answered with the permanent 5.x.x entry), and a full reply prefix
// ("550 5.1.1", "550-5.1.1"), for which the enhanced entry is returned when
// the catalog has it because it is the more specific of the two.
func (c *Catalog) Entry(code string) (Entry, bool) {
	code = strings.TrimSpace(code)
	if len(code) > 1 && (code[0] == 'X' || code[0] == 'x') && code[1] == '.' {
		code = "5" + code[1:]
	}
	if e, ok := c.entries[code]; ok {
		return e.Entry, true
	}
	r := ParseReply(code)
	if r.Enhanced != "" {
		if e, ok := c.entries[r.Enhanced]; ok {
			return e.Entry, true
		}
	}
	if r.Code != 0 {
		if e, ok := c.entries[fmt.Sprint(r.Code)]; ok {
			return e.Entry, true
		}
	}
	return Entry{}, false
}

// Entries returns every entry: basic codes in numeric order, then enhanced
// codes by class, subject and detail. The slice is a fresh copy.
func (c *Catalog) Entries() []Entry {
	out := make([]Entry, 0, len(c.order))
	for _, code := range c.order {
		out = append(out, c.entries[code].Entry)
	}
	return out
}

// FixSteps returns what to do about a classification: the deciding rule's
// own steps when it has them (they are the most specific), else the class's,
// else the steps of the code entry it resolved to.
func (c *Catalog) FixSteps(cl Classification) []string {
	if r, ok := c.byID[cl.Rule]; ok && len(r.fix) > 0 {
		return append([]string(nil), r.fix...)
	}
	if ci, ok := c.classes[cl.Class]; ok && len(ci.fix) > 0 {
		return append([]string(nil), ci.fix...)
	}
	if e, ok := c.entries[cl.Code]; ok {
		return append([]string(nil), e.Fix...)
	}
	return nil
}

// ClassDescription returns the one-paragraph description of a class, "" for
// a class the catalog does not know.
func (c *Catalog) ClassDescription(cl Class) string {
	if ci, ok := c.classes[cl]; ok {
		return ci.description
	}
	return ""
}

// Classes returns the known classes in name order; useful for metrics
// label sets and documentation.
func (c *Catalog) Classes() []Class {
	out := make([]Class, 0, len(c.classes))
	for cl := range c.classes {
		out = append(out, cl)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
