package mailersend

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
)

const esp = "mailersend"

// maxBody bounds what Parse reads: MailerSend sends one activity per POST, so a body
// this large is not from MailerSend.
const maxBody = 1 << 20

// Adapter is MailerSend's webhook dialect.
type Adapter struct {
	secret []byte // empty: not configured (see verify)
	verify ingest.Verifier
	tenant tenantFrom
}

// tenantFrom is REBOUND_MAILERSEND_TENANT_FROM, parsed.
type tenantFrom struct {
	kind string // "", "tag" or "var"
	arg  string // tag prefix or variable name
}

// New builds the adapter from REBOUND_MAILERSEND_SIGNING_SECRET (or its _FILE),
// REBOUND_MAILERSEND_TENANT_FROM and REBOUND_MAILERSEND_INSECURE_SKIP_VERIFY.
func New(env ingest.Env) (ingest.Adapter, error) {
	secret, err := env.Secret(esp, "SIGNING_SECRET")
	if err != nil {
		return nil, err
	}
	tf, err := parseTenantFrom(env.TenantFrom(esp))
	if err != nil {
		return nil, fmt.Errorf("REBOUND_MAILERSEND_TENANT_FROM: %w", err)
	}
	return &Adapter{secret: []byte(secret), verify: env.Verifier(esp, "SIGNING_SECRET", secret != ""), tenant: tf}, nil
}

func parseTenantFrom(s string) (tenantFrom, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return tenantFrom{}, nil
	}
	kind, arg, ok := strings.Cut(s, ":")
	if !ok || arg == "" || (kind != "tag" && kind != "var") {
		return tenantFrom{}, fmt.Errorf("%q: want tag:<prefix> or var:<name>", s)
	}
	return tenantFrom{kind: kind, arg: arg}, nil
}

// ESP implements ingest.Adapter.
func (a *Adapter) ESP() string { return esp }

// Authenticate implements ingest.Adapter: header Signature is the lower-hex
// HMAC-SHA256 of the raw body under the webhook's signing secret.
func (a *Adapter) Authenticate(r *http.Request, body []byte) error {
	return a.verify.Authenticate(func() error { return a.verifySignature(r, body) })
}

// AuthenticateHeaders implements ingest.HeaderAuthenticator: the Signature header
// must be there before the body is read (MailerSend signs the body alone).
func (a *Adapter) AuthenticateHeaders(r *http.Request) error {
	return a.verify.Authenticate(func() error {
		if strings.TrimSpace(r.Header.Get("Signature")) == "" {
			return fmt.Errorf("%w: no Signature header", ingest.ErrUnauthenticated)
		}
		return nil
	})
}

func (a *Adapter) verifySignature(r *http.Request, body []byte) error {
	got := strings.TrimSpace(r.Header.Get("Signature"))
	if got == "" {
		return fmt.Errorf("%w: no Signature header", ingest.ErrUnauthenticated)
	}
	mac := hmac.New(sha256.New, a.secret)
	mac.Write(body)
	want := make([]byte, hex.EncodedLen(sha256.Size))
	hex.Encode(want, mac.Sum(nil))
	if !ingest.Equal([]byte(strings.ToLower(got)), want) {
		return fmt.Errorf("%w: Signature does not match the body", ingest.ErrUnauthenticated)
	}
	return nil
}

// payload is the part of a MailerSend activity webhook that Rebound reads.
type payload struct {
	Type      string `json:"type"`
	CreatedAt string `json:"created_at"`
	Data      struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		CreatedAt string `json:"created_at"`
		Email     struct {
			Status  string `json:"status"`
			From    string `json:"from"`
			Message struct {
				ID string `json:"id"`
			} `json:"message"`
			Recipient struct {
				Email string `json:"email"`
			} `json:"recipient"`
			Tags      []string                   `json:"tags"`
			Variables map[string]json.RawMessage `json:"variables"`
		} `json:"email"`
		Morph struct {
			Object         string `json:"object"`
			Reason         string `json:"reason"`
			ReadableReason string `json:"readable_reason"`
		} `json:"morph"`
	} `json:"data"`
}

// types maps MailerSend activity names onto canonical types; anything else (sent,
// opened, clicked, surveys) is counted as ignored. "unsubscribed" puts the recipient on
// MailerSend's unsubscribe list for this sender: the tenant's opt-out
// (ingest.MarkUnsubscribed); the reason the recipient picked stays in the verdict.
var types = map[string]events.Type{
	"unsubscribed":   events.TypeDropped,
	"hard_bounced":   events.TypeBounce,
	"soft_bounced":   events.TypeBounce,
	"deferred":       events.TypeDeferral,
	"spam_complaint": events.TypeComplaint,
	"delivered":      events.TypeDelivered,
}

// synthetic replies stand in when MailerSend reports a failure without any reply
// text, worded so the catalog classifies them as MailerSend meant them. They are
// labelled so nobody mistakes them for a remote server's words.
var synthetic = map[string]string{
	"hard_bounced": "synthetic (MailerSend hard_bounced, no reply from the remote server): 550 5.1.1 recipient rejected permanently",
	"soft_bounced": "synthetic (MailerSend soft_bounced, no reply from the remote server): 451 4.3.0 temporary failure",
	"deferred":     "synthetic (MailerSend deferred, no reply from the remote server): 451 4.3.0 temporary failure",
}

// Parse implements ingest.Adapter. MailerSend sends one activity per POST.
func (a *Adapter) Parse(body []byte) (ingest.Batch, error) {
	if len(body) > maxBody {
		return ingest.Batch{}, fmt.Errorf("mailersend: body of %d bytes is larger than %d", len(body), maxBody)
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		return ingest.Batch{}, fmt.Errorf("mailersend: body is not an activity object: %w", err)
	}
	name := p.Data.Type
	if name == "" {
		name = strings.TrimPrefix(p.Type, "activity.")
	}
	typ, ok := types[name]
	if !ok {
		return ingest.Batch{Ignored: 1}, nil
	}
	ev, err := a.event(&p, name, typ)
	if err == nil {
		err = ev.Normalize()
	}
	if err != nil {
		return ingest.Batch{Rejects: []ingest.Reject{{Index: 0, Reason: err.Error(), Raw: bytes.Clone(body)}}}, nil
	}
	return ingest.Batch{Events: []events.Event{ev}}, nil
}

func (a *Adapter) event(p *payload, name string, typ events.Type) (events.Event, error) {
	d := &p.Data
	if d.ID == "" {
		return events.Event{}, errors.New("data.id: required")
	}
	ts := d.CreatedAt
	if ts == "" {
		ts = p.CreatedAt
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return events.Event{}, fmt.Errorf("data.created_at: %q is not an ISO 8601 time", ts)
	}
	ev := events.Event{
		ID:         esp + ":" + d.ID,
		ESP:        esp,
		Type:       typ,
		OccurredAt: at,
		Recipient:  d.Email.Recipient.Email,
		Sender:     ingest.OptionalAddress(d.Email.From),
		MessageID:  d.Email.Message.ID,
		Tenant:     a.tenantOf(p),
		ESPVerdict: map[string]string{"type": name},
	}
	if d.Morph.Object != "" {
		ev.ESPVerdict["morph_object"] = d.Morph.Object
	}
	if d.Email.Status != "" {
		ev.ESPVerdict["email_status"] = d.Email.Status
	}
	text := d.Morph.Reason
	if strings.TrimSpace(text) == "" {
		text = d.Morph.ReadableReason
	}
	switch {
	case name == "unsubscribed":
		// The recipient's reason ("I no longer want to receive these emails") is no reply.
		ingest.SetNonEmpty(ev.ESPVerdict, "unsubscribe_reason", d.Morph.Reason)
		ingest.MarkUnsubscribed(&ev, "MailerSend unsubscribed")
	case strings.TrimSpace(text) != "":
		r := catalog.ParseReply(text)
		ev.Reply = events.Reply{Code: r.Code, Enhanced: r.Enhanced, Text: r.Text}
	case synthetic[name] != "":
		ev.Reply = events.Reply{Text: synthetic[name]}
	}
	return ev, nil
}

// tenantOf reads the tenant where REBOUND_MAILERSEND_TENANT_FROM says: the rest of the
// first tag that starts with the prefix, or a custom variable's string value.
func (a *Adapter) tenantOf(p *payload) string {
	switch a.tenant.kind {
	case "tag":
		for _, t := range p.Data.Email.Tags {
			if rest, ok := strings.CutPrefix(t, a.tenant.arg); ok && rest != "" {
				return rest
			}
		}
	case "var":
		var s string
		if raw, ok := p.Data.Email.Variables[a.tenant.arg]; ok && json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return ""
}
