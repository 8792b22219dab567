package brevo

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

const esp = "brevo"

// maxBody bounds what Parse reads: a batched webhook carries at most 500 events.
const maxBody = 8 << 20

// Adapter is Brevo's webhook dialect.
type Adapter struct {
	token  string // "": not configured (see verify)
	verify ingest.Verifier
	tenant tenantFrom
}

// tenantFrom is REBOUND_BREVO_TENANT_FROM, parsed.
type tenantFrom struct {
	kind string // "", "tag" or "custom"
	arg  string // tag prefix, or key inside X-Mailin-custom ("" = the whole value)
}

// New builds the adapter from REBOUND_BREVO_TOKEN (or its _FILE),
// REBOUND_BREVO_TENANT_FROM and REBOUND_BREVO_INSECURE_SKIP_VERIFY.
func New(env ingest.Env) (ingest.Adapter, error) {
	token, err := env.Secret(esp, "TOKEN")
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(token, " \t\r\n") {
		return nil, errors.New("REBOUND_BREVO_TOKEN: must not contain white space")
	}
	tf, err := parseTenantFrom(env.TenantFrom(esp))
	if err != nil {
		return nil, fmt.Errorf("REBOUND_BREVO_TENANT_FROM: %w", err)
	}
	return &Adapter{token: token, verify: env.Verifier(esp, "TOKEN", token != ""), tenant: tf}, nil
}

func parseTenantFrom(s string) (tenantFrom, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return tenantFrom{}, nil
	case s == "custom":
		return tenantFrom{kind: "custom"}, nil
	}
	kind, arg, ok := strings.Cut(s, ":")
	if !ok || arg == "" || (kind != "tag" && kind != "custom") {
		return tenantFrom{}, fmt.Errorf("%q: want tag:<prefix>, custom or custom:<key>", s)
	}
	return tenantFrom{kind: kind, arg: arg}, nil
}

// ESP implements ingest.Adapter.
func (a *Adapter) ESP() string { return esp }

// Authenticate implements ingest.Adapter. Brevo signs nothing: the webhook is created
// with an Authorization header carrying REBOUND_BREVO_TOKEN as a bearer token. A token
// of the form user:password is also accepted as basic auth, for webhooks whose URL
// carries the credentials.
func (a *Adapter) Authenticate(r *http.Request, _ []byte) error {
	return a.verify.Authenticate(func() error { return a.checkToken(r) })
}

// AuthenticateHeaders implements ingest.HeaderAuthenticator: the whole check is in the
// Authorization header, so it is made before the body is read.
func (a *Adapter) AuthenticateHeaders(r *http.Request) error {
	return a.verify.Authenticate(func() error { return a.checkToken(r) })
}

func (a *Adapter) checkToken(r *http.Request) error {
	h := r.Header.Get("Authorization")
	if strings.Contains(a.token, ":") && len(h) > 6 && strings.EqualFold(h[:6], "basic ") {
		return ingest.BasicAuth(r, a.token)
	}
	return ingest.BearerToken(r, a.token)
}

// item is one Brevo event.
type item struct {
	Event     string          `json:"event"`
	Email     string          `json:"email"`
	MessageID string          `json:"message-id"`
	Reason    string          `json:"reason"`
	TS        flexInt         `json:"ts"`
	TSEvent   flexInt         `json:"ts_event"`
	TSEpoch   flexInt         `json:"ts_epoch"`
	SendingIP string          `json:"sending_ip"`
	Tag       string          `json:"tag"`
	Tags      []string        `json:"tags"`
	Custom    json.RawMessage `json:"X-Mailin-custom"`
}

// flexInt is a unix time Brevo may write as a number or a numeric string.
type flexInt struct {
	v   int64
	raw string
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer time: %s", b)
	}
	f.v, f.raw = v, s
	return nil
}

// types maps Brevo event names onto canonical types; the rest (request, opens, clicks,
// list events) is counted as ignored. "unsubscribed" (the recipient used the unsubscribe
// link of this sender's transactional mail, after which Brevo blocks it) is the tenant's
// opt-out (ingest.MarkUnsubscribed).
var types = map[string]events.Type{
	"unsubscribed":  events.TypeDropped,
	"hard_bounce":   events.TypeBounce,
	"soft_bounce":   events.TypeBounce,
	"blocked":       events.TypeDropped,
	"invalid_email": events.TypeDropped,
	"error":         events.TypeDropped,
	"deferred":      events.TypeDeferral,
	"spam":          events.TypeComplaint,
	"complaint":     events.TypeComplaint,
	"delivered":     events.TypeDelivered,
}

// synthetic replies stand in when Brevo gives no reply text, or when the event is
// Brevo's own decision (blocked, invalid_email) and its reason is Brevo's prose rather
// than a remote server's reply. Each is checked against the catalog in the tests.
var synthetic = map[string]string{
	"hard_bounce":   "synthetic (Brevo hard_bounce, no reply from the remote server): 550 5.1.1 recipient rejected permanently",
	"soft_bounce":   "synthetic (Brevo soft_bounce, no reply from the remote server): 451 4.3.0 temporary failure",
	"deferred":      "synthetic (Brevo deferred, no reply from the remote server): 451 4.3.0 temporary failure",
	"blocked":       "synthetic (Brevo blocked, not sent): 550 5.1.1 address is on the ESP suppression list",
	"invalid_email": "synthetic (Brevo invalid_email, not sent): 553 5.1.3 invalid recipient address",
	"error":         "synthetic (Brevo error, the ESP did not send): 550 5.7.0 sending not permitted for this account",
}

// espDecided are events where Brevo, not a remote server, refused: the reply is
// always the synthetic one and Brevo's reason is kept in the verdict.
var espDecided = map[string]bool{"blocked": true, "invalid_email": true}

// Parse implements ingest.Adapter: one event object, or an array when the webhook is
// batched.
func (a *Adapter) Parse(body []byte) (ingest.Batch, error) {
	if len(body) > maxBody {
		return ingest.Batch{}, fmt.Errorf("brevo: body of %d bytes is larger than %d", len(body), maxBody)
	}
	items, err := ingest.ItemsOf(body)
	if err != nil {
		return ingest.Batch{}, fmt.Errorf("brevo: %w", err)
	}
	return ingest.MapItems(items, a.mapItem), nil
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
	var at time.Time
	stamp := it.TSEpoch.raw
	switch {
	case it.TSEpoch.raw != "":
		at = time.UnixMilli(it.TSEpoch.v)
	case it.TSEvent.raw != "":
		at, stamp = time.Unix(it.TSEvent.v, 0), it.TSEvent.raw
	case it.TS.raw != "":
		at, stamp = time.Unix(it.TS.v, 0), it.TS.raw
	default:
		return events.Event{}, errors.New("ts_epoch: required (or ts_event, ts)")
	}
	ev := events.Event{
		ID:                 ingest.CompositeID(esp, it.MessageID, it.Event, strings.ToLower(strings.TrimSpace(it.Email)), stamp),
		ESP:                esp,
		Type:               typ,
		ProviderSuppressed: it.Event == "blocked",
		OccurredAt:         at,
		Recipient:          it.Email,
		SendingIP:          it.SendingIP,
		MessageID:          it.MessageID,
		Tenant:             a.tenantOf(it),
		ESPVerdict:         map[string]string{"event": it.Event},
	}
	reason := strings.TrimSpace(it.Reason)
	if reason != "" {
		ev.ESPVerdict["reason"] = reason
	}
	r := catalog.ParseReply(reason)
	switch {
	case it.Event == "unsubscribed":
		ingest.MarkUnsubscribed(&ev, "Brevo unsubscribed")
	case reason != "" && !espDecided[it.Event] && (it.Event != "error" || r.Code != 0 || r.Enhanced != ""):
		ev.Reply = events.Reply{Code: r.Code, Enhanced: r.Enhanced, Text: r.Text}
	case synthetic[it.Event] != "":
		ev.Reply = events.Reply{Text: synthetic[it.Event]}
	}
	return ev, nil
}

// tenantOf reads the tenant where REBOUND_BREVO_TENANT_FROM says: the rest of the first
// tag with the prefix, X-Mailin-custom as a whole, or one key of it when it is a JSON
// object.
func (a *Adapter) tenantOf(it *item) string {
	switch a.tenant.kind {
	case "tag":
		tags := it.Tags
		if len(tags) == 0 && it.Tag != "" {
			// tag is a plain string or, for several tags, a JSON-encoded array.
			if json.Unmarshal([]byte(it.Tag), &tags) != nil {
				tags = []string{it.Tag}
			}
		}
		for _, t := range tags {
			if rest, ok := strings.CutPrefix(t, a.tenant.arg); ok && rest != "" {
				return rest
			}
		}
	case "custom":
		var s string
		if json.Unmarshal(it.Custom, &s) != nil {
			return ""
		}
		if a.tenant.arg == "" {
			return s
		}
		var obj map[string]json.RawMessage
		var v string
		if json.Unmarshal([]byte(s), &obj) == nil && json.Unmarshal(obj[a.tenant.arg], &v) == nil {
			return v
		}
	}
	return ""
}
