package resend

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/policy"
)

// now is the fixed clock of every test.
var now = time.Date(2026, 2, 3, 15, 0, 0, 0, time.UTC)

// bundle is what setup returns: the adapter and the secret it verifies with.
type bundle struct {
	a      *Adapter
	key    []byte
	secret string
}

func newKey(t testing.TB) ([]byte, string) {
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key, "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// setup builds a configured adapter; extra variables override the defaults.
func setup(t testing.TB, extra map[string]string) bundle {
	t.Helper()
	key, secret := newKey(t)
	vars := map[string]string{"REBOUND_RESEND_SIGNING_SECRET": secret, "REBOUND_RESEND_TENANT_FROM": "tag:tenant"}
	for k, v := range extra {
		vars[k] = v
	}
	a, err := New(ingest.Env{Getenv: func(k string) string { return vars[k] }, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return bundle{a: a.(*Adapter), key: key, secret: secret}
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sign(key []byte, id string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func request(id string, ts time.Time, sig string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/resend", strings.NewReader(string(body)))
	r.Header.Set("svix-id", id)
	r.Header.Set("svix-timestamp", strconv.FormatInt(ts.Unix(), 10))
	r.Header.Set("svix-signature", sig)
	return r
}

var loadCatalog = sync.OnceValues(catalog.Default)

func action(t *testing.T, ev *events.Event) policy.Action {
	t.Helper()
	cat, err := loadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	cl := cat.Classify(ev.Reply.String(), catalog.Hints{Code: ev.Reply.Code, Enhanced: ev.Reply.Enhanced, RemoteHost: ev.MTA})
	return policy.Default().Decide(ev, cl).Action
}

func diffEvent(t *testing.T, got, want events.Event) {
	t.Helper()
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("%s = %#v, want %#v", g.Type().Field(i).Name, g.Field(i).Interface(), w.Field(i).Interface())
		}
	}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParse(t *testing.T) {
	t.Parallel()
	const id = "msg_2sXq7RkT0pYbE1vN"
	tests := []struct {
		file    string
		want    []events.Event
		actions []policy.Action
		ignored int
		rejects int
		err     bool
	}{
		{file: "bounce-permanent.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: "resend:" + id, ESP: "resend", Type: events.TypeBounce, OccurredAt: at("2026-02-03T14:20:05.112Z"),
			Recipient: "kofi@example.net", Sender: "receipts@mail.shop.example", SendingDomain: "mail.shop.example",
			Tenant: "t42", MessageID: "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e10",
			Reply: events.Reply{Text: bounceSynthetic("Permanent", "General")},
			ESPVerdict: map[string]string{"type": "email.bounced", "bounce_type": "Permanent", "bounce_subtype": "General",
				"bounce_message": "The recipient's mail server permanently rejected the email."},
		}}},
		{file: "bounce-with-code.json", actions: []policy.Action{policy.ActionSoft, policy.ActionSoft}, want: func() []events.Event {
			e := events.Event{
				ESP: "resend", Type: events.TypeBounce, OccurredAt: at("2026-02-03T14:21:05Z"),
				Sender: "receipts@mail.shop.example", SendingDomain: "mail.shop.example",
				Tenant: "t42", MessageID: "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e11",
				Reply: events.Reply{Code: 552, Enhanced: "5.2.2", Text: "Mailbox full: quota exceeded"},
				ESPVerdict: map[string]string{"type": "email.bounced", "bounce_type": "Transient", "bounce_subtype": "MailboxFull",
					"bounce_message": "smtp; 552 5.2.2 Mailbox full: quota exceeded"},
			}
			e1, e2 := e, e
			e1.ID, e1.Recipient = "resend:"+id+":kofi@example.net", "kofi@example.net"
			e2.ID, e2.Recipient = "resend:"+id+":ines@example.org", "ines@example.org"
			return []events.Event{e1, e2}
		}()},
		{file: "bounce-block.json", actions: []policy.Action{policy.ActionAlert}, want: []events.Event{{
			ID: "resend:" + id, ESP: "resend", Type: events.TypeBounce, OccurredAt: at("2026-02-03T14:22:05Z"),
			Recipient: "zoe@example.com", Sender: "receipts@mail.shop.example", SendingDomain: "mail.shop.example",
			MessageID: "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e12",
			Reply:     events.Reply{Code: 550, Enhanced: "5.7.1", Text: "Service unavailable, Client host [198.51.100.4] blocked using Spamhaus"},
			ESPVerdict: map[string]string{"type": "email.bounced", "bounce_type": "Permanent", "bounce_subtype": "General",
				"bounce_message": "550 5.7.1 Service unavailable, Client host [198.51.100.4] blocked using Spamhaus"},
		}}},
		{file: "delayed.json", actions: []policy.Action{policy.ActionNone}, want: []events.Event{{
			ID: "resend:" + id, ESP: "resend", Type: events.TypeDeferral, OccurredAt: at("2026-02-03T14:30:00Z"),
			Recipient: "ines@example.org", Sender: "receipts@mail.shop.example", SendingDomain: "mail.shop.example",
			MessageID:  "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e13",
			Reply:      events.Reply{Text: "synthetic (Resend email.delivery_delayed, no reply from the remote server): 451 4.3.0 temporary failure"},
			ESPVerdict: map[string]string{"type": "email.delivery_delayed"},
		}}},
		{file: "complained.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: "resend:" + id, ESP: "resend", Type: events.TypeComplaint, OccurredAt: at("2026-02-03T15:00:00Z"),
			Recipient: "kofi@example.net", Sender: "news@mail.shop.example", SendingDomain: "mail.shop.example",
			Tenant: "t7", MessageID: "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e14",
			ESPVerdict: map[string]string{"type": "email.complained"},
		}}},
		{file: "suppressed.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: "resend:" + id, ESP: "resend", Type: events.TypeDropped, ProviderSuppressed: true, OccurredAt: at("2026-02-03T15:10:00Z"),
			Recipient: "gone@example.com", Sender: "receipts@mail.shop.example", SendingDomain: "mail.shop.example",
			MessageID: "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e15",
			Reply:     events.Reply{Text: "synthetic (Resend email.suppressed, not sent): 550 5.1.1 address is on the ESP suppression list"},
			ESPVerdict: map[string]string{"type": "email.suppressed", "suppressed_type": "OnAccountSuppressionList",
				"suppressed_message": "This address is on your account suppression list."},
		}}},
		{file: "failed.json", actions: []policy.Action{policy.ActionAlert}, want: []events.Event{{
			ID: "resend:" + id, ESP: "resend", Type: events.TypeDropped, OccurredAt: at("2026-02-03T15:20:00Z"),
			Recipient: "ines@example.org", Sender: "receipts@mail.shop.example", SendingDomain: "mail.shop.example",
			MessageID:  "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e16",
			Reply:      events.Reply{Text: "synthetic (Resend email.failed, the ESP did not send): 550 5.7.0 sending not permitted for this account"},
			ESPVerdict: map[string]string{"type": "email.failed", "failed_reason": "reached_daily_quota"},
		}}},
		{file: "delivered.json", actions: []policy.Action{policy.ActionReset}, want: []events.Event{{
			ID: "resend:" + id, ESP: "resend", Type: events.TypeDelivered, OccurredAt: at("2026-02-03T15:30:00Z"),
			Recipient: "ines@example.org", Sender: "receipts@mail.shop.example", SendingDomain: "mail.shop.example",
			MessageID: "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e17", ESPVerdict: map[string]string{"type": "email.delivered"},
		}}},
		{file: "opened.json", ignored: 1},
		{file: "no-recipient.json", rejects: 1},
		{file: "truncated.json", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			s := setup(t, nil)
			body := fixture(t, tt.file)
			if err := s.a.Authenticate(request(id, now, sign(s.key, id, now, body), body), body); err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			b, err := s.a.Parse(body)
			if tt.err {
				if err == nil || errors.Is(err, ingest.ErrBadRequest) {
					t.Fatalf("Parse error = %v, want a non-bad-request error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if b.Ignored != tt.ignored || len(b.Rejects) != tt.rejects {
				t.Errorf("ignored %d rejects %v, want %d and %d", b.Ignored, b.Rejects, tt.ignored, tt.rejects)
			}
			if len(b.Events) != len(tt.want) {
				t.Fatalf("%d events, want %d", len(b.Events), len(tt.want))
			}
			for i := range tt.want {
				diffEvent(t, b.Events[i], tt.want[i])
				if got := action(t, &b.Events[i]); got != tt.actions[i] {
					t.Errorf("event %d: policy action %q for %q, want %q", i, got, b.Events[i].Reply.String(), tt.actions[i])
				}
			}
		})
	}
}

func TestParseWithoutVerifiedID(t *testing.T) {
	t.Parallel()
	s := setup(t, nil)
	b, err := s.a.Parse(fixture(t, "complained.json"))
	if err != nil || len(b.Events) != 1 {
		t.Fatalf("Parse = %+v, %v", b, err)
	}
	want := ingest.CompositeID("resend", "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e14", "email.complained", "2026-02-03T15:00:00.000Z", "kofi@example.net")
	if b.Events[0].ID != want {
		t.Errorf("ID = %q, want the composite %q", b.Events[0].ID, want)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	body := fixture(t, "bounce-permanent.json")
	otherKey, _ := newKey(t)
	tests := []struct {
		name  string
		vars  map[string]string
		setup func(s bundle) *http.Request
		ok    bool
	}{
		{name: "valid", ok: true, setup: func(s bundle) *http.Request {
			return request("msg_1", now, sign(s.key, "msg_1", now, body), body)
		}},
		{name: "rotation: second entry matches", ok: true, setup: func(s bundle) *http.Request {
			return request("msg_1", now, sign(otherKey, "msg_1", now, body)+" "+sign(s.key, "msg_1", now, body), body)
		}},
		{name: "webhook-* header names", ok: true, setup: func(s bundle) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/webhooks/resend", nil)
			r.Header.Set("webhook-id", "msg_1")
			r.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
			r.Header.Set("webhook-signature", sign(s.key, "msg_1", now, body))
			return r
		}},
		{name: "timestamp 4 minutes old", ok: true, setup: func(s bundle) *http.Request {
			ts := now.Add(-4 * time.Minute)
			return request("msg_1", ts, sign(s.key, "msg_1", ts, body), body)
		}},
		{name: "bad signature", setup: func(s bundle) *http.Request {
			return request("msg_1", now, sign(otherKey, "msg_1", now, body), body)
		}},
		{name: "v2 entry only", setup: func(s bundle) *http.Request {
			return request("msg_1", now, "v2,"+strings.TrimPrefix(sign(s.key, "msg_1", now, body), "v1,"), body)
		}},
		{name: "signed for another id", setup: func(s bundle) *http.Request {
			return request("msg_2", now, sign(s.key, "msg_1", now, body), body)
		}},
		{name: "expired timestamp", setup: func(s bundle) *http.Request {
			ts := now.Add(-6 * time.Minute)
			return request("msg_1", ts, sign(s.key, "msg_1", ts, body), body)
		}},
		{name: "timestamp from the future", setup: func(s bundle) *http.Request {
			ts := now.Add(6 * time.Minute)
			return request("msg_1", ts, sign(s.key, "msg_1", ts, body), body)
		}},
		{name: "missing headers", setup: func(s bundle) *http.Request {
			return httptest.NewRequest(http.MethodPost, "/webhooks/resend", nil)
		}},
		{name: "not configured", vars: map[string]string{"REBOUND_RESEND_SIGNING_SECRET": ""}, setup: func(s bundle) *http.Request {
			return request("msg_1", now, sign(s.key, "msg_1", now, body), body)
		}},
		{name: "insecure opt-out", vars: map[string]string{"REBOUND_RESEND_SIGNING_SECRET": "", "REBOUND_RESEND_INSECURE_SKIP_VERIFY": "true"}, ok: true,
			setup: func(s bundle) *http.Request { return httptest.NewRequest(http.MethodPost, "/webhooks/resend", nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := setup(t, tt.vars)
			err := s.a.Authenticate(tt.setup(s), body)
			switch {
			case tt.ok && err != nil:
				t.Fatalf("Authenticate = %v, want nil", err)
			case !tt.ok && !errors.Is(err, ingest.ErrUnauthenticated):
				t.Fatalf("Authenticate = %v, want ErrUnauthenticated", err)
			case err != nil && strings.Contains(err.Error(), s.secret):
				t.Fatalf("error leaks the secret")
			}
		})
	}
}

func TestReplayedSvixID(t *testing.T) {
	t.Parallel()
	s := setup(t, nil)
	body := fixture(t, "delivered.json")
	sig := sign(s.key, "msg_replay", now, body)
	if err := s.a.Authenticate(request("msg_replay", now, sig, body), body); err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	if _, err := s.a.Parse(body); err != nil {
		t.Fatal(err)
	}
	if err := s.a.Authenticate(request("msg_replay", now, sig, body), body); !errors.Is(err, ingest.ErrUnauthenticated) {
		t.Fatalf("replay: Authenticate = %v, want ErrUnauthenticated", err)
	}
	// A forged request must not burn the id: only verified ids are recorded.
	s2 := setup(t, nil)
	_ = s2.a.Authenticate(request("msg_x", now, "v1,AAAA", body), body)
	if err := s2.a.Authenticate(request("msg_x", now, sign(s2.key, "msg_x", now, body), body), body); err != nil {
		t.Fatalf("genuine request after a forged one with its id: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	for name, vars := range map[string]map[string]string{
		"REBOUND_RESEND_SIGNING_SECRET": {"REBOUND_RESEND_SIGNING_SECRET": "whsec_not base64!"},
		"REBOUND_RESEND_TENANT_FROM":    {"REBOUND_RESEND_TENANT_FROM": "metadata:x"},
	} {
		_, err := New(ingest.Env{Getenv: func(k string) string { return vars[k] }})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("New error = %v, want one naming %s", err, name)
		}
	}
}

func TestSyntheticReplies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		typ, sub string
		want     policy.Action
	}{
		{"Permanent", "General", policy.ActionSuppress},
		{"Permanent", "NoEmail", policy.ActionSuppress},
		{"Permanent", "Suppressed", policy.ActionSuppress},
		{"Permanent", "OnAccountSuppressionList", policy.ActionSuppress},
		{"Transient", "MailboxFull", policy.ActionSoft},
		{"Transient", "MessageTooLarge", policy.ActionNone},
		{"Transient", "ContentRejected", policy.ActionNone},
		{"Transient", "AttachmentRejected", policy.ActionNone},
		{"Transient", "General", policy.ActionNone},
		{"Undetermined", "Undetermined", policy.ActionNone},
	}
	for _, c := range cases {
		ev := events.Event{Type: events.TypeBounce, Reply: events.Reply{Text: bounceSynthetic(c.typ, c.sub)}}
		if got := action(t, &ev); got != c.want {
			t.Errorf("%s/%s: %q → %q, want %q", c.typ, c.sub, ev.Reply.Text, got, c.want)
		}
	}
}

func TestOversized(t *testing.T) {
	t.Parallel()
	if _, err := setup(t, nil).a.Parse(make([]byte, maxBody+1)); err == nil || errors.Is(err, ingest.ErrBadRequest) {
		t.Fatalf("Parse(oversized) = %v, want a dead-letter error", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"bounce-permanent.json", "bounce-with-code.json", "suppressed.json", "complained.json", "opened.json", "truncated.json"} {
		f.Add(fixture(f, name))
	}
	a := setup(f, nil).a
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := a.Parse(body)
		if err != nil {
			return
		}
		for i := range b.Events {
			if err := b.Events[i].Normalize(); err != nil {
				t.Fatalf("event %d fails Normalize again: %v", i, err)
			}
		}
	})
}

func BenchmarkIngest(b *testing.B) {
	s := setup(b, nil)
	body := fixture(b, "bounce-permanent.json")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		// Each delivery needs a fresh svix-id: the replay guard refuses repeats.
		i++
		id := "msg_" + strconv.Itoa(i)
		r := request(id, now, sign(s.key, id, now, body), body)
		if err := s.a.Authenticate(r, body); err != nil {
			b.Fatal(err)
		}
		if batch, err := s.a.Parse(body); err != nil || len(batch.Events) != 1 {
			b.Fatal(batch, err)
		}
	}
}
