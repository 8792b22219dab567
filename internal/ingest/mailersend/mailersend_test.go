package mailersend

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/policy"
)

const testSecret = "ms-signing-secret-for-tests-only"

// setup builds the adapter from the given variables (nil: a configured default).
func setup(t testing.TB, vars map[string]string) *Adapter {
	t.Helper()
	if vars == nil {
		vars = map[string]string{"REBOUND_MAILERSEND_SIGNING_SECRET": testSecret, "REBOUND_MAILERSEND_TENANT_FROM": "tag:tenant-"}
	}
	a, err := New(ingest.Env{Getenv: func(k string) string { return vars[k] }, Now: time.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a.(*Adapter)
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
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

var classify = sync.OnceValues(catalog.Default)

// action is what the default policy does with the event: the end-to-end meaning.
func action(t *testing.T, ev *events.Event) policy.Action {
	t.Helper()
	cat, err := classify()
	if err != nil {
		t.Fatal(err)
	}
	cl := cat.Classify(ev.Reply.String(), catalog.Hints{Code: ev.Reply.Code, Enhanced: ev.Reply.Enhanced, RemoteHost: ev.MTA})
	return policy.Default().Decide(ev, cl).Action
}

// diffEvent reports every field that differs.
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
			OccurredAt: at("2026-01-12T08:15:02Z"), Recipient: "Nadia.Q@example.net",
			Sender: "billing@mail.shop.example", SendingDomain: "mail.shop.example", Tenant: "t42",
			MessageID:  "6790a1b2c3d4e5f601a2aaaa",
			Reply:      events.Reply{Code: 550, Enhanced: "5.1.1", Text: "<Nadia.Q@example.net>: Recipient address rejected: User unknown in virtual mailbox table"},
			ESPVerdict: map[string]string{"type": "hard_bounced", "morph_object": "recipient_bounce", "email_status": "rejected"},
		}},
		{file: "soft-bounce.json", action: policy.ActionSoft, want: &events.Event{
			ID: "mailersend:6790a1b2c3d4e5f601a2b3c5", ESP: "mailersend", Type: events.TypeBounce,
			OccurredAt: at("2026-01-12T09:00:00Z"), Recipient: "omar@example.org",
			Sender: "billing@mail.shop.example", SendingDomain: "mail.shop.example", MessageID: "6790a1b2c3d4e5f601a2aaab",
			Reply:      events.Reply{Code: 552, Enhanced: "5.2.2", Text: "The email account that you tried to reach is over quota."},
			ESPVerdict: map[string]string{"type": "soft_bounced", "morph_object": "recipient_bounce", "email_status": "soft_bounced"},
		}},
		{file: "block.json", action: policy.ActionAlert, want: &events.Event{
			ID: "mailersend:6790a1b2c3d4e5f601a2b3c6", ESP: "mailersend", Type: events.TypeBounce,
			OccurredAt: at("2026-01-12T09:10:00Z"), Recipient: "li@example.com",
			Sender: "billing@mail.shop.example", SendingDomain: "mail.shop.example", MessageID: "6790a1b2c3d4e5f601a2aaac",
			Reply:      events.Reply{Code: 554, Enhanced: "5.7.1", Text: "Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org"},
			ESPVerdict: map[string]string{"type": "hard_bounced", "morph_object": "recipient_bounce", "email_status": "rejected"},
		}},
		{file: "no-reason.json", action: policy.ActionSuppress, want: &events.Event{
			ID: "mailersend:6790a1b2c3d4e5f601a2b3c7", ESP: "mailersend", Type: events.TypeBounce,
			OccurredAt: at("2026-01-12T09:20:00Z"), Recipient: "pat@example.com",
			Sender: "billing@mail.shop.example", SendingDomain: "mail.shop.example", MessageID: "6790a1b2c3d4e5f601a2aaad",
			Reply:      events.Reply{Text: synthetic["hard_bounced"]},
			ESPVerdict: map[string]string{"type": "hard_bounced", "morph_object": "recipient_bounce", "email_status": "rejected"},
		}},
		{file: "deferred.json", action: policy.ActionNone, want: &events.Event{
			ID: "mailersend:6790a1b2c3d4e5f601a2b3c8", ESP: "mailersend", Type: events.TypeDeferral,
			OccurredAt: at("2026-01-12T09:30:00Z"), Recipient: "omar@example.org",
			Sender: "billing@mail.shop.example", SendingDomain: "mail.shop.example", MessageID: "6790a1b2c3d4e5f601a2aaae",
			Reply:      events.Reply{Code: 451, Enhanced: "4.7.1", Text: "Greylisting in action, please come back later"},
			ESPVerdict: map[string]string{"type": "deferred", "morph_object": "recipient_bounce", "email_status": "deferred"},
		}},
		{file: "complaint.json", action: policy.ActionSuppress, want: &events.Event{
			ID: "mailersend:6790a1b2c3d4e5f601a2b3c9", ESP: "mailersend", Type: events.TypeComplaint,
			OccurredAt: at("2026-01-12T10:00:00Z"), Recipient: "ana@example.net", Tenant: "t7",
			Sender: "news@mail.shop.example", SendingDomain: "mail.shop.example", MessageID: "6790a1b2c3d4e5f601a2aaaf",
			ESPVerdict: map[string]string{"type": "spam_complaint", "morph_object": "spam_complaint", "email_status": "delivered"},
		}},
		{file: "delivered.json", action: policy.ActionReset, want: &events.Event{
			ID: "mailersend:6790a1b2c3d4e5f601a2b3d0", ESP: "mailersend", Type: events.TypeDelivered,
			OccurredAt: at("2026-01-12T10:05:00Z"), Recipient: "omar@example.org",
			Sender: "billing@mail.shop.example", SendingDomain: "mail.shop.example", MessageID: "6790a1b2c3d4e5f601a2aab0",
			ESPVerdict: map[string]string{"type": "delivered", "email_status": "delivered"},
		}},
		{file: "opened.json", ignored: 1},
		{file: "bad-recipient.json", rejects: 1},
		{file: "truncated.json", err: true},
	}
	a := setup(t, nil)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			body := fixture(t, tt.file)
			if err := a.Authenticate(request(body, sign(testSecret, body)), body); err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			b, err := a.Parse(body)
			if tt.err {
				if err == nil || errors.Is(err, ingest.ErrBadRequest) {
					t.Fatalf("Parse error = %v, want a non-bad-request error (dead-lettered)", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if b.Ignored != tt.ignored || len(b.Rejects) != tt.rejects {
				t.Errorf("ignored %d rejects %v, want %d and %d", b.Ignored, b.Rejects, tt.ignored, tt.rejects)
			}
			for _, r := range b.Rejects {
				if len(r.Raw) == 0 || r.Reason == "" {
					t.Errorf("reject %+v lacks raw bytes or reason", r)
				}
			}
			if tt.want == nil {
				if len(b.Events) != 0 {
					t.Errorf("events %+v, want none", b.Events)
				}
				return
			}
			if len(b.Events) != 1 {
				t.Fatalf("%d events, want 1", len(b.Events))
			}
			diffEvent(t, b.Events[0], *tt.want)
			if got := action(t, &b.Events[0]); got != tt.action {
				t.Errorf("policy action %q for reply %q, want %q", got, b.Events[0].Reply.String(), tt.action)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	body := fixture(t, "hard-bounce.json")
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
		{name: "not configured", vars: map[string]string{}, body: body, sig: good},
		{name: "insecure opt-out", vars: map[string]string{"REBOUND_MAILERSEND_INSECURE_SKIP_VERIFY": "true"}, body: body, ok: true},
		{name: "insecure ignored when a secret is set", vars: map[string]string{"REBOUND_MAILERSEND_SIGNING_SECRET": testSecret, "REBOUND_MAILERSEND_INSECURE_SKIP_VERIFY": "true"}, body: body, sig: "00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := setup(t, tt.vars)
			err := a.Authenticate(request(tt.body, tt.sig), tt.body)
			switch {
			case tt.ok && err != nil:
				t.Fatalf("Authenticate = %v, want nil", err)
			case !tt.ok && !errors.Is(err, ingest.ErrUnauthenticated):
				t.Fatalf("Authenticate = %v, want ErrUnauthenticated", err)
			case err != nil && strings.Contains(err.Error(), testSecret):
				t.Fatalf("error %q leaks the secret", err)
			}
			if tt.name == "not configured" && !strings.Contains(err.Error(), "REBOUND_MAILERSEND_SIGNING_SECRET") {
				t.Errorf("disabled error %q does not name the variable", err)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"tags:x", "tag:", "var", "header:x"} {
		_, err := New(ingest.Env{Getenv: func(k string) string {
			return map[string]string{"REBOUND_MAILERSEND_TENANT_FROM": v}[k]
		}})
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
		if got := action(t, &ev); got != want[name] {
			t.Errorf("%s: %q → %q, want %q", name, text, got, want[name])
		}
	}
}

func TestOversized(t *testing.T) {
	t.Parallel()
	body := make([]byte, maxBody+1)
	if _, err := setup(t, nil).Parse(body); err == nil || errors.Is(err, ingest.ErrBadRequest) {
		t.Fatalf("Parse(oversized) = %v, want a dead-letter error", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"hard-bounce.json", "soft-bounce.json", "complaint.json", "delivered.json", "opened.json", "truncated.json"} {
		f.Add(fixture(f, name))
	}
	a := setup(f, nil)
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
	a := setup(b, nil)
	body := fixture(b, "hard-bounce.json")
	r := request(body, sign(testSecret, body))
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Authenticate(r, body); err != nil {
			b.Fatal(err)
		}
		if batch, err := a.Parse(body); err != nil || len(batch.Events) != 1 {
			b.Fatal(batch, err)
		}
	}
}
