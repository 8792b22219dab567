package mailgun

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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

const esp = "mailgun"

// Adapter is Mailgun's JSON webhook dialect.
type Adapter struct {
	key       []byte // HTTP webhook signing key; empty: not configured (see verify)
	verify    ingest.Verifier
	tenantKey string // user-variables key that carries the tenant; "" = none
	guard     *ingest.ReplayGuard
}

// New builds the adapter from REBOUND_MAILGUN_SIGNING_KEY (or _FILE),
// REBOUND_MAILGUN_TENANT_FROM and REBOUND_MAILGUN_INSECURE_SKIP_VERIFY.
func New(env ingest.Env) (ingest.Adapter, error) {
	key, err := env.Secret(esp, "SIGNING_KEY")
	if err != nil {
		return nil, err
	}
	tenant := strings.TrimSpace(env.TenantFrom(esp))
	tenant = strings.TrimPrefix(tenant, "user-variables.")
	now := env.Now
	if now == nil {
		now = time.Now
	}
	return &Adapter{key: []byte(key), verify: env.Verifier(esp, "SIGNING_KEY", key != ""), tenantKey: tenant,
		guard: ingest.NewReplayGuard(ingest.DefaultReplayWindow, now)}, nil
}

// ESP implements ingest.Adapter.
func (a *Adapter) ESP() string { return esp }

// envelope is the request body: the signature and one event.
type envelope struct {
	Signature signature       `json:"signature"`
	EventData json.RawMessage `json:"event-data"`
	Domain    struct {
		Name string `json:"name"`
	} `json:"domain"`
}

type signature struct {
	Timestamp       json.RawMessage `json:"timestamp"` // a string in practice, an int in the docs' table
	Token           string          `json:"token"`
	Signature       string          `json:"signature"`
	ParentSignature string          `json:"parent-signature"` // subaccount events: the same MAC made with the parent account's key
}

// Authenticate implements ingest.Adapter: HMAC-SHA256(signing key, timestamp‖token)
// in hex must equal `signature` or, for a subaccount's event verified with the
// parent account's key, `parent-signature`. Then the timestamp must be within the
// replay window. Mailgun does not sign the body itself, so a captured signature could
// carry any event-data: the token is the one-time value that stops that, and the
// handler refuses one already used (ReplayToken), across replicas.
func (a *Adapter) Authenticate(_ *http.Request, body []byte) error {
	return a.verify.Authenticate(func() error { return a.verifySignature(body) })
}

// AuthenticateHeaders implements ingest.HeaderAuthenticator. Mailgun's signature is in
// the body, so only the shared rule can be applied first: an endpoint without a key
// refuses before reading anything.
func (a *Adapter) AuthenticateHeaders(*http.Request) error {
	return a.verify.Authenticate(func() error { return nil })
}

// ReplayToken implements ingest.Replayable: signature.token, once the signature has
// been checked against the configured key.
func (a *Adapter) ReplayToken(_ *http.Request, body []byte) (string, time.Duration) {
	if !a.verify.Checks() {
		return "", 0
	}
	s, _, err := parseSignature(body)
	if err != nil {
		return "", 0
	}
	return s.Token, a.guard.TokenTTL()
}

// parseSignature reads the signature object of a webhook body and the timestamp as
// text (it is signed as sent). It runs before anything is verified, on any bytes.
func parseSignature(body []byte) (signature, string, error) {
	var env struct {
		Signature signature `json:"signature"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return signature{}, "", fmt.Errorf("%w: body is not a JSON object with a signature", ingest.ErrUnauthenticated)
	}
	s := env.Signature
	ts := ingest.JSONScalar(s.Timestamp)
	if ts == "" || s.Token == "" || s.Signature == "" {
		return signature{}, "", fmt.Errorf("%w: signature.timestamp, .token or .signature missing", ingest.ErrUnauthenticated)
	}
	return s, ts, nil
}

func (a *Adapter) verifySignature(body []byte) error {
	s, ts, err := parseSignature(body)
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, a.key)
	mac.Write([]byte(ts))
	mac.Write([]byte(s.Token))
	want := []byte(hex.EncodeToString(mac.Sum(nil)))
	ok := ingest.Equal(want, []byte(strings.ToLower(s.Signature)))
	if s.ParentSignature != "" {
		// Evaluate both so the time taken does not say which one matched.
		ok = ingest.Equal(want, []byte(strings.ToLower(s.ParentSignature))) || ok
	}
	if !ok {
		return fmt.Errorf("%w: signature does not verify", ingest.ErrUnauthenticated)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: signature.timestamp %q is not unix seconds", ingest.ErrUnauthenticated, ts)
	}
	return a.guard.CheckTime(time.Unix(sec, 0))
}

// eventData is the part of `event-data` Rebound maps.
type eventData struct {
	ID        string          `json:"id"`
	Event     string          `json:"event"`
	Severity  string          `json:"severity"`
	Reason    string          `json:"reason"`
	Timestamp json.RawMessage `json:"timestamp"`
	Recipient string          `json:"recipient"`
	Envelope  struct {
		Sender    string `json:"sender"`
		SendingIP string `json:"sending-ip"`
	} `json:"envelope"`
	Message struct {
		Headers struct {
			MessageID string `json:"message-id"`
		} `json:"headers"`
	} `json:"message"`
	DeliveryStatus struct {
		Code         json.RawMessage `json:"code"`
		EnhancedCode string          `json:"enhanced-code"`
		Message      string          `json:"message"`
		Description  string          `json:"description"`
		MXHost       string          `json:"mx-host"`
	} `json:"delivery-status"`
	UserVariables map[string]json.RawMessage `json:"user-variables"`
}

// Parse implements ingest.Adapter. Mailgun posts one event per request.
func (a *Adapter) Parse(body []byte) (ingest.Batch, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return ingest.Batch{}, errors.New("mailgun: body is not a JSON object (the legacy form-encoded webhooks are not supported)")
	}
	var env envelope
	if err := json.Unmarshal(trimmed, &env); err != nil {
		return ingest.Batch{}, fmt.Errorf("mailgun: body is not a webhook object: %v", err)
	}
	if len(bytes.TrimSpace(env.EventData)) == 0 || bytes.Equal(bytes.TrimSpace(env.EventData), []byte("null")) {
		return ingest.Batch{}, errors.New("mailgun: body has no event-data")
	}
	e, ignored, err := a.mapEvent(env)
	switch {
	case err != nil:
		return ingest.Batch{Rejects: []ingest.Reject{{Index: 0, Reason: err.Error(), Raw: env.EventData}}}, nil
	case ignored:
		return ingest.Batch{Ignored: 1}, nil
	}
	return ingest.Batch{Events: []events.Event{e}}, nil
}

func (a *Adapter) mapEvent(env envelope) (events.Event, bool, error) {
	var d eventData
	if err := json.Unmarshal(env.EventData, &d); err != nil {
		return events.Event{}, false, fmt.Errorf("event-data: not a Mailgun event object: %v", err)
	}
	e := events.Event{ESP: esp}
	suppressed := strings.HasPrefix(d.Reason, "suppress-")
	switch d.Event {
	case "failed":
		switch {
		case suppressed:
			// Mailgun did not try: the address is on one of its suppression lists.
			e.Type, e.ProviderSuppressed = events.TypeDropped, true
		case d.Severity == "temporary":
			e.Type = events.TypeDeferral
		default:
			e.Type = events.TypeBounce
		}
	case "delivered":
		e.Type = events.TypeDelivered
	case "complained":
		e.Type = events.TypeComplaint
	case "unsubscribed":
		// The recipient used the unsubscribe link: Mailgun drops this domain's mail to
		// the address from now on (suppress-unsubscribe), so it is the tenant's opt-out now.
		e.Type = events.TypeDropped
	case "":
		return events.Event{}, false, errors.New("event-data.event: required")
	default:
		return events.Event{}, true, nil // accepted, rejected, opened, clicked, stored, …
	}
	id := d.ID
	if id == "" {
		id = env.Signature.Token
	}
	if id == "" {
		return events.Event{}, false, errors.New("event-data.id: required")
	}
	at, err := ingest.ParseUnixTime(ingest.JSONScalar(d.Timestamp))
	if err != nil {
		return events.Event{}, false, fmt.Errorf("event-data.timestamp: %v", err)
	}
	e.ID = esp + ":" + id
	e.OccurredAt = at
	e.Recipient = d.Recipient
	e.Sender = d.Envelope.Sender
	e.SendingIP = d.Envelope.SendingIP
	e.SendingDomain = env.Domain.Name
	e.MessageID = d.Message.Headers.MessageID
	ds := d.DeliveryStatus
	e.MTA = ds.MXHost
	verdict := map[string]string{"event": d.Event}
	ingest.SetNonEmpty(verdict, "severity", d.Severity)
	ingest.SetNonEmpty(verdict, "reason", d.Reason)
	switch {
	case d.Event == "unsubscribed":
		ingest.MarkUnsubscribed(&e, "Mailgun unsubscribed")
	case e.Type != events.TypeComplaint:
		code := 0
		if c := ingest.JSONScalar(ds.Code); c != "" {
			if n, err := strconv.Atoi(c); err == nil && n >= 200 && n <= 599 {
				code = n
			} else {
				// Mailgun's own codes (605 "previously bounced", 607 …) are not SMTP replies.
				verdict["delivery_code"] = c
			}
		}
		text := ds.Message
		if strings.TrimSpace(text) == "" {
			text = ds.Description
		}
		e.Reply = reply(code, ds.EnhancedCode, text)
		if optOut, ok := optOutReasons[d.Reason]; ok && suppressed {
			// The recipient's opt-out from this sender, whatever words Mailgun put
			// around it: their wish (suppressed for the tenant), not a dead address.
			// Mailgun's own text stays in the verdict.
			ingest.SetNonEmpty(verdict, "delivery_message", e.Reply.Text)
			e.Reply = events.Reply{Text: "synthetic (Mailgun failed " + d.Reason + ", not sent): " + optOut}
		}
	}
	e.ESPVerdict = verdict
	if a.tenantKey != "" {
		e.Tenant = ingest.JSONScalar(d.UserVariables[a.tenantKey])
	}
	if err := e.Normalize(); err != nil {
		return events.Event{}, false, err
	}
	return e, false, nil
}

// optOutReasons are the suppression reasons of a "failed" event that are the
// recipient's opt-out (an unsubscribe, a spam complaint), with their stand-in replies.
// "suppress-bounce" keeps Mailgun's own text (its
// bounce list: suppressed for everyone).
var optOutReasons = map[string]string{
	"suppress-unsubscribe": ingest.OptOutUnsubscribed,
	"suppress-complaint":   ingest.OptOutComplained,
}

// reply prefers Mailgun's structured code and enhanced code and parses the rest out
// of the text, which is kept whole for the classifier.
func reply(code int, enhanced, text string) events.Reply {
	text = ingest.ClipText(strings.TrimSpace(text))
	p := catalog.ParseReply(text)
	r := events.Reply{Code: code, Enhanced: strings.TrimSpace(enhanced), Text: text}
	if r.Code == 0 {
		r.Code = p.Code
	}
	if r.Enhanced == "" {
		r.Enhanced = p.Enhanced
	}
	return r
}
