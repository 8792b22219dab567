package mandrill

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
)

const esp = "mandrill"

// maxBody bounds what Parse reads: Mandrill batches up to 1000 events per POST.
const maxBody = 16 << 20

// Adapter is Mandrill's webhook dialect.
type Adapter struct {
	keys   [][]byte // webhook keys; several while one is rotated; none: not configured (see verify)
	url    string   // the webhook URL exactly as registered in Mandrill
	verify ingest.Verifier
	tenant tenantFrom
}

// tenantFrom is REBOUND_MANDRILL_TENANT_FROM, parsed.
type tenantFrom struct {
	kind string // "", "subaccount" or "metadata"
	key  string // metadata key
}

// New builds the adapter from REBOUND_MANDRILL_WEBHOOK_KEY (or its _FILE; several keys
// separated by commas while rotating), REBOUND_MANDRILL_WEBHOOK_URL,
// REBOUND_MANDRILL_TENANT_FROM and REBOUND_MANDRILL_INSECURE_SKIP_VERIFY.
func New(env ingest.Env) (ingest.Adapter, error) {
	secret, err := env.Secret(esp, "WEBHOOK_KEY")
	if err != nil {
		return nil, err
	}
	a := &Adapter{url: strings.TrimSpace(env.Var(esp, "WEBHOOK_URL"))}
	for k := range strings.SplitSeq(secret, ",") {
		if k = strings.TrimSpace(k); k != "" {
			a.keys = append(a.keys, []byte(k))
		}
	}
	if len(a.keys) > 0 {
		// The URL is half of what Mandrill signs: without it no signature can match.
		u, err := url.Parse(a.url)
		switch {
		case a.url == "":
			return nil, errors.New("REBOUND_MANDRILL_WEBHOOK_URL: required with REBOUND_MANDRILL_WEBHOOK_KEY (the URL exactly as registered in Mandrill)")
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			return nil, errors.New("REBOUND_MANDRILL_WEBHOOK_URL: want an absolute http(s) URL, exactly as registered in Mandrill")
		}
	}
	switch tf := strings.TrimSpace(env.TenantFrom(esp)); {
	case tf == "":
	case tf == "subaccount":
		a.tenant = tenantFrom{kind: "subaccount"}
	case strings.HasPrefix(tf, "metadata:") && len(tf) > len("metadata:"):
		a.tenant = tenantFrom{kind: "metadata", key: tf[len("metadata:"):]}
	default:
		return nil, fmt.Errorf("REBOUND_MANDRILL_TENANT_FROM: %q: want subaccount or metadata:<key>", tf)
	}
	a.verify = env.Verifier(esp, "WEBHOOK_KEY", len(a.keys) > 0)
	return a, nil
}

// ESP implements ingest.Adapter.
func (a *Adapter) ESP() string { return esp }

// Authenticate implements ingest.Adapter: X-Mandrill-Signature must be
// base64(HMAC-SHA1(key, URL + name + value for every POST parameter sorted by name)).
// The URL is the configured one, not the request's, so proxies in front do not matter.
func (a *Adapter) Authenticate(r *http.Request, body []byte) error {
	return a.verify.Authenticate(func() error { return a.verifySignature(r, body) })
}

// AuthenticateHeaders implements ingest.HeaderAuthenticator: X-Mandrill-Signature must
// be there before the body is read (what it signs is in the body).
func (a *Adapter) AuthenticateHeaders(r *http.Request) error {
	return a.verify.Authenticate(func() error {
		if strings.TrimSpace(r.Header.Get("X-Mandrill-Signature")) == "" {
			return fmt.Errorf("%w: no X-Mandrill-Signature header", ingest.ErrUnauthenticated)
		}
		return nil
	})
}

func (a *Adapter) verifySignature(r *http.Request, body []byte) error {
	got := strings.TrimSpace(r.Header.Get("X-Mandrill-Signature"))
	if got == "" {
		return fmt.Errorf("%w: no X-Mandrill-Signature header", ingest.ErrUnauthenticated)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return fmt.Errorf("%w: body is not form-encoded: %v", ingest.ErrUnauthenticated, err)
	}
	names := make([]string, 0, len(form))
	for n := range form {
		names = append(names, n)
	}
	sort.Strings(names)
	ok := false
	for _, key := range a.keys {
		mac := hmac.New(sha1.New, key)
		mac.Write([]byte(a.url))
		for _, n := range names {
			for _, v := range form[n] {
				mac.Write([]byte(n))
				mac.Write([]byte(v))
			}
		}
		want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if ingest.Equal([]byte(got), []byte(want)) {
			ok = true
		}
	}
	if !ok {
		return fmt.Errorf("%w: X-Mandrill-Signature does not match (check REBOUND_MANDRILL_WEBHOOK_URL is the URL registered in Mandrill)", ingest.ErrUnauthenticated)
	}
	return nil
}

// item is one element of mandrill_events.
type item struct {
	Event string          `json:"event"`
	Type  string          `json:"type"` // sync events (whitelist/blacklist) carry type, not event
	ID    string          `json:"_id"`
	TS    json.RawMessage `json:"ts"`
	Msg   struct {
		ID                string                     `json:"_id"`
		Email             string                     `json:"email"`
		Sender            string                     `json:"sender"`
		Subaccount        string                     `json:"subaccount"`
		Metadata          map[string]json.RawMessage `json:"metadata"`
		State             string                     `json:"state"`
		Diag              string                     `json:"diag"`
		BounceDescription string                     `json:"bounce_description"`
		BGToolsCode       json.RawMessage            `json:"bgtools_code"`
		RejectReason      string                     `json:"reject_reason"`
		SMTPEvents        []struct {
			Type          string `json:"type"`
			Diag          string `json:"diag"`
			SourceIP      string `json:"source_ip"`
			DestinationIP string `json:"destination_ip"`
		} `json:"smtp_events"`
	} `json:"msg"`
}

// types maps Mandrill events onto canonical types; open, click, sync and inbound events
// are counted as ignored. Mandrill's "send" means the remote server accepted the
// message; "unsub" (the recipient used the unsubscribe link, and Mandrill rejects this
// account's mail to it from now on, as reject reason "unsub") is the tenant's opt-out
// (ingest.MarkUnsubscribed).
var types = map[string]events.Type{
	"unsub":       events.TypeDropped,
	"send":        events.TypeDelivered,
	"deferral":    events.TypeDeferral,
	"hard_bounce": events.TypeBounce,
	"soft_bounce": events.TypeBounce,
	"spam":        events.TypeComplaint,
	"reject":      events.TypeDropped,
}

// Synthetic replies stand in when Mandrill gives no reply text. Each is checked against
// the catalog in the tests.
const synthLabel = "synthetic (Mandrill %s, no reply from the remote server): "

var byDescription = map[string]string{
	"bad_mailbox":    "550 5.1.1 mailbox does not exist",
	"invalid_domain": "550 5.1.2 recipient domain does not exist",
	"mailbox_full":   "452 4.2.2 mailbox full",
	"spam_related":   "554 5.6.0 message content rejected",
}

var byEvent = map[string]string{
	"hard_bounce": "550 5.1.1 recipient rejected permanently",
	"soft_bounce": "451 4.3.0 temporary failure",
	"deferral":    "451 4.3.0 temporary failure",
}

// senderSideRejects are Mandrill reject reasons that are about the sending account, not
// the address: they are not "already suppressed" and should reach on-call.
var senderSideRejects = map[string]bool{"invalid-sender": true, "unsigned": true, "test-mode-limit": true, "rule": true}

// optOutRejects are Mandrill reject reasons that are the recipient's opt-out (an
// unsubscribe, a spam complaint), with their stand-in replies. Every other reason ("hard-bounce", "soft-bounce", "custom") is Mandrill's
// rejection list at large.
var optOutRejects = map[string]string{
	"unsub": ingest.OptOutUnsubscribed,
	"spam":  ingest.OptOutComplained,
}

// Parse implements ingest.Adapter.
func (a *Adapter) Parse(body []byte) (ingest.Batch, error) {
	if len(body) > maxBody {
		return ingest.Batch{}, fmt.Errorf("mandrill: body of %d bytes is larger than %d", len(body), maxBody)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return ingest.Batch{}, fmt.Errorf("mandrill: body is not form-encoded: %w", err)
	}
	field := form.Get("mandrill_events")
	if field == "" {
		return ingest.Batch{}, errors.New("mandrill: no mandrill_events field")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(field), &raws); err != nil {
		return ingest.Batch{}, fmt.Errorf("mandrill: mandrill_events is not a JSON array: %w", err)
	}
	return ingest.MapItems(raws, a.mapItem), nil
}

// mapItem maps one event: ignored when its type is not one Rebound acts on.
func (a *Adapter) mapItem(raw json.RawMessage) (events.Event, bool, error) {
	var it item
	if err := json.Unmarshal(raw, &it); err != nil {
		return events.Event{}, false, err
	}
	typ, ok := types[it.Event]
	if !ok {
		return events.Event{}, true, nil
	}
	ev, err := a.event(&it, typ)
	return ev, false, err
}

func (a *Adapter) event(it *item, typ events.Type) (events.Event, error) {
	ts := strings.Trim(string(it.TS), `"`)
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return events.Event{}, errors.New("ts: required (unix seconds)")
	}
	id := it.ID
	if id == "" {
		id = it.Msg.ID
	}
	if id == "" {
		return events.Event{}, errors.New("_id: required")
	}
	m := &it.Msg
	ev := events.Event{
		ID:         ingest.CompositeID(esp, id, it.Event, ts),
		ESP:        esp,
		Type:       typ,
		OccurredAt: time.Unix(secs, 0),
		Recipient:  m.Email,
		Sender:     optionalAddress(m.Sender),
		MessageID:  id,
		Tenant:     a.tenantOf(m.Subaccount, m.Metadata),
		ESPVerdict: map[string]string{"event": it.Event},
	}
	for k, v := range map[string]string{"bounce_description": m.BounceDescription, "state": m.State, "reject_reason": m.RejectReason} {
		if v != "" {
			ev.ESPVerdict[k] = v
		}
	}
	if c := strings.Trim(string(m.BGToolsCode), `"`); c != "" && c != "null" {
		ev.ESPVerdict["bgtools_code"] = c
	}
	diag := m.Diag
	if n := len(m.SMTPEvents); n > 0 {
		last := m.SMTPEvents[n-1]
		ev.SendingIP, ev.MTA = last.SourceIP, last.DestinationIP
		if strings.TrimSpace(diag) == "" {
			diag = last.Diag
		}
	}
	switch {
	case it.Event == "unsub":
		ingest.MarkUnsubscribed(&ev, "Mandrill unsub")
	case it.Event == "reject":
		// Mandrill refused to send: its own decision, never a remote reply.
		switch r := m.RejectReason; {
		case senderSideRejects[r]:
			ev.Reply.Text = "synthetic (Mandrill reject " + r + ", the ESP did not send): 550 5.7.0 sending not permitted for this account"
		case r == "invalid":
			ev.Reply.Text = "synthetic (Mandrill reject invalid, not sent): 553 5.1.3 invalid recipient address"
		case optOutRejects[r] != "":
			// The recipient unsubscribed from, or complained about, this account's mail:
			// their wish about this sender (suppressed for the tenant), not a dead address.
			ev.ProviderSuppressed = true
			ev.Reply.Text = "synthetic (Mandrill reject " + r + ", not sent): " + optOutRejects[r]
		default:
			ev.ProviderSuppressed = true
			ev.Reply.Text = "synthetic (Mandrill reject, not sent): 550 5.1.1 address is on the ESP suppression list"
		}
	case strings.TrimSpace(diag) != "":
		r := catalog.ParseReply(diag)
		ev.Reply = events.Reply{Code: r.Code, Enhanced: r.Enhanced, Text: r.Text}
	case byDescription[m.BounceDescription] != "" && typ != events.TypeDelivered:
		ev.Reply.Text = fmt.Sprintf(synthLabel, it.Event+" "+m.BounceDescription) + byDescription[m.BounceDescription]
	case byEvent[it.Event] != "":
		ev.Reply.Text = fmt.Sprintf(synthLabel, it.Event) + byEvent[it.Event]
	}
	return ev, nil
}

// tenantOf reads the subaccount or a metadata value (string or number).
func (a *Adapter) tenantOf(subaccount string, meta map[string]json.RawMessage) string {
	switch a.tenant.kind {
	case "subaccount":
		return subaccount
	case "metadata":
		raw := meta[a.tenant.key]
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			return n.String()
		}
	}
	return ""
}

// optionalAddress drops a sender that is not a usable address: the sender is optional
// and must not cost the event. Unlike ingest.OptionalAddress it strips no display
// name: msg.sender is a bare envelope address, so "Name <a@b>" there is not one.
func optionalAddress(s string) string {
	if _, err := events.NormalizeAddress(s); err != nil {
		return ""
	}
	return s
}
