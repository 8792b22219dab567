package mailersend

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/ingesttest"
	"github.com/reboundhq/rebound/internal/policy"
)

const testSecret = "ms-signing-secret-for-tests-only"

// setup builds the adapter from the given variables (nil: a configured default).
func setup(t testing.TB, vars map[string]string) *Adapter {
	t.Helper()
	if vars == nil {
		vars = map[string]string{"REBOUND_MAILERSEND_SIGNING_SECRET": testSecret, "REBOUND_MAILERSEND_TENANT_FROM": "tag:tenant-"}
	}
	return ingesttest.New[*Adapter](t, New, ingesttest.Env(vars))
}

func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func request(body []byte, sig string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/mailersend", strings.NewReader(string(body)))
	if sig != "" {
		r.Header.Set("Signature", sig)
	}
	return r
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file    string
		want    *events.Event // nil: no event
		action  policy.Action
		ignored int
		rejects int
		err     bool
	}{
		{file: "hard-bounce.json", action: policy.ActionSuppress, want: &events.Event{
			ID: "mailersend:6790a1b2c3d4e5f601a2b3c4", ESP: "mailersend", Type: events.TypeBounce,
			OccurredAt: ingesttest.At("2026-01-12T08:15:02Z"), Recipient: "Nadia.Q@example.net",
			Sender: "billing@mail.shop.example", SendingDomain: "mail.shop.example", Tenant: "t42",
			MessageID:  "6790a1b2c3d4e5f601a2aaaa",
			Reply:      events.Reply{Code: 550, Enhanced: "5.1.1", Text: "<Nadia.Q@example.net>: Recipient address rejected: User unknown in virtual mailbox table"},
			ESPVerdict: map[string]string{"type": "hard_bounced", "morph_object": "recipient_bounce", "email_status": "rejected"},
		}},
		{file: "soft-bounce.json", action: policy.ActionSoft, want: &events.Event{
			ID: "mailersend:6790a1b2c3d4e5f601a2b3c5", ESP: "mailersend", Type: events.TypeBounce,
			OccurredAt: ingesttest.At("2026-01-12T09:00:00Z"), Recipient: "omar@example.org",
			Sender: "billing@mail.shop.example", SendingDomain: "mail.shop.example", MessageID: "6790a1b2c3d4e5f601a2aaab",
			Reply:      events.Reply{Code: 552, Enhanced: "5.2.2", Text: "The email account that you tried to reach is over quota."},
			ESPVerdict: map[string]string{"type": "soft_bounced", "morph_object": "recipient_bounce", "email_status": "soft_bounced"},
		}},
		{file: "block.json", action: policy.ActionAlert, want: &events.Event{
			ID: "mailersend:6790a1b2c3d4e5f601a2b3c6", ESP: "mailersend", Type: events.TypeBounce,
			OccurredAt: ingesttest.At("2026-01-12T09:10:00Z"), Recipient: "li@example.com",
			Sender: "billing@mail.shop.example", SendingDomain: "mail.shop.example", MessageID: "6790a1b2c3d4e5f601a2aaac",
			Reply:      events.Reply{Code: 554, Enhanced: "5.7.1", Text: "Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org"},
			ESPVerdict: map[string]string{"type": "hard_bounced", "morph_object": "recipient_bounce", "email_status": "rejected"},
		}},
		{file: "no-reason.json", action: policy.ActionSuppress, want: &events.Event{
			ID: "mailersend:6790a1b2c3d4e5f601a2b3c7", ESP: "mailersend", Type: events.TypeBounce,
			OccurredAt: ingesttest.At("2026-01-12T09:20:00Z"), Recipient: "pat@example.com",
			Sender: "billing@mail.shop.example", SendingDomain: "mail.shop.example", MessageID: "6790a1b2c3d4e5f601a2aaad",
			Reply:      events.Reply{Text: synthetic["hard_bounced"]},
			ESPVerdict: map[string]string{"type": "hard_bounced", "morph_object": "recipient_bounce", "email_status": "rejected"},
		}},
		{file: "deferred.json", action: policy.ActionNone, want: &events.Event{
			ID: "mailersend:6790a1b2c3d4e5f601a2b3c8", ESP: "mailersend", Type: events.TypeDeferral,
			OccurredAt: ingesttest.At("2026-01-12T09:30:00Z"), Recipient: "omar@example.org",
			Sender: "billing@mail.shop.example", SendingDomain: "mail.shop.example", MessageID: "6790a1b2c3d4e5f601a2aaae",
			Reply:      events.Reply{Code: 451, Enhanced: "4.7.1", Text: "Greylisting in action, please come back later"},
			ESPVerdict: map[string]string{"type": "deferred", "morph_object": "recipient_bounce", "email_status": "deferred"},
		}},
		{file: "complaint.json", action: policy.ActionSuppress, want: &events.Event{
			ID: "mailersend:6790a1b2c3d4e5f601a2b3c9", ESP: "mailersend", Type: events.TypeComplaint,
			OccurredAt: ingesttest.At("2026-01-12T10:00:00Z"), Recipient: "ana@example.net", Tenant: "t7",
			Sender: "news@mail.shop.example", SendingDomain: "mail.shop.example", MessageID: "6790a1b2c3d4e5f601a2aaaf",
			ESPVerdict: map[string]string{"type": "spam_complaint", "morph_object": "spam_complaint", "email_status": "delivered"},
		}},
		{file: "delivered.json", action: policy.ActionReset, want: &events.Event{
			ID: "mailersend:6790a1b2c3d4e5f601a2b3d0", ESP: "mailersend", Type: events.TypeDelivered,
			OccurredAt: ingesttest.At("2026-01-12T10:05:00Z"), Recipient: "omar@example.org",
			Sender: "billing@mail.shop.example", SendingDomain: "mail.shop.example", MessageID: "6790a1b2c3d4e5f601a2aab0",
			ESPVerdict: map[string]string{"type": "delivered", "email_status": "delivered"},
		}},
		{file: "unsubscribed.json", action: policy.ActionSuppress, want: &events.Event{
			ID: "mailersend:6790a1b2c3d4e5f601a2b3d1", ESP: "mailersend", Type: events.TypeDropped, ProviderSuppressed: true,
			OccurredAt: ingesttest.At("2026-01-12T10:10:00Z"), Recipient: "dee@example.net", Tenant: "t7",
			Sender: "news@mail.shop.example", SendingDomain: "mail.shop.example", MessageID: "6790a1b2c3d4e5f601a2aab1",
			Reply: events.Reply{Text: "synthetic (MailerSend unsubscribed, not sent): " + ingest.OptOutUnsubscribed},
			ESPVerdict: map[string]string{"type": "unsubscribed", "morph_object": "recipient_unsubscribe", "email_status": "delivered",
				"unsubscribe_reason": "NO_LONGER_WANT"},
		}},
		{file: "opened.json", ignored: 1},
		{file: "bad-recipient.json", rejects: 1},
		{file: "truncated.json", err: true},
	}
	a := setup(t, nil)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			body := ingesttest.Fixture(t, tt.file)
			if err := a.Authenticate(request(body, sign(testSecret, body)), body); err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			var want []events.Event
			var actions []policy.Action
			if tt.want != nil {
				want, actions = []events.Event{*tt.want}, []policy.Action{tt.action}
			}
			b, err := a.Parse(body)
			ingesttest.AssertBatch(t, b, err, ingesttest.Want{Events: want, Actions: actions, Ignored: tt.ignored, Rejects: tt.rejects, Unreadable: tt.err})
		})
	}
}

// TestUnsubscribedIsForTheTenant: the recipient's opt-out from this sender, suppressed
// for the tenant only.
func TestUnsubscribedIsForTheTenant(t *testing.T) {
	t.Parallel()
	b, err := setup(t, nil).Parse(ingesttest.Fixture(t, "unsubscribed.json"))
	ingesttest.AssertOptOuts(t, b, err, 1)
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	body := ingesttest.Fixture(t, "hard-bounce.json")
	good := sign(testSecret, body)
	tests := []struct {
		name string
		vars map[string]string
		body []byte
		sig  string
		ok   bool
	}{
		{name: "valid", body: body, sig: good, ok: true},
		{name: "valid, upper-case hex", body: body, sig: strings.ToUpper(good), ok: true},
		{name: "no header", body: body},
		{name: "wrong secret", body: body, sig: sign("another-secret", body)},
		{name: "body changed", body: append([]byte(" "), body...), sig: good},
		{name: "truncated body", body: body[:len(body)/2], sig: good},
		{name: "signature truncated", body: body, sig: good[:32]},
	}
	ingesttest.VerifyRule(t, New, "REBOUND_MAILERSEND_SIGNING_SECRET", map[string]string{"REBOUND_MAILERSEND_SIGNING_SECRET": testSecret},
		func(testing.TB) (*http.Request, []byte) { return request(body, "00"), body })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := setup(t, tt.vars)
			err := a.Authenticate(request(tt.body, tt.sig), tt.body)
			ingesttest.AssertAuth(t, err, tt.ok, testSecret)
		})
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"tags:x", "tag:", "var", "header:x"} {
		_, err := New(ingesttest.Env(map[string]string{"REBOUND_MAILERSEND_TENANT_FROM": v}))
		if err == nil || !strings.Contains(err.Error(), "REBOUND_MAILERSEND_TENANT_FROM") {
			t.Errorf("TENANT_FROM=%q: New error = %v, want one naming the variable", v, err)
		}
	}
	_, err := New(ingest.Env{Getenv: func(k string) string {
		return map[string]string{"REBOUND_MAILERSEND_SIGNING_SECRET": "a", "REBOUND_MAILERSEND_SIGNING_SECRET_FILE": "/nonexistent"}[k]
	}})
	if err == nil {
		t.Error("both secret and _FILE set: New succeeded")
	}
}

func TestTenantVar(t *testing.T) {
	t.Parallel()
	a := setup(t, map[string]string{"REBOUND_MAILERSEND_SIGNING_SECRET": testSecret, "REBOUND_MAILERSEND_TENANT_FROM": "var:tenant"})
	body := []byte(`{"type":"activity.delivered","data":{"id":"x1","type":"delivered","created_at":"2026-01-12T10:05:00Z",
		"email":{"recipient":{"email":"a@example.com"},"variables":{"tenant":"t9"}}}}`)
	b, err := a.Parse(body)
	if err != nil || len(b.Events) != 1 || b.Events[0].Tenant != "t9" {
		t.Fatalf("Parse = %+v, %v; want one event with tenant t9", b, err)
	}
}

func TestSyntheticReplies(t *testing.T) {
	t.Parallel()
	want := map[string]policy.Action{"hard_bounced": policy.ActionSuppress, "soft_bounced": policy.ActionNone, "deferred": policy.ActionNone}
	for name, text := range synthetic {
		ev := events.Event{Type: types[name], Reply: events.Reply{Text: text}}
		if got := ingesttest.Decide(t, &ev); got != want[name] {
			t.Errorf("%s: %q → %q, want %q", name, text, got, want[name])
		}
	}
}

func TestOversized(t *testing.T) {
	t.Parallel()
	body := make([]byte, maxBody+1)
	_, err := setup(t, nil).Parse(body)
	ingesttest.AssertUnreadable(t, err)
}

func FuzzParse(f *testing.F) {
	ingesttest.FuzzParseOne(f, setup(f, nil), ingesttest.Fixtures(f, "hard-bounce.json", "soft-bounce.json", "complaint.json", "delivered.json", "opened.json", "truncated.json")...)
}

func BenchmarkIngest(b *testing.B) {
	a := setup(b, nil)
	body := ingesttest.Fixture(b, "hard-bounce.json")
	ingesttest.BenchIngest(b, a, request(body, sign(testSecret, body)), body, 1)
}
