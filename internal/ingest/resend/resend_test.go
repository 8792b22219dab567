package resend

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/ingesttest"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/stream"
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
	vars := ingesttest.With(map[string]string{"REBOUND_RESEND_SIGNING_SECRET": secret, "REBOUND_RESEND_TENANT_FROM": "tag:tenant"}, extra)
	return bundle{a: ingesttest.New[*Adapter](t, New, ingesttest.EnvAt(vars, now)), key: key, secret: secret}
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
			ID: "resend:" + id, ESP: "resend", Type: events.TypeBounce, OccurredAt: ingesttest.At("2026-02-03T14:20:05.112Z"),
			Recipient: "kofi@example.net", Sender: "receipts@mail.shop.example", SendingDomain: "mail.shop.example",
			Tenant: "t42", MessageID: "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e10",
			Reply: events.Reply{Text: bounceSynthetic("Permanent", "General")},
			ESPVerdict: map[string]string{"type": "email.bounced", "bounce_type": "Permanent", "bounce_subtype": "General",
				"bounce_message": "The recipient's mail server permanently rejected the email."},
		}}},
		{file: "bounce-with-code.json", actions: []policy.Action{policy.ActionSoft, policy.ActionSoft}, want: func() []events.Event {
			e := events.Event{
				ESP: "resend", Type: events.TypeBounce, OccurredAt: ingesttest.At("2026-02-03T14:21:05Z"),
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
			ID: "resend:" + id, ESP: "resend", Type: events.TypeBounce, OccurredAt: ingesttest.At("2026-02-03T14:22:05Z"),
			Recipient: "zoe@example.com", Sender: "receipts@mail.shop.example", SendingDomain: "mail.shop.example",
			MessageID: "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e12",
			Reply:     events.Reply{Code: 550, Enhanced: "5.7.1", Text: "Service unavailable, Client host [198.51.100.4] blocked using Spamhaus"},
			ESPVerdict: map[string]string{"type": "email.bounced", "bounce_type": "Permanent", "bounce_subtype": "General",
				"bounce_message": "550 5.7.1 Service unavailable, Client host [198.51.100.4] blocked using Spamhaus"},
		}}},
		{file: "delayed.json", actions: []policy.Action{policy.ActionNone}, want: []events.Event{{
			ID: "resend:" + id, ESP: "resend", Type: events.TypeDeferral, OccurredAt: ingesttest.At("2026-02-03T14:30:00Z"),
			Recipient: "ines@example.org", Sender: "receipts@mail.shop.example", SendingDomain: "mail.shop.example",
			MessageID:  "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e13",
			Reply:      events.Reply{Text: "synthetic (Resend email.delivery_delayed, no reply from the remote server): 451 4.3.0 temporary failure"},
			ESPVerdict: map[string]string{"type": "email.delivery_delayed"},
		}}},
		{file: "complained.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: "resend:" + id, ESP: "resend", Type: events.TypeComplaint, OccurredAt: ingesttest.At("2026-02-03T15:00:00Z"),
			Recipient: "kofi@example.net", Sender: "news@mail.shop.example", SendingDomain: "mail.shop.example",
			Tenant: "t7", MessageID: "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e14",
			ESPVerdict: map[string]string{"type": "email.complained"},
		}}},
		{file: "suppressed.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: "resend:" + id, ESP: "resend", Type: events.TypeDropped, ProviderSuppressed: true, OccurredAt: ingesttest.At("2026-02-03T15:10:00Z"),
			Recipient: "gone@example.com", Sender: "receipts@mail.shop.example", SendingDomain: "mail.shop.example",
			MessageID: "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e15",
			Reply:     events.Reply{Text: "synthetic (Resend email.suppressed, not sent): 550 5.1.1 address is on the ESP suppression list"},
			ESPVerdict: map[string]string{"type": "email.suppressed", "suppressed_type": "OnAccountSuppressionList",
				"suppressed_message": "This address is on your account suppression list."},
		}}},
		{file: "failed.json", actions: []policy.Action{policy.ActionAlert}, want: []events.Event{{
			ID: "resend:" + id, ESP: "resend", Type: events.TypeDropped, OccurredAt: ingesttest.At("2026-02-03T15:20:00Z"),
			Recipient: "ines@example.org", Sender: "receipts@mail.shop.example", SendingDomain: "mail.shop.example",
			MessageID:  "7c1e2f90-5b3a-4d8e-9f21-0a6b4c3d2e16",
			Reply:      events.Reply{Text: "synthetic (Resend email.failed, the ESP did not send): 550 5.7.0 sending not permitted for this account"},
			ESPVerdict: map[string]string{"type": "email.failed", "failed_reason": "reached_daily_quota"},
		}}},
		{file: "delivered.json", actions: []policy.Action{policy.ActionReset}, want: []events.Event{{
			ID: "resend:" + id, ESP: "resend", Type: events.TypeDelivered, OccurredAt: ingesttest.At("2026-02-03T15:30:00Z"),
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
			body := ingesttest.Fixture(t, tt.file)
			if err := s.a.Authenticate(request(id, now, sign(s.key, id, now, body), body), body); err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			b, err := s.a.Parse(body)
			ingesttest.AssertBatch(t, b, err, ingesttest.Want{Events: tt.want, Actions: tt.actions, Ignored: tt.ignored, Rejects: tt.rejects, Unreadable: tt.err})
		})
	}
}

func TestParseWithoutVerifiedID(t *testing.T) {
	t.Parallel()
	s := setup(t, nil)
	b, err := s.a.Parse(ingesttest.Fixture(t, "complained.json"))
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
	body := ingesttest.Fixture(t, "bounce-permanent.json")
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
	}
	_, secret := newKey(t)
	ingesttest.VerifyRule(t, New, "REBOUND_RESEND_SIGNING_SECRET", map[string]string{"REBOUND_RESEND_SIGNING_SECRET": secret},
		func(testing.TB) (*http.Request, []byte) {
			return request("msg_1", now, sign(otherKey, "msg_1", now, body), body), body
		})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := setup(t, tt.vars)
			err := s.a.Authenticate(tt.setup(s), body)
			ingesttest.AssertAuth(t, err, tt.ok, s.secret)
		})
	}
}

// TestOptOutKeepsSvixID: accepted unchecked (no secret, explicit opt-out), a request's
// svix-id is still the event's ID.
func TestOptOutKeepsSvixID(t *testing.T) {
	t.Parallel()
	s := setup(t, map[string]string{"REBOUND_RESEND_SIGNING_SECRET": "", "REBOUND_RESEND_INSECURE_SKIP_VERIFY": "true"})
	body := ingesttest.Fixture(t, "complained.json")
	if err := s.a.Authenticate(request("msg_unchecked", now, "", body), body); err != nil {
		t.Fatalf("Authenticate = %v, want nil (opt-out)", err)
	}
	b, err := s.a.Parse(body)
	if err != nil || len(b.Events) != 1 || b.Events[0].ID != "resend:msg_unchecked" {
		t.Fatalf("Parse = %+v, %v; want one event with ID resend:msg_unchecked", b, err)
	}
}

// TestReplayedSvixID: the handler refuses an svix-id already used; only a verified
// request's id is remembered, so a forged one cannot burn a genuine id.
func TestReplayedSvixID(t *testing.T) {
	t.Parallel()
	s := setup(t, nil)
	mux := http.NewServeMux()
	ingest.NewHandler(nopPublisher{}, metrics.New(), zap.NewNop(), 1<<20, s.a).Register(mux)
	post := func(r *http.Request) int {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Code
	}
	body := ingesttest.Fixture(t, "delivered.json")
	if code := post(request("msg_x", now, "v1,AAAA", body)); code != http.StatusUnauthorized {
		t.Fatalf("forged request = %d, want 401", code)
	}
	sig := sign(s.key, "msg_x", now, body)
	if code := post(request("msg_x", now, sig, body)); code != http.StatusOK {
		t.Fatalf("genuine request after a forged one with its id = %d, want 200", code)
	}
	if code := post(request("msg_x", now, sig, body)); code != http.StatusUnauthorized {
		t.Fatalf("replay = %d, want 401", code)
	}
	if tok, ttl := s.a.ReplayToken(request("msg_x", now, sig, body), body); tok != "msg_x" || ttl != 2*ingest.DefaultReplayWindow {
		t.Errorf("ReplayToken = %q, %s; want the svix-id for two windows", tok, ttl)
	}
	unchecked := setup(t, map[string]string{"REBOUND_RESEND_SIGNING_SECRET": "", "REBOUND_RESEND_INSECURE_SKIP_VERIFY": "true"})
	if tok, _ := unchecked.a.ReplayToken(request("msg_y", now, "", body), body); tok != "" {
		t.Errorf("unchecked ReplayToken = %q, want none", tok)
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, []events.Event) error       { return nil }
func (nopPublisher) DeadLetter(context.Context, stream.DeadLetter) error { return nil }

func TestNewErrors(t *testing.T) {
	t.Parallel()
	for name, vars := range map[string]map[string]string{
		"REBOUND_RESEND_SIGNING_SECRET": {"REBOUND_RESEND_SIGNING_SECRET": "whsec_not base64!"},
		"REBOUND_RESEND_TENANT_FROM":    {"REBOUND_RESEND_TENANT_FROM": "metadata:x"},
	} {
		_, err := New(ingesttest.Env(vars))
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
		if got := ingesttest.Decide(t, &ev); got != c.want {
			t.Errorf("%s/%s: %q → %q, want %q", c.typ, c.sub, ev.Reply.Text, got, c.want)
		}
	}
}

func TestOversized(t *testing.T) {
	t.Parallel()
	_, err := setup(t, nil).a.Parse(make([]byte, maxBody+1))
	ingesttest.AssertUnreadable(t, err)
}

func FuzzParse(f *testing.F) {
	ingesttest.FuzzParse(f, setup(f, nil).a, ingesttest.Fixtures(f, "bounce-permanent.json", "bounce-with-code.json", "suppressed.json", "complained.json", "opened.json", "truncated.json")...)
}

func BenchmarkIngest(b *testing.B) {
	s := setup(b, nil)
	body := ingesttest.Fixture(b, "bounce-permanent.json")
	b.ReportAllocs()
	i := 0
	// Each delivery needs a fresh svix-id (the replay guard refuses repeats), so
	// ingesttest.BenchIngest, which replays one request, does not fit.
	for b.Loop() {
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

// FuzzSvixHeaders fuzzes what runs on a Resend request before it is authenticated: the
// Svix headers are split and checked, then the signature over the body. It must never
// panic; svix-signature yields at most maxSignatures non-empty v1 entries; and nothing
// is accepted that the headers check alone refuses.
func FuzzSvixHeaders(f *testing.F) {
	s := setup(f, nil)
	body := ingesttest.Fixture(f, "delivered.json")
	ts := strconv.FormatInt(now.Unix(), 10)
	f.Add("msg_1", ts, sign(s.key, "msg_1", now, body), body)
	f.Add("msg_1", ts, "v1,AAAA v1a,BBBB "+sign(s.key, "msg_1", now, body), body)
	f.Add("msg_1", ts, "v1, v1,, ,v1 v2,x v1,=", body)
	f.Add("msg_1", "-1", "v1,x", body)
	f.Add("msg_1", "99999999999999999999", "v1,x", body)
	f.Add("", "", "", []byte(nil))
	f.Add("msg_1", ts, strings.Repeat("v1,x ", 100), body)
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		v1 := v1Signatures(sig)
		if len(v1) > maxSignatures {
			t.Fatalf("%d v1 signatures kept, want at most %d", len(v1), maxSignatures)
		}
		for _, e := range v1 {
			if len(e) == 0 {
				t.Fatalf("empty v1 signature from %q", sig)
			}
		}
		r := httptest.NewRequest(http.MethodPost, "/webhooks/resend", nil)
		r.Header["Svix-Id"] = []string{id}
		r.Header["Svix-Timestamp"] = []string{ts}
		r.Header["Svix-Signature"] = []string{sig}
		herr := s.a.AuthenticateHeaders(r)
		err := s.a.Authenticate(r, body)
		if herr != nil && err == nil {
			t.Fatalf("Authenticate accepted what AuthenticateHeaders refused: %v", herr)
		}
		if err == nil {
			s.a.ids.take(body)
		}
	})
}
