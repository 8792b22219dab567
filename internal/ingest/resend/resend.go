package resend

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
)

const esp = "resend"

// maxBody bounds what Parse reads: Resend sends one event per POST.
const maxBody = 1 << 20

// Adapter is Resend's webhook dialect (Svix-signed).
type Adapter struct {
	key     []byte // decoded whsec_ secret; empty: not configured (see verify)
	verify  ingest.Verifier
	tagName string // REBOUND_RESEND_TENANT_FROM=tag:<name>
	guard   *ingest.ReplayGuard
	ids     *idMemo
}

// New builds the adapter from REBOUND_RESEND_SIGNING_SECRET (or its _FILE; "whsec_"
// followed by base64), REBOUND_RESEND_TENANT_FROM and
// REBOUND_RESEND_INSECURE_SKIP_VERIFY.
func New(env ingest.Env) (ingest.Adapter, error) {
	secret, err := env.Secret(esp, "SIGNING_SECRET")
	if err != nil {
		return nil, err
	}
	var key []byte
	if secret != "" {
		key, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil || len(key) == 0 {
			return nil, errors.New("REBOUND_RESEND_SIGNING_SECRET: want whsec_ followed by base64, as Resend shows it")
		}
	}
	a := &Adapter{key: key, verify: env.Verifier(esp, "SIGNING_SECRET", len(key) > 0), guard: ingest.NewReplayGuard(ingest.DefaultReplayWindow, env.Now), ids: newIDMemo()}
	if tf := strings.TrimSpace(env.TenantFrom(esp)); tf != "" {
		name, ok := strings.CutPrefix(tf, "tag:")
		if !ok || name == "" {
			return nil, fmt.Errorf("REBOUND_RESEND_TENANT_FROM: %q: want tag:<name>", tf)
		}
		a.tagName = name
	}
	return a, nil
}

// ESP implements ingest.Adapter.
func (a *Adapter) ESP() string { return esp }

// header returns the Svix header, or its Standard Webhooks twin (webhook-id …).
func header(r *http.Request, name string) string {
	if v := r.Header.Get("svix-" + name); v != "" {
		return v
	}
	return r.Header.Get("webhook-" + name)
}

// Authenticate implements ingest.Adapter: any v1 entry of svix-signature must equal
// base64(HMAC-SHA256(key, svix-id "." svix-timestamp "." body)) and the timestamp must
// be within five minutes. Several entries arrive while a secret is rotated, so one
// match is enough. The handler refuses an svix-id already used (ReplayToken).
func (a *Adapter) Authenticate(r *http.Request, body []byte) error {
	id := header(r, "id")
	if err := a.verify.Authenticate(func() error { return a.verifySignature(r, id, body) }); err != nil {
		return err
	}
	// Verified, or accepted unchecked: either way the svix-id is the event's ID.
	a.ids.put(body, id)
	return nil
}

// AuthenticateHeaders implements ingest.HeaderAuthenticator: the three Svix headers,
// the timestamp inside the window and at least one v1 entry, before the body is read.
func (a *Adapter) AuthenticateHeaders(r *http.Request) error {
	return a.verify.Authenticate(func() error {
		_, _, err := a.checkHeaders(r)
		return err
	})
}

// ReplayToken implements ingest.Replayable: the svix-id, once the signature over it
// has been checked.
func (a *Adapter) ReplayToken(r *http.Request, _ []byte) (string, time.Duration) {
	if !a.verify.Checks() {
		return "", 0
	}
	return header(r, "id"), a.guard.TokenTTL()
}

// checkHeaders returns svix-timestamp and the v1 signatures of svix-signature, or
// why the headers cannot carry a valid signature.
func (a *Adapter) checkHeaders(r *http.Request) (string, [][]byte, error) {
	id, ts, sigs := header(r, "id"), header(r, "timestamp"), header(r, "signature")
	if id == "" || ts == "" || sigs == "" {
		return "", nil, fmt.Errorf("%w: svix-id, svix-timestamp and svix-signature are required", ingest.ErrUnauthenticated)
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", nil, fmt.Errorf("%w: svix-timestamp is not unix seconds", ingest.ErrUnauthenticated)
	}
	if err := a.guard.CheckTime(time.Unix(secs, 0)); err != nil {
		return "", nil, err
	}
	v1 := v1Signatures(sigs)
	if len(v1) == 0 {
		return "", nil, fmt.Errorf("%w: svix-signature has no v1 entry", ingest.ErrUnauthenticated)
	}
	return ts, v1, nil
}

// maxSignatures bounds the entries of svix-signature compared: Svix sends one per
// active secret, two while one is rotated; a header of thousands costs a comparison
// each and is not Svix's.
const maxSignatures = 8

// v1Signatures splits svix-signature, space-separated "<version>,<base64>" entries,
// and returns the v1 signatures, at most maxSignatures of them. Other versions (v1a,
// asymmetric) and malformed entries are skipped.
func v1Signatures(h string) [][]byte {
	var out [][]byte
	for entry := range strings.FieldsSeq(h) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" || sig == "" {
			continue
		}
		out = append(out, []byte(sig))
		if len(out) == maxSignatures {
			break
		}
	}
	return out
}

func (a *Adapter) verifySignature(r *http.Request, id string, body []byte) error {
	ts, sigs, err := a.checkHeaders(r)
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, a.key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	want := make([]byte, base64.StdEncoding.EncodedLen(sha256.Size))
	base64.StdEncoding.Encode(want, mac.Sum(nil))
	ok := false
	for _, sig := range sigs {
		if ingest.Equal(sig, want) {
			ok = true // keep comparing: the loop's time must not tell which entry matched
		}
	}
	if !ok {
		return fmt.Errorf("%w: no svix-signature entry matches", ingest.ErrUnauthenticated)
	}
	return nil
}

// payload is the part of a Resend webhook that Rebound reads.
type payload struct {
	Type      string `json:"type"`
	CreatedAt string `json:"created_at"`
	Data      struct {
		EmailID   string          `json:"email_id"`
		CreatedAt string          `json:"created_at"`
		From      string          `json:"from"`
		To        json.RawMessage `json:"to"`
		Tags      json.RawMessage `json:"tags"`
		Bounce    *struct {
			Type    string `json:"type"`
			SubType string `json:"subType"`
			Message string `json:"message"`
		} `json:"bounce"`
		Failed *struct {
			Reason string `json:"reason"`
		} `json:"failed"`
		Suppressed *struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"suppressed"`
	} `json:"data"`
}

// types maps Resend event types onto canonical types; the rest (sent, opened, clicked,
// scheduled, received, domain.*, contact.*) is counted as ignored.
var types = map[string]events.Type{
	"email.bounced":          events.TypeBounce,
	"email.delivery_delayed": events.TypeDeferral,
	"email.complained":       events.TypeComplaint,
	"email.failed":           events.TypeDropped,
	"email.suppressed":       events.TypeDropped,
	"email.delivered":        events.TypeDelivered,
}

// Parse implements ingest.Adapter: one Resend event, one canonical event per recipient.
func (a *Adapter) Parse(body []byte) (ingest.Batch, error) {
	svixID := a.ids.take(body)
	if len(body) > maxBody {
		return ingest.Batch{}, fmt.Errorf("resend: body of %d bytes is larger than %d", len(body), maxBody)
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		return ingest.Batch{}, fmt.Errorf("resend: body is not an event object: %w", err)
	}
	typ, ok := types[p.Type]
	if !ok {
		return ingest.Batch{Ignored: 1}, nil
	}
	reject := func(err error) (ingest.Batch, error) {
		return ingest.Batch{Rejects: []ingest.Reject{{Index: 0, Reason: err.Error(), Raw: bytes.Clone(body)}}}, nil
	}
	recipients, err := recipientsOf(p.Data.To)
	if err != nil {
		return reject(err)
	}
	ts := p.CreatedAt
	if ts == "" {
		ts = p.Data.CreatedAt
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return reject(fmt.Errorf("created_at: %q is not an ISO 8601 time", ts))
	}
	tmpl := events.Event{
		ESP:        esp,
		Type:       typ,
		OccurredAt: at,
		Sender:     ingest.OptionalAddress(p.Data.From),
		MessageID:  p.Data.EmailID,
		Tenant:     a.tenantOf(p.Data.Tags),
	}
	verdict, reply := judge(&p)
	tmpl.Reply = reply
	tmpl.ProviderSuppressed = p.Type == "email.suppressed"
	var b ingest.Batch
	for _, rcpt := range recipients {
		ev := tmpl
		ev.Recipient = rcpt
		ev.ESPVerdict = maps.Clone(verdict)
		switch {
		case svixID != "" && len(recipients) == 1:
			ev.ID = esp + ":" + svixID
		case svixID != "":
			ev.ID = esp + ":" + svixID + ":" + strings.ToLower(rcpt)
		default:
			// Parse called without a verified request (tests, replays from the dead-letter
			// stream): an ID from the event's own fields is still stable across retries.
			ev.ID = ingest.CompositeID(esp, p.Data.EmailID, p.Type, ts, strings.ToLower(rcpt))
		}
		if err := ev.Normalize(); err != nil {
			b.Rejects = append(b.Rejects, ingest.Reject{Index: 0, Reason: err.Error(), Raw: bytes.Clone(body)})
			continue
		}
		b.Events = append(b.Events, ev)
	}
	return b, nil
}

// judge returns the ESP's own labels and the reply for the event. Resend gives no SMTP
// reply, only its own prose; when that carries no code, a labelled synthetic reply built
// from the bounce type stands in so the catalog classifies it as Resend meant it, and
// the prose is kept in the verdict.
func judge(p *payload) (map[string]string, events.Reply) {
	v := map[string]string{"type": p.Type}
	var text, synth string
	switch p.Type {
	case "email.bounced":
		if bo := p.Data.Bounce; bo != nil {
			v["bounce_type"], v["bounce_subtype"] = bo.Type, bo.SubType
			if bo.Message != "" {
				v["bounce_message"] = bo.Message
			}
			text = bo.Message
			synth = bounceSynthetic(bo.Type, bo.SubType)
		} else {
			synth = bounceSynthetic("", "")
		}
	case "email.delivery_delayed":
		synth = "synthetic (Resend email.delivery_delayed, no reply from the remote server): 451 4.3.0 temporary failure"
	case "email.failed":
		if f := p.Data.Failed; f != nil && f.Reason != "" {
			v["failed_reason"] = f.Reason
			text = f.Reason
		}
		synth = "synthetic (Resend email.failed, the ESP did not send): 550 5.7.0 sending not permitted for this account"
	case "email.suppressed":
		if s := p.Data.Suppressed; s != nil {
			if s.Type != "" {
				v["suppressed_type"] = s.Type
			}
			if s.Message != "" {
				v["suppressed_message"] = s.Message
			}
			text = s.Message
		}
		synth = "synthetic (Resend email.suppressed, not sent): 550 5.1.1 address is on the ESP suppression list"
	}
	if text != "" {
		if r := catalog.ParseReply(text); r.Code != 0 || r.Enhanced != "" {
			return v, events.Reply{Code: r.Code, Enhanced: r.Enhanced, Text: r.Text}
		}
	}
	if synth != "" {
		return v, events.Reply{Text: synth}
	}
	return v, events.Reply{}
}

// bounceSynthetic words a reply for Resend's bounce type and subtype (SES's vocabulary).
// Each text is checked against the catalog in the tests.
func bounceSynthetic(typ, sub string) string {
	label := "synthetic (Resend bounce " + typ + "/" + sub + ", no reply from the remote server): "
	switch typ {
	case "Permanent":
		switch sub {
		case "NoEmail":
			return label + "550 5.1.1 mailbox does not exist"
		case "Suppressed", "OnAccountSuppressionList":
			return label + "550 5.1.1 address is on the ESP suppression list"
		}
		return label + "550 5.1.1 recipient rejected permanently"
	case "Transient":
		switch sub {
		case "MailboxFull":
			return label + "452 4.2.2 mailbox full"
		case "MessageTooLarge":
			return label + "552 5.3.4 message too large"
		case "ContentRejected", "AttachmentRejected":
			return label + "554 5.6.0 message content rejected"
		}
	}
	return label + "451 4.3.0 temporary failure"
}

// recipientsOf reads data.to: an array of addresses (possibly with display names) or a
// single string.
func recipientsOf(raw json.RawMessage) ([]string, error) {
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		var one string
		if err := json.Unmarshal(raw, &one); err != nil || one == "" {
			return nil, errors.New("data.to: want an array of addresses")
		}
		list = []string{one}
	}
	if len(list) == 0 {
		return nil, errors.New("data.to: no recipient")
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		out = append(out, ingest.BareAddress(s))
	}
	return out, nil
}

// tenantOf reads tag <name> from data.tags, an object of name → value or an array of
// {name, value}.
func (a *Adapter) tenantOf(raw json.RawMessage) string {
	if a.tagName == "" || len(raw) == 0 {
		return ""
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		var s string
		if json.Unmarshal(obj[a.tagName], &s) == nil {
			return s
		}
		return ""
	}
	var list []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	if json.Unmarshal(raw, &list) == nil {
		for _, t := range list {
			if t.Name == a.tagName {
				return t.Value
			}
		}
	}
	return ""
}

// idMemo carries the verified svix-id from Authenticate to Parse, keyed by the body's
// hash: the Adapter interface hands Parse only the body, and the svix-id is Resend's
// event ID. Entries are taken by Parse; the size cap only matters if a caller
// authenticates without parsing.
type idMemo struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]string
}

const maxMemo = 4096

func newIDMemo() *idMemo { return &idMemo{m: map[[sha256.Size]byte]string{}} }

func (m *idMemo) put(body []byte, id string) {
	if id == "" {
		return
	}
	k := sha256.Sum256(body)
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.m) >= maxMemo {
		clear(m.m)
	}
	m.m[k] = id
}

func (m *idMemo) take(body []byte) string {
	k := sha256.Sum256(body)
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.m[k]
	if ok {
		delete(m.m, k)
	}
	return id
}
