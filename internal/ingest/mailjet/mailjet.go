package mailjet

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
)

const (
	esp       = "mailjet"
	tenantVar = "REBOUND_MAILJET_TENANT_FROM"
)

// tenantSource is where the tenant is read from.
type tenantSource int

const (
	tenantNone tenantSource = iota
	tenantCampaign
	tenantCustomID
	tenantPayload    // the whole Payload string
	tenantPayloadKey // a key of the JSON object in Payload
)

// Adapter is Mailjet's Event API dialect.
type Adapter struct {
	auth       ingest.BasicAuthCheck
	tenantFrom tenantSource
	payloadKey string
}

// New builds the adapter from REBOUND_MAILJET_BASIC_AUTH (or _FILE),
// REBOUND_MAILJET_TENANT_FROM and REBOUND_MAILJET_INSECURE_SKIP_VERIFY.
func New(env ingest.Env) (ingest.Adapter, error) {
	auth, err := ingest.NewBasicAuthCheck(env, esp, "")
	if err != nil {
		return nil, err
	}
	a := &Adapter{auth: auth}
	switch tf := strings.TrimSpace(env.TenantFrom(esp)); {
	case tf == "":
	case strings.EqualFold(tf, "customcampaign"):
		a.tenantFrom = tenantCampaign
	case strings.EqualFold(tf, "customid"):
		a.tenantFrom = tenantCustomID
	case strings.EqualFold(tf, "payload"):
		a.tenantFrom = tenantPayload
	case strings.HasPrefix(strings.ToLower(tf), "payload.") && len(tf) > len("payload."):
		a.tenantFrom, a.payloadKey = tenantPayloadKey, tf[len("payload."):]
	default:
		return nil, fmt.Errorf("%s: %q is not customcampaign, CustomID, Payload or Payload.<key>", tenantVar, tf)
	}
	return a, nil
}

// ESP implements ingest.Adapter.
func (a *Adapter) ESP() string { return esp }

// Authenticate implements ingest.Adapter: HTTP basic auth, put in the event callback
// URL (https://user:password@host/webhooks/mailjet); Mailjet signs nothing.
func (a *Adapter) Authenticate(r *http.Request, _ []byte) error { return a.auth.Authenticate(r) }

// AuthenticateHeaders implements ingest.HeaderAuthenticator: basic auth is all there
// is to check, so it is checked before the body is read.
func (a *Adapter) AuthenticateHeaders(r *http.Request) error { return a.auth.Authenticate(r) }

// item is one Mailjet event.
type item struct {
	Event          string          `json:"event"`
	Time           json.RawMessage `json:"time"`
	MessageID      json.RawMessage `json:"MessageID"` // int64: kept as its literal
	LegacyID       json.RawMessage `json:"mj_message_id"`
	Email          string          `json:"email"`
	CustomCampaign string          `json:"customcampaign"`
	CustomID       string          `json:"CustomID"`
	Payload        string          `json:"Payload"`
	Blocked        bool            `json:"blocked"`
	HardBounce     bool            `json:"hard_bounce"`
	ErrorRelatedTo string          `json:"error_related_to"`
	Error          string          `json:"error"`
	Comment        string          `json:"comment"`
	SMTPReply      string          `json:"smtp_reply"`
	Source         string          `json:"source"`
}

// Parse implements ingest.Adapter: one event object, or an array of them.
func (a *Adapter) Parse(body []byte) (ingest.Batch, error) {
	items, err := ingest.ItemsOf(body)
	if err != nil {
		return ingest.Batch{}, fmt.Errorf("mailjet: %w", err)
	}
	return ingest.MapItems(items, a.mapItem), nil
}

func (a *Adapter) mapItem(raw json.RawMessage) (events.Event, bool, error) {
	var it item
	if err := json.Unmarshal(raw, &it); err != nil {
		return events.Event{}, false, fmt.Errorf("not a Mailjet event object: %v", err)
	}
	e := events.Event{ESP: esp}
	verdict := map[string]string{"event": it.Event}
	switch it.Event {
	case "bounce":
		e.Type = events.TypeBounce
		verdict["hard_bounce"] = strconv.FormatBool(it.HardBounce)
		verdict["blocked"] = strconv.FormatBool(it.Blocked)
	case "blocked":
		// Mailjet refused to send. Except for a duplicate in a campaign, that is
		// because the address is on its block list (preblocked, or after a bounce
		// or complaint).
		e.Type = events.TypeDropped
		e.ProviderSuppressed = !strings.EqualFold(it.Error, "duplicate in campaign")
	case "spam":
		e.Type = events.TypeComplaint
		ingest.SetNonEmpty(verdict, "source", it.Source)
	case "sent":
		e.Type = events.TypeDelivered
	case "":
		return events.Event{}, false, errors.New("event: required")
	default:
		// open, click, and unsub: an unsub is the recipient leaving one contact list
		// (mj_list_id), and Rebound's list has no lists: suppressing for the tenant
		// would also stop the lists and the transactional mail they still want.
		return events.Event{}, true, nil
	}
	ts := ingest.JSONScalar(it.Time)
	at, err := unixTime(ts)
	if err != nil {
		return events.Event{}, false, fmt.Errorf("time: %v", err)
	}
	msgID := ingest.FirstNonEmpty(ingest.JSONScalar(it.MessageID), ingest.JSONScalar(it.LegacyID))
	// Mailjet gives events no ID: the reference's composite keeps retries of one
	// event the same and two events apart.
	e.ID = ingest.CompositeID(esp, msgID, it.Event, ts, it.Email)
	e.OccurredAt = at
	e.Recipient = it.Email
	e.MessageID = msgID
	ingest.SetNonEmpty(verdict, "error_related_to", it.ErrorRelatedTo)
	ingest.SetNonEmpty(verdict, "error", it.Error)
	switch e.Type {
	case events.TypeBounce, events.TypeDropped:
		e.Reply = bounceReply(it.ErrorRelatedTo, it.Error, it.Comment)
	case events.TypeDelivered:
		e.Reply = textReply(it.SMTPReply)
	}
	e.ESPVerdict = verdict
	e.Tenant = a.tenant(&it)
	return e, false, nil // MapItems normalizes it
}

func (a *Adapter) tenant(it *item) string {
	switch a.tenantFrom {
	case tenantCampaign:
		return it.CustomCampaign
	case tenantCustomID:
		return it.CustomID
	case tenantPayload:
		return it.Payload
	case tenantPayloadKey:
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(it.Payload), &m) == nil {
			return ingest.JSONScalar(m[a.payloadKey])
		}
	}
	return ""
}

// standIns replace the remote reply Mailjet does not give on bounce and blocked
// events: its (error_related_to, error) labels, reworded so that the catalog
// classifies them as Mailjet means them. Each was checked with `worker classify`;
// the labels themselves are kept in esp_verdict. Mailjet's own word "spam" must not
// appear: the catalog reads it as a content rejection, but error_related_to "spam"
// means the receiver refused the sender.
var standIns = map[[2]string]string{
	{"recipient", "user unknown"}:        "mailjet: recipient unknown (user unknown)",
	{"recipient", "mailbox inactive"}:    "mailjet: mailbox is inactive",
	{"recipient", "quota exceeded"}:      "mailjet: mailbox quota exceeded",
	{"domain", "invalid domain"}:         "mailjet: recipient domain does not exist (invalid domain)",
	{"domain", "no mail host"}:           "mailjet: no MX record for the recipient domain (no mail host)",
	{"domain", "relay/access denied"}:    "mailjet: relay access denied by the recipient domain",
	{"domain", "greylisted"}:             "mailjet: greylisted by the recipient server, try again later",
	{"spam", "sender blocked"}:           senderBlocked,
	{"spam", "content blocked"}:          "mailjet: message content rejected by the recipient server",
	{"spam", "policy issue"}:             "mailjet: rejected by the recipient server's local policy",
	{"system", "system issue"}:           "mailjet: recipient server system error",
	{"system", "protocol issue"}:         "mailjet: protocol issue with the recipient server",
	{"system", "connection issue"}:       "mailjet: could not connect to the recipient server (connection issue)",
	{"mailjet", "preblocked"}:            "mailjet: address preblocked by Mailjet",
	{"mailjet", "duplicate in campaign"}: "mailjet: duplicate in campaign",
}

const senderBlocked = "mailjet: sender blocked by the recipient server (reputation)"

// bounceReply is the remote reply when Mailjet's comment carries one, else the
// stand-in for its labels.
func bounceReply(relatedTo, errLabel, comment string) events.Reply {
	if r := textReply(comment); r.Code != 0 || r.Enhanced != "" {
		return r
	}
	rel, el := strings.ToLower(strings.TrimSpace(relatedTo)), strings.ToLower(strings.TrimSpace(errLabel))
	if t, ok := standIns[[2]string{rel, el}]; ok {
		return events.Reply{Text: t}
	}
	switch {
	case rel == "spam":
		return events.Reply{Text: senderBlocked} // never a recipient verdict
	case rel == "" && el == "":
		return events.Reply{}
	}
	return events.Reply{Text: ingest.ClipText("mailjet: " + rel + ": " + el)}
}

// textReply parses a free-text reply, kept whole for the classifier.
func textReply(text string) events.Reply {
	text = ingest.ClipText(strings.TrimSpace(text))
	if text == "" {
		return events.Reply{}
	}
	p := catalog.ParseReply(text)
	return events.Reply{Code: p.Code, Enhanced: p.Enhanced, Text: text}
}

// unixTime reads unix seconds.
func unixTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("required (unix seconds)")
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not unix seconds", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}
