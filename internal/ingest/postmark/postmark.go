package postmark

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
)

const esp = "postmark"

// Adapter is Postmark's webhook dialect.
type Adapter struct {
	auth       ingest.BasicAuthCheck
	tenantTag  bool   // tenant is the message's Tag
	tenantMeta string // tenant is this Metadata key
}

// New builds the adapter from REBOUND_POSTMARK_BASIC_AUTH (or _FILE),
// REBOUND_POSTMARK_TENANT_FROM and REBOUND_POSTMARK_INSECURE_SKIP_VERIFY.
func New(env ingest.Env) (ingest.Adapter, error) {
	auth, err := ingest.NewBasicAuthCheck(env, esp, "")
	if err != nil {
		return nil, err
	}
	a := &Adapter{auth: auth}
	switch tf := strings.TrimSpace(env.TenantFrom(esp)); {
	case tf == "":
	case strings.EqualFold(tf, "tag"):
		a.tenantTag = true
	default:
		a.tenantMeta = strings.TrimPrefix(tf, "metadata.")
	}
	return a, nil
}

// ESP implements ingest.Adapter.
func (a *Adapter) ESP() string { return esp }

// Authenticate implements ingest.Adapter: HTTP basic auth, the only credential Postmark
// can send (in the webhook URL or its HttpAuth setting).
func (a *Adapter) Authenticate(r *http.Request, _ []byte) error { return a.auth.Authenticate(r) }

// AuthenticateHeaders implements ingest.HeaderAuthenticator: basic auth is all there
// is to check, so it is checked before the body is read.
func (a *Adapter) AuthenticateHeaders(r *http.Request) error { return a.auth.Authenticate(r) }

// record is one Postmark webhook body; Bounce, SpamComplaint, Delivery and
// SubscriptionChange share it.
type record struct {
	RecordType  string                     `json:"RecordType"`
	ID          json.Number                `json:"ID"`
	Type        string                     `json:"Type"`
	TypeCode    json.Number                `json:"TypeCode"`
	MessageID   string                     `json:"MessageID"`
	Tag         string                     `json:"Tag"`
	Details     string                     `json:"Details"`
	Email       string                     `json:"Email"`
	Recipient   string                     `json:"Recipient"`
	From        string                     `json:"From"`
	BouncedAt   string                     `json:"BouncedAt"`
	DeliveredAt string                     `json:"DeliveredAt"`
	Inactive    bool                       `json:"Inactive"`
	Metadata    map[string]json.RawMessage `json:"Metadata"`
	// SubscriptionChange only.
	ChangedAt         string `json:"ChangedAt"`
	Origin            string `json:"Origin"` // Recipient, Customer or Admin
	SuppressSending   bool   `json:"SuppressSending"`
	SuppressionReason string `json:"SuppressionReason"` // HardBounce, SpamComplaint, ManualSuppression
}

// bounceKind is what a bounce Type means to Rebound. text stands in for the remote
// reply when Postmark gives no Details; each was checked with `worker classify`.
type bounceKind struct {
	typ        events.Type
	suppressed bool
	text       string
}

// bounceKinds maps Postmark's bounce Type; types not listed (AutoResponder,
// AddressChange, Subscribe, OpenRelayTest, SMTPApiError, …) are ignored.
var bounceKinds = map[string]bounceKind{
	"HardBounce":          {events.TypeBounce, false, "postmark: hard bounce, recipient unknown"},
	"BadEmailAddress":     {events.TypeBounce, false, "postmark: bad email address, invalid recipient address"},
	"SoftBounce":          {events.TypeBounce, false, "postmark: soft bounce"},
	"DnsError":            {events.TypeBounce, false, "postmark: temporary DNS error for the recipient domain"},
	"Transient":           {events.TypeDeferral, false, "postmark: transient failure, delivery delayed"},
	"Blocked":             {events.TypeBounce, false, "postmark: blocked by the recipient server (sender reputation)"},
	"DMARCPolicy":         {events.TypeBounce, false, "postmark: rejected by the recipient's DMARC policy"},
	"SpamNotification":    {events.TypeBounce, false, "postmark: spam notification, the recipient server flagged the sender as a known spam source"},
	"VirusNotification":   {events.TypeBounce, false, "postmark: virus notification, the recipient server found the message infected"},
	"Unknown":             {events.TypeBounce, false, "postmark: unknown bounce type"},
	"SpamComplaint":       {events.TypeComplaint, false, ""},
	"ManuallyDeactivated": {events.TypeDropped, true, "postmark: sending to this address was turned off in Postmark"},
}

// typeNames names the TypeCodes of bounceKinds, for a record that has only the code.
var typeNames = map[string]string{
	"1": "HardBounce", "100000": "BadEmailAddress", "4096": "SoftBounce", "256": "DnsError",
	"2": "Transient", "100006": "Blocked", "100009": "DMARCPolicy", "512": "SpamNotification",
	"8192": "VirusNotification", "2048": "Unknown", "100001": "SpamComplaint", "100002": "ManuallyDeactivated",
}

// Parse implements ingest.Adapter. Postmark posts one record per request.
func (a *Adapter) Parse(body []byte) (ingest.Batch, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return ingest.Batch{}, errors.New("postmark: body is not a JSON object")
	}
	e, ignored, err := a.mapRecord(trimmed)
	switch {
	case err != nil:
		return ingest.Batch{Rejects: []ingest.Reject{{Index: 0, Reason: err.Error(), Raw: trimmed}}}, nil
	case ignored:
		return ingest.Batch{Ignored: 1}, nil
	}
	return ingest.Batch{Events: []events.Event{e}}, nil
}

func (a *Adapter) mapRecord(raw []byte) (events.Event, bool, error) {
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return events.Event{}, false, fmt.Errorf("not a Postmark webhook record: %v", err)
	}
	e := events.Event{ESP: esp, MessageID: rec.MessageID, Sender: address(rec.From)}
	verdict := map[string]string{}
	ingest.SetNonEmpty(verdict, "record_type", rec.RecordType)
	var stamp string
	switch rec.RecordType {
	case "Bounce", "SpamComplaint", "":
		if rec.RecordType == "" && rec.Type == "" {
			return events.Event{}, false, errors.New("RecordType: required")
		}
		name := rec.Type
		if name == "" {
			name = typeNames[rec.TypeCode.String()]
		}
		kind, ok := bounceKinds[name]
		if rec.RecordType == "SpamComplaint" {
			kind, ok = bounceKinds["SpamComplaint"], true
		}
		if !ok {
			return events.Event{}, true, nil
		}
		if rec.ID == "" {
			return events.Event{}, false, errors.New("ID: required")
		}
		e.ID = esp + ":" + rec.ID.String()
		e.Type = kind.typ
		e.Recipient = rec.Email
		// Inactive: Postmark has deactivated the address and will not send to it.
		e.ProviderSuppressed = kind.suppressed || rec.Inactive
		stamp = rec.BouncedAt
		ingest.SetNonEmpty(verdict, "type", rec.Type)
		ingest.SetNonEmpty(verdict, "type_code", rec.TypeCode.String())
		if e.Type != events.TypeComplaint {
			e.Reply = reply(rec.Details, kind.text)
		}
	case "Delivery":
		e.Type = events.TypeDelivered
		e.Recipient = rec.Recipient
		stamp = rec.DeliveredAt
		// Delivery records carry no ID of their own.
		e.ID = ingest.CompositeID(esp, rec.MessageID, rec.RecordType, rec.Recipient, rec.DeliveredAt)
		e.Reply = reply(rec.Details, "")
	case "SubscriptionChange":
		// Only a manual suppression is news: an unsubscribe through Postmark's link
		// (origin Recipient) or the account's own entry (Customer, Admin). Hard bounces
		// and complaints arrive as their own records; a reactivation lifts nothing here
		// (a suppression is lifted through Rebound's API).
		if !rec.SuppressSending || rec.SuppressionReason != "ManualSuppression" {
			return events.Event{}, true, nil
		}
		e.Type, e.ProviderSuppressed = events.TypeDropped, true
		e.Recipient = rec.Recipient
		stamp = rec.ChangedAt
		e.ID = ingest.CompositeID(esp, rec.MessageID, rec.RecordType, rec.Recipient, rec.ChangedAt)
		ingest.SetNonEmpty(verdict, "suppression_reason", rec.SuppressionReason)
		ingest.SetNonEmpty(verdict, "origin", rec.Origin)
		// The recipient's wish, or the sender's choice, about this sender's mail:
		// suppressed for the tenant (recipient_opted_out), not for everyone.
		e.Reply = events.Reply{Text: "synthetic (Postmark SubscriptionChange ManualSuppression, origin " + rec.Origin +
			", not sent): 550 5.7.1 Unsubscribed Address: sending to this recipient was suppressed for this sender"}
	default:
		return events.Event{}, true, nil // Open, Click, …
	}
	at, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(stamp))
	if err != nil {
		return events.Event{}, false, fmt.Errorf("BouncedAt/DeliveredAt/ChangedAt: %q is not an ISO 8601 time", stamp)
	}
	e.OccurredAt = at
	e.ESPVerdict = verdict
	switch {
	case a.tenantTag:
		e.Tenant = rec.Tag
	case a.tenantMeta != "":
		e.Tenant = ingest.JSONScalar(rec.Metadata[a.tenantMeta])
	}
	if err := e.Normalize(); err != nil {
		return events.Event{}, false, err
	}
	return e, false, nil
}

// reply reads the remote reply out of Details, kept whole for the classifier. Postmark
// has no code fields; without Details the bounce type's stand-in text is used.
func reply(details, fallback string) events.Reply {
	text := ingest.ClipText(strings.TrimSpace(details))
	if text == "" {
		return events.Reply{Text: fallback}
	}
	p := catalog.ParseReply(text)
	return events.Reply{Code: p.Code, Enhanced: p.Enhanced, Text: text}
}

// address extracts the address from a From value that may carry a display name; one
// that is not an address is dropped rather than costing the event. Unlike
// ingest.OptionalAddress it always parses the value as a header (comments, encoded
// names), as Postmark's From is the message's header verbatim.
func address(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if m, err := mail.ParseAddress(s); err == nil {
		s = m.Address
	}
	if _, err := events.NormalizeAddress(s); err != nil {
		return ""
	}
	return s
}
