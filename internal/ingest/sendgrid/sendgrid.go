package sendgrid

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
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

const esp = "sendgrid"

// Headers of the Signed Event Webhook.
const (
	HeaderSignature = "X-Twilio-Email-Event-Webhook-Signature"
	HeaderTimestamp = "X-Twilio-Email-Event-Webhook-Timestamp"
)

const keyVar = "REBOUND_SENDGRID_PUBLIC_KEY"

// Adapter is the SendGrid Event Webhook dialect.
type Adapter struct {
	key       *ecdsa.PublicKey // nil: not configured (see verify)
	verify    ingest.Verifier
	tenantKey string // top-level key (a custom arg) that carries the tenant; "" = none
	guard     *ingest.ReplayGuard
}

// New builds the adapter from REBOUND_SENDGRID_PUBLIC_KEY (or _FILE),
// REBOUND_SENDGRID_TENANT_FROM and REBOUND_SENDGRID_INSECURE_SKIP_VERIFY. A key that
// is set but cannot be read as an ECDSA P-256 public key is an error.
func New(env ingest.Env) (ingest.Adapter, error) {
	secret, err := env.Secret(esp, "PUBLIC_KEY")
	if err != nil {
		return nil, err
	}
	a := &Adapter{tenantKey: strings.TrimSpace(env.TenantFrom(esp))}
	if secret != "" {
		if a.key, err = ParsePublicKey(secret); err != nil {
			return nil, fmt.Errorf("%s: %w", keyVar, err)
		}
	}
	a.verify = env.Verifier(esp, "PUBLIC_KEY", a.key != nil)
	now := env.Now
	if now == nil {
		now = time.Now
	}
	a.guard = ingest.NewReplayGuard(ingest.DefaultReplayWindow, now)
	return a, nil
}

// ParsePublicKey reads SendGrid's verification key: base64 of a DER
// SubjectPublicKeyInfo as the dashboard shows it, or the same key in PEM armour.
func ParsePublicKey(s string) (*ecdsa.PublicKey, error) {
	s = strings.TrimSpace(s)
	var der []byte
	if strings.HasPrefix(s, "-----BEGIN") {
		blk, _ := pem.Decode([]byte(s))
		if blk == nil {
			return nil, errors.New("not a PEM block")
		}
		der = blk.Bytes
	} else {
		var err error
		if der, err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, errors.New("not base64 (want the verification key as SendGrid shows it, or PEM)")
		}
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("not a public key: %v", err)
	}
	ec, ok := k.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 public key")
	}
	return ec, nil
}

// ESP implements ingest.Adapter.
func (a *Adapter) ESP() string { return esp }

// Authenticate implements ingest.Adapter: an ECDSA P-256/SHA-256 signature over the
// timestamp header followed by the raw body, and the timestamp within the replay
// window. SendGrid signs no one-time token; a replay inside the window carries
// sg_event_ids that stream de-duplication already knows.
func (a *Adapter) Authenticate(r *http.Request, body []byte) error {
	return a.verify.Authenticate(func() error { return a.verifySignature(r, body) })
}

// AuthenticateHeaders implements ingest.HeaderAuthenticator: the signature and
// timestamp headers must be there, the signature base64 and the timestamp inside the
// replay window, before the body is read.
func (a *Adapter) AuthenticateHeaders(r *http.Request) error {
	return a.verify.Authenticate(func() error {
		_, _, err := a.checkHeaders(r)
		return err
	})
}

// checkHeaders returns the timestamp header as signed and the decoded signature.
func (a *Adapter) checkHeaders(r *http.Request) (string, []byte, error) {
	sigB64 := strings.TrimSpace(r.Header.Get(HeaderSignature))
	ts := strings.TrimSpace(r.Header.Get(HeaderTimestamp))
	if sigB64 == "" || ts == "" {
		return "", nil, fmt.Errorf("%w: missing %s or %s", ingest.ErrUnauthenticated, HeaderSignature, HeaderTimestamp)
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return "", nil, fmt.Errorf("%w: signature is not base64", ingest.ErrUnauthenticated)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		// The value is not echoed: nothing about it is verified yet.
		return "", nil, fmt.Errorf("%w: %s is not unix seconds", ingest.ErrUnauthenticated, HeaderTimestamp)
	}
	if err := a.guard.CheckTime(time.Unix(sec, 0)); err != nil {
		return "", nil, err
	}
	return ts, sig, nil
}

func (a *Adapter) verifySignature(r *http.Request, body []byte) error {
	ts, sig, err := a.checkHeaders(r)
	if err != nil {
		return err
	}
	h := sha256.New()
	h.Write([]byte(ts))
	h.Write(body)
	if !ecdsa.VerifyASN1(a.key, h.Sum(nil), sig) {
		return fmt.Errorf("%w: signature does not verify", ingest.ErrUnauthenticated)
	}
	return nil
}

// item is one element of the posted array; only the fields Rebound maps.
type item struct {
	Email                string          `json:"email"`
	Timestamp            json.RawMessage `json:"timestamp"`
	Event                string          `json:"event"`
	Type                 string          `json:"type"`
	Status               string          `json:"status"`
	Reason               string          `json:"reason"`
	Response             string          `json:"response"`
	Attempt              json.RawMessage `json:"attempt"`
	BounceClassification string          `json:"bounce_classification"`
	SGEventID            string          `json:"sg_event_id"`
	SGMessageID          string          `json:"sg_message_id"`
	SMTPID               string          `json:"smtp-id"`
	IP                   string          `json:"ip"`
	Pool                 json.RawMessage `json:"pool"`
}

// eventTypes maps SendGrid's `event` to ours; any other value is ignored.
// "unsubscribe" (the global unsubscribe: SendGrid drops this sender's mail to the
// address from now on) becomes the tenant's opt-out (ingest.MarkUnsubscribed).
// "group_unsubscribe" stays ignored: the recipient left one unsubscribe group, and
// Rebound's list has no groups, so suppressing for the whole tenant would also stop the
// groups the recipient still wants (SendGrid keeps enforcing the group itself).
var eventTypes = map[string]events.Type{
	"bounce":      events.TypeBounce,
	"deferred":    events.TypeDeferral,
	"spamreport":  events.TypeComplaint,
	"dropped":     events.TypeDropped,
	"delivered":   events.TypeDelivered,
	"unsubscribe": events.TypeDropped,
}

// suppressedReasons are `dropped` reasons meaning the address is already on one of
// SendGrid's suppression lists.
var suppressedReasons = map[string]bool{
	"bounced address":        true,
	"unsubscribed address":   true,
	"spam reporting address": true,
}

// Parse implements ingest.Adapter. SendGrid posts a JSON array; a single object is
// accepted as a batch of one.
func (a *Adapter) Parse(body []byte) (ingest.Batch, error) {
	items, err := ingest.ItemsOf(body)
	if err != nil {
		return ingest.Batch{}, fmt.Errorf("sendgrid: %w", err)
	}
	return ingest.MapItems(items, a.mapItem), nil
}

// mapItem turns one array element into an event, reports it as ignored (an event
// type Rebound does not act on), or says why it cannot be mapped.
func (a *Adapter) mapItem(raw json.RawMessage) (events.Event, bool, error) {
	var it item
	if err := json.Unmarshal(raw, &it); err != nil {
		return events.Event{}, false, fmt.Errorf("not a SendGrid event object: %v", err)
	}
	if it.Event == "" {
		return events.Event{}, false, errors.New("event: required")
	}
	typ, ok := eventTypes[it.Event]
	if !ok {
		return events.Event{}, true, nil
	}
	if it.SGEventID == "" {
		return events.Event{}, false, errors.New("sg_event_id: required")
	}
	at, err := unixTime(it.Timestamp)
	if err != nil {
		return events.Event{}, false, fmt.Errorf("timestamp: %v", err)
	}
	e := events.Event{
		ID:         esp + ":" + it.SGEventID,
		ESP:        esp,
		Type:       typ,
		OccurredAt: at,
		Recipient:  it.Email,
		SendingIP:  it.IP,
		IPPool:     poolName(it.Pool),
		MessageID:  ingest.FirstNonEmpty(it.SMTPID, it.SGMessageID),
	}
	verdict := map[string]string{"event": it.Event}
	switch typ {
	case events.TypeBounce:
		e.Reply = reply(it.Status, it.Reason)
		ingest.SetNonEmpty(verdict, "type", it.Type)
		ingest.SetNonEmpty(verdict, "bounce_classification", it.BounceClassification)
	case events.TypeDeferral, events.TypeDelivered:
		e.Reply = reply(it.Status, it.Response)
		ingest.SetNonEmpty(verdict, "attempt", ingest.JSONScalar(it.Attempt))
	case events.TypeDropped:
		if it.Event == "unsubscribe" {
			ingest.MarkUnsubscribed(&e, "SendGrid unsubscribe")
			break
		}
		// The reason is SendGrid's own label, not a remote server's reply: say so, and
		// keep SendGrid's made-up status out of the enhanced code.
		e.ProviderSuppressed = suppressedReasons[strings.ToLower(strings.TrimSpace(it.Reason))]
		if it.Reason != "" {
			e.Reply = events.Reply{Text: ingest.ClipText("sendgrid dropped: " + it.Reason)}
		}
		ingest.SetNonEmpty(verdict, "reason", it.Reason)
		ingest.SetNonEmpty(verdict, "status", it.Status)
	}
	e.ESPVerdict = verdict
	if a.tenantKey != "" {
		var all map[string]json.RawMessage
		if err := json.Unmarshal(raw, &all); err == nil {
			e.Tenant = ingest.JSONScalar(all[a.tenantKey])
		}
	}
	return e, false, nil // MapItems normalizes it
}

// reply combines SendGrid's enhanced `status` with the free text, which carries the
// basic code. The text is kept whole: the wrapper around a reply ("… said:",
// "(in reply to MAIL FROM command)") tells the classifier who was refused.
func reply(status, text string) events.Reply {
	text = ingest.ClipText(strings.TrimSpace(text))
	p := catalog.ParseReply(text)
	r := events.Reply{Code: p.Code, Enhanced: strings.TrimSpace(status), Text: text}
	if r.Enhanced == "" {
		r.Enhanced = p.Enhanced
	}
	return r
}

// unixTime reads unix seconds given as a JSON integer, float or numeric string.
// It is not ingest.ParseUnixTime: SendGrid's fraction (it sends whole seconds in
// practice) keeps the nanoseconds of its float64 value instead of being rounded to
// the microsecond, and the adapter's behaviour is kept as it is.
func unixTime(raw json.RawMessage) (time.Time, error) {
	s := ingest.JSONScalar(raw)
	if s == "" {
		return time.Time{}, errors.New("required (unix seconds)")
	}
	if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(sec, 0).UTC(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0 && f <= 1<<40) {
		return time.Time{}, fmt.Errorf("%q is not unix seconds", s)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
}

// poolName reads `pool`, an object {"name","id"} in SendGrid's payloads, or a string.
func poolName(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var p struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(raw, &p) == nil {
			return p.Name
		}
		return ""
	}
	return ingest.JSONScalar(raw)
}
