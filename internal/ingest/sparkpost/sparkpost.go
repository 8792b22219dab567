package sparkpost

import (
	"bytes"
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

const esp = "sparkpost"

// Adapter is SparkPost's webhook dialect.
type Adapter struct {
	auth           ingest.BasicAuthCheck
	tenantSubacct  bool   // tenant is subaccount_id
	tenantRcptMeta string // tenant is this rcpt_meta key
}

// New builds the adapter from REBOUND_SPARKPOST_BASIC_AUTH (or _FILE),
// REBOUND_SPARKPOST_TENANT_FROM and REBOUND_SPARKPOST_INSECURE_SKIP_VERIFY.
//
// Only basic auth is accepted. SparkPost's other scheme, OAuth 2.0, has SparkPost
// fetch a token from a token URL we would have to serve; a static bearer token is
// not something SparkPost can send, so a value without a colon is a mistake.
func New(env ingest.Env) (ingest.Adapter, error) {
	auth, err := ingest.NewBasicAuthCheck(env, esp, " (SparkPost's auth_type basic; OAuth 2.0 is not supported)")
	if err != nil {
		return nil, err
	}
	a := &Adapter{auth: auth}
	switch tf := strings.TrimSpace(env.TenantFrom(esp)); {
	case tf == "":
	case tf == "subaccount":
		a.tenantSubacct = true
	default:
		a.tenantRcptMeta = strings.TrimPrefix(tf, "rcpt_meta.")
	}
	return a, nil
}

// ESP implements ingest.Adapter.
func (a *Adapter) ESP() string { return esp }

// Authenticate implements ingest.Adapter: HTTP basic auth (webhook auth_type "basic").
func (a *Adapter) Authenticate(r *http.Request, _ []byte) error { return a.auth.Authenticate(r) }

// AuthenticateHeaders implements ingest.HeaderAuthenticator: basic auth is all there
// is to check, so it is checked before the body is read.
func (a *Adapter) AuthenticateHeaders(r *http.Request) error { return a.auth.Authenticate(r) }

// msysEvent is the inner event object, whatever its class key.
type msysEvent struct {
	Type         string                     `json:"type"`
	EventID      string                     `json:"event_id"`
	BounceClass  json.RawMessage            `json:"bounce_class"`
	ErrorCode    json.RawMessage            `json:"error_code"`
	RawReason    string                     `json:"raw_reason"`
	Reason       string                     `json:"reason"`
	RcptTo       string                     `json:"rcpt_to"`
	RawRcptTo    string                     `json:"raw_rcpt_to"`
	Timestamp    json.RawMessage            `json:"timestamp"`
	MessageID    string                     `json:"message_id"`
	MsgFrom      string                     `json:"msg_from"`
	SendingIP    string                     `json:"sending_ip"`
	IPPool       string                     `json:"ip_pool"`
	SubaccountID json.RawMessage            `json:"subaccount_id"`
	FBType       string                     `json:"fbtype"`
	RcptMeta     map[string]json.RawMessage `json:"rcpt_meta"`
}

// eventTypes maps the inner `type`; any other value (injection, open, click,
// generation_failure, …) is ignored. The two unsubscribes (the List-Unsubscribe header,
// the link in the message) put the recipient on SparkPost's list for this sender's
// non-transactional mail: the tenant's opt-out (ingest.MarkUnsubscribed).
var eventTypes = map[string]events.Type{
	"list_unsubscribe":     events.TypeDropped,
	"link_unsubscribe":     events.TypeDropped,
	"bounce":               events.TypeBounce,
	"out_of_band":          events.TypeBounce,
	"delay":                events.TypeDeferral,
	"policy_rejection":     events.TypeDropped,
	"generation_rejection": events.TypeDropped,
	"spam_complaint":       events.TypeComplaint,
	"delivery":             events.TypeDelivered,
}

// Parse implements ingest.Adapter. SparkPost posts a JSON array of {"msys":{<class>:{…}}};
// an empty {"msys":{}} is its connectivity ping and is ignored.
func (a *Adapter) Parse(body []byte) (ingest.Batch, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		return ingest.Batch{}, errors.New("sparkpost: body is not a JSON array of events")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(trimmed, &items); err != nil {
		return ingest.Batch{}, fmt.Errorf("sparkpost: body is not a JSON array: %v", err)
	}
	return ingest.MapItems(items, a.mapItem), nil
}

func (a *Adapter) mapItem(raw json.RawMessage) (events.Event, bool, error) {
	var wrap struct {
		Msys map[string]json.RawMessage `json:"msys"`
	}
	if err := json.Unmarshal(raw, &wrap); err != nil {
		return events.Event{}, false, fmt.Errorf("not a SparkPost {\"msys\":{…}} item: %v", err)
	}
	if wrap.Msys == nil {
		return events.Event{}, false, errors.New("msys: required")
	}
	if len(wrap.Msys) == 0 {
		return events.Event{}, true, nil // the ping
	}
	if len(wrap.Msys) > 1 {
		return events.Event{}, false, errors.New("msys: more than one event class in one item")
	}
	var inner json.RawMessage
	for _, v := range wrap.Msys {
		inner = v
	}
	var m msysEvent
	if err := json.Unmarshal(inner, &m); err != nil {
		return events.Event{}, false, fmt.Errorf("msys: not a SparkPost event object: %v", err)
	}
	if m.Type == "" {
		return events.Event{}, false, errors.New("type: required")
	}
	typ, ok := eventTypes[m.Type]
	if !ok {
		return events.Event{}, true, nil
	}
	if m.EventID == "" {
		return events.Event{}, false, errors.New("event_id: required")
	}
	at, err := eventTime(m.Timestamp)
	if err != nil {
		return events.Event{}, false, fmt.Errorf("timestamp: %v", err)
	}
	class := ingest.JSONScalar(m.BounceClass)
	e := events.Event{
		ID:         esp + ":" + m.EventID,
		ESP:        esp,
		Type:       typ,
		OccurredAt: at,
		Recipient:  ingest.FirstNonEmpty(m.RcptTo, m.RawRcptTo),
		Sender:     address(m.MsgFrom),
		SendingIP:  m.SendingIP,
		IPPool:     m.IPPool,
		MessageID:  m.MessageID,
		// policy_rejection: SparkPost refused to send (suppression list, policy);
		// classes 25 and 26 are its admin and Smart Send suppressions.
		ProviderSuppressed: m.Type == "policy_rejection" || class == "25" || class == "26",
	}
	verdict := map[string]string{"type": m.Type}
	ingest.SetNonEmpty(verdict, "bounce_class", class)
	ingest.SetNonEmpty(verdict, "fbtype", m.FBType)
	switch {
	case m.Type == "list_unsubscribe" || m.Type == "link_unsubscribe":
		ingest.MarkUnsubscribed(&e, "SparkPost "+m.Type)
	case typ != events.TypeComplaint:
		code := 0
		if c := ingest.JSONScalar(m.ErrorCode); c != "" {
			if n, err := strconv.Atoi(c); err == nil && n >= 200 && n <= 599 {
				code = n
			} else {
				verdict["error_code"] = c
			}
		}
		e.Reply = reply(code, ingest.FirstNonEmpty(m.RawReason, m.Reason))
	}
	e.ESPVerdict = verdict
	switch {
	case a.tenantSubacct:
		e.Tenant = ingest.JSONScalar(m.SubaccountID)
	case a.tenantRcptMeta != "":
		e.Tenant = ingest.JSONScalar(m.RcptMeta[a.tenantRcptMeta])
	}
	return e, false, nil // MapItems normalizes it
}

// reply takes the basic code from error_code and the rest from raw_reason, kept
// whole for the classifier.
func reply(code int, text string) events.Reply {
	text = ingest.ClipText(strings.TrimSpace(text))
	p := catalog.ParseReply(text)
	r := events.Reply{Code: code, Enhanced: p.Enhanced, Text: text}
	if r.Code == 0 {
		r.Code = p.Code
	}
	return r
}

// eventTime reads SparkPost's timestamp: unix seconds as a string (the documented
// form) or a number, or an ISO 8601 time.
func eventTime(raw json.RawMessage) (time.Time, error) {
	s := ingest.JSONScalar(raw)
	if s == "" {
		return time.Time{}, errors.New("required")
	}
	if t, err := ingest.ParseUnixTime(s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither unix seconds nor ISO 8601", s)
	}
	return t.UTC(), nil
}

// address keeps an envelope sender only if it is an address; a bad one is dropped
// rather than costing the event. Unlike ingest.OptionalAddress it strips no display
// name: msg_from is an envelope sender, never a header value.
func address(s string) string {
	if _, err := events.NormalizeAddress(s); err != nil {
		return ""
	}
	return s
}
