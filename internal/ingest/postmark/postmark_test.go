package postmark

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/ingesttest"
	"github.com/reboundhq/rebound/internal/policy"
)

const testCreds = "postmark-hooks:Zq8-wV3r+tY7"

// setup builds an adapter with the test credentials; extra settings are merged in.
func setup(t testing.TB, extra map[string]string) *Adapter {
	t.Helper()
	return mustNew(t, ingesttest.With(map[string]string{"REBOUND_POSTMARK_BASIC_AUTH": testCreds}, extra))
}

func mustNew(t testing.TB, vars map[string]string) *Adapter {
	t.Helper()
	return ingesttest.New[*Adapter](t, New, ingesttest.Env(vars))
}

func req(auth string) *http.Request { return ingesttest.Request("postmark", auth) }

func TestNew(t *testing.T) {
	t.Parallel()
	_, err := New(ingesttest.Env(map[string]string{"REBOUND_POSTMARK_BASIC_AUTH": "no-colon-token"}))
	if err == nil || !strings.Contains(err.Error(), "REBOUND_POSTMARK_BASIC_AUTH") {
		t.Fatalf("New = %v, want an error naming REBOUND_POSTMARK_BASIC_AUTH", err)
	}
	if strings.Contains(err.Error(), "no-colon-token") {
		t.Fatalf("error %q leaks the secret", err)
	}
	f := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(f, []byte(testCreds+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := mustNew(t, map[string]string{"REBOUND_POSTMARK_BASIC_AUTH_FILE": f})
	if err := a.Authenticate(req(ingesttest.Basic(testCreds)), nil); err != nil {
		t.Fatalf("credentials from _FILE: %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	a := setup(t, nil)
	tests := []struct {
		name string
		a    *Adapter
		auth string
		ok   bool
	}{
		{"right credentials", a, ingesttest.Basic(testCreds), true},
		{"wrong password", a, ingesttest.Basic("postmark-hooks:guess"), false},
		{"wrong user", a, ingesttest.Basic("admin:Zq8-wV3r+tY7"), false},
		{"no header", a, "", false},
		{"bearer instead", a, "Bearer " + testCreds, false},
		{"not base64", a, "Basic %%%", false},
	}
	ingesttest.VerifyRule(t, New, "REBOUND_POSTMARK_BASIC_AUTH", map[string]string{"REBOUND_POSTMARK_BASIC_AUTH": testCreds},
		func(t testing.TB) (*http.Request, []byte) { return req(""), ingesttest.Fixture(t, "bounce-hard.json") })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.a.Authenticate(req(tt.auth), ingesttest.Fixture(t, "bounce-hard.json"))
			ingesttest.AssertAuth(t, err, tt.ok, "Zq8-wV3r")
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	a := setup(t, map[string]string{"REBOUND_POSTMARK_TENANT_FROM": "tenant"})
	tests := []struct {
		fixture string
		want    events.Event
	}{
		{"bounce-hard.json", events.Event{
			ID: "postmark:3719472011", ESP: "postmark", Type: events.TypeBounce, ProviderSuppressed: true,
			OccurredAt: time.Date(2026, 1, 1, 10, 0, 0, 123456700, time.UTC), Recipient: "lena.hart@example.net",
			Sender: "billing@shop.example", SendingDomain: "shop.example", Tenant: "acme-eu",
			MessageID:  "b7c2e3f0-1d4a-4e5b-9c6d-7e8f9a0b1c2d",
			Reply:      events.Reply{Code: 550, Enhanced: "5.1.1", Text: "smtp;550 5.1.1 <lena.hart@example.net>: Recipient address rejected: User unknown in local recipient table"},
			ESPVerdict: map[string]string{"record_type": "Bounce", "type": "HardBounce", "type_code": "1"},
		}},
		{"bounce-hard-no-details.json", events.Event{
			ID: "postmark:3719472012", ESP: "postmark", Type: events.TypeBounce, ProviderSuppressed: true,
			OccurredAt: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC), Recipient: "typo.user@example.org",
			Sender: "hello@shop.example", SendingDomain: "shop.example",
			MessageID:  "c8d3f4a1-2e5b-4f6c-8d7e-8f9a0b1c2d3e",
			Reply:      events.Reply{Text: "postmark: hard bounce, recipient unknown"},
			ESPVerdict: map[string]string{"record_type": "Bounce", "type": "HardBounce", "type_code": "1"},
		}},
		{"bounce-soft.json", events.Event{
			ID: "postmark:3719472013", ESP: "postmark", Type: events.TypeBounce,
			OccurredAt: time.Date(2026, 1, 1, 11, 30, 0, 0, time.UTC), Recipient: "marco.vieri@example.org",
			Sender: "news@shop.example", SendingDomain: "shop.example",
			MessageID:  "d9e4a5b2-3f6c-4a7d-9e8f-9a0b1c2d3e4f",
			Reply:      events.Reply{Code: 452, Enhanced: "4.2.2", Text: "smtp;452 4.2.2 The email account that you tried to reach is over quota."},
			ESPVerdict: map[string]string{"record_type": "Bounce", "type": "SoftBounce", "type_code": "4096"},
		}},
		{"bounce-blocked.json", events.Event{
			ID: "postmark:3719472014", ESP: "postmark", Type: events.TypeBounce,
			OccurredAt: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), Recipient: "ops-team@example.com",
			Sender: "news@shop.example", SendingDomain: "shop.example",
			MessageID:  "e0f5b6c3-4a7d-4b8e-8f9a-0b1c2d3e4f50",
			Reply:      events.Reply{Text: "postmark: blocked by the recipient server (sender reputation)"},
			ESPVerdict: map[string]string{"record_type": "Bounce", "type": "Blocked", "type_code": "100006"},
		}},
		{"bounce-dmarc.json", events.Event{
			ID: "postmark:3719472015", ESP: "postmark", Type: events.TypeBounce,
			OccurredAt: time.Date(2026, 1, 1, 12, 5, 0, 0, time.UTC), Recipient: "buyer@example.com",
			Sender: "orders@shop.example", SendingDomain: "shop.example",
			MessageID:  "f1a6c7d4-5b8e-4c9f-9a0b-1c2d3e4f5061",
			Reply:      events.Reply{Text: "postmark: rejected by the recipient's DMARC policy"},
			ESPVerdict: map[string]string{"record_type": "Bounce", "type": "DMARCPolicy", "type_code": "100009"},
		}},
		{"bounce-spam-notification.json", events.Event{
			ID: "postmark:3719472016", ESP: "postmark", Type: events.TypeBounce,
			OccurredAt: time.Date(2026, 1, 1, 12, 10, 0, 0, time.UTC), Recipient: "someone@example.net",
			Sender: "news@shop.example", SendingDomain: "shop.example",
			MessageID:  "a2b7d8e5-6c9f-4d0a-8b1c-2d3e4f506172",
			Reply:      events.Reply{Text: "postmark: spam notification, the recipient server flagged the sender as a known spam source"},
			ESPVerdict: map[string]string{"record_type": "Bounce", "type": "SpamNotification", "type_code": "512"},
		}},
		{"transient.json", events.Event{
			ID: "postmark:3719472017", ESP: "postmark", Type: events.TypeDeferral,
			OccurredAt: time.Date(2026, 1, 1, 12, 20, 0, 0, time.UTC), Recipient: "j.okafor@example.org",
			Sender: "orders@shop.example", SendingDomain: "shop.example",
			MessageID:  "b3c8e9f6-7d0a-4e1b-9c2d-3e4f50617283",
			Reply:      events.Reply{Code: 421, Enhanced: "4.7.0", Text: "smtp;421 4.7.0 Try again later, closing connection."},
			ESPVerdict: map[string]string{"record_type": "Bounce", "type": "Transient", "type_code": "2"},
		}},
		{"spam-complaint.json", events.Event{
			ID: "postmark:3719472018", ESP: "postmark", Type: events.TypeComplaint, ProviderSuppressed: true,
			OccurredAt: time.Date(2026, 1, 1, 12, 30, 0, 0, time.UTC), Recipient: "p.lindqvist@example.com",
			Sender: "news@shop.example", SendingDomain: "shop.example",
			MessageID:  "c4d9f0a7-8e1b-4f2c-8d3e-4f5061728394",
			ESPVerdict: map[string]string{"record_type": "SpamComplaint", "type": "SpamComplaint", "type_code": "100001"},
		}},
		{"manually-deactivated.json", events.Event{
			ID: "postmark:3719472021", ESP: "postmark", Type: events.TypeDropped, ProviderSuppressed: true,
			OccurredAt: time.Date(2026, 1, 1, 13, 20, 0, 0, time.UTC), Recipient: "old.customer@example.net",
			Sender: "orders@shop.example", SendingDomain: "shop.example",
			MessageID:  "f7a2c3d0-1b4e-4c5f-9a61-728394051627",
			Reply:      events.Reply{Text: "postmark: sending to this address was turned off in Postmark"},
			ESPVerdict: map[string]string{"record_type": "Bounce", "type": "ManuallyDeactivated", "type_code": "100002"},
		}},
		{"subscription-change-manual.json", events.Event{
			ID:  ingest.CompositeID("postmark", "a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "SubscriptionChange", "reader@example.org", "2026-01-01T14:05:00Z"),
			ESP: "postmark", Type: events.TypeDropped, ProviderSuppressed: true,
			OccurredAt: time.Date(2026, 1, 1, 14, 5, 0, 0, time.UTC), Recipient: "reader@example.org", Tenant: "acme-eu",
			MessageID:  "a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
			Reply:      events.Reply{Text: "synthetic (Postmark SubscriptionChange ManualSuppression, origin Recipient, not sent): 550 5.7.1 Unsubscribed Address: sending to this recipient was suppressed for this sender"},
			ESPVerdict: map[string]string{"record_type": "SubscriptionChange", "suppression_reason": "ManualSuppression", "origin": "Recipient"},
		}},
		{"delivery.json", events.Event{
			ID:  ingest.CompositeID("postmark", "d5e0a1b8-9f2c-4a3d-9e4f-506172839405", "Delivery", "lena.hart@example.net", "2026-01-01T12:40:00-05:00"),
			ESP: "postmark", Type: events.TypeDelivered,
			OccurredAt: time.Date(2026, 1, 1, 17, 40, 0, 0, time.UTC), Recipient: "lena.hart@example.net", Tenant: "acme-eu",
			MessageID:  "d5e0a1b8-9f2c-4a3d-9e4f-506172839405",
			Reply:      events.Reply{Text: "smtp;250 2.0.0 OK 1767289200 x12-20020a17090"},
			ESPVerdict: map[string]string{"record_type": "Delivery"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			body := ingesttest.Fixture(t, tt.fixture)
			if err := a.Authenticate(req(ingesttest.Basic(testCreds)), body); err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			got, err := a.Parse(body)
			ingesttest.AssertBatch(t, got, err, ingesttest.Want{Events: []events.Event{tt.want}})
		})
	}
}

// TestManualSuppressionIsForTheTenant: an unsubscribe through Postmark's link is the
// recipient's wish about this sender: suppressed for the tenant, not for every tenant.
func TestManualSuppressionIsForTheTenant(t *testing.T) {
	t.Parallel()
	a := setup(t, map[string]string{"REBOUND_POSTMARK_TENANT_FROM": "tenant"})
	got, err := a.Parse(ingesttest.Fixture(t, "subscription-change-manual.json"))
	if err != nil || len(got.Events) != 1 {
		t.Fatalf("Parse = %+v, %v", got, err)
	}
	if d := ingesttest.Decision(t, &got.Events[0]); d.Action != policy.ActionSuppress || d.Global {
		t.Errorf("%q → %s (global %v), want suppress for the tenant", got.Events[0].Reply.Text, d.Action, d.Global)
	}
}

func TestTenantFromTag(t *testing.T) {
	t.Parallel()
	a := setup(t, map[string]string{"REBOUND_POSTMARK_TENANT_FROM": "tag"})
	got, err := a.Parse(ingesttest.Fixture(t, "bounce-hard.json"))
	if err != nil || len(got.Events) != 1 {
		t.Fatalf("Parse = %+v, %v", got, err)
	}
	if got.Events[0].Tenant != "invoices" {
		t.Errorf("tenant = %q, want the Tag", got.Events[0].Tenant)
	}
}

func TestParseNotMapped(t *testing.T) {
	t.Parallel()
	a := setup(t, nil)
	tests := []struct {
		fixture          string
		rejects, ignored int
		reason           string
	}{
		{"open.json", 0, 1, ""},
		// Reported by its own Bounce record; a reactivation lifts nothing here.
		{"subscription-change-hard-bounce.json", 0, 1, ""},
		{"subscription-change-reactivated.json", 0, 1, ""},
		{"no-email.json", 1, 0, "recipient"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			got, err := a.Parse(ingesttest.Fixture(t, tt.fixture))
			ingesttest.AssertBatch(t, got, err, ingesttest.Want{Rejects: tt.rejects, Ignored: tt.ignored, RejectReason: tt.reason})
		})
	}
}

func TestParseUnreadable(t *testing.T) {
	t.Parallel()
	a := setup(t, nil)
	for name, body := range map[string][]byte{
		"truncated": ingesttest.Fixture(t, "malformed.json"),
		"empty":     nil,
		"array":     []byte(`[]`),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := a.Parse(body)
			ingesttest.AssertUnreadable(t, err)
		})
	}
}

func FuzzParse(f *testing.F) {
	seeds := ingesttest.Fixtures(f)
	seeds = append(seeds, []byte(`{"TypeCode":"1","ID":"7","Email":"a@b.example","From":"\"x\" <>","BouncedAt":"2026-01-01T00:00:00Z"}`))
	a := mustNew(f, map[string]string{"REBOUND_POSTMARK_TENANT_FROM": "tenant"})
	ingesttest.FuzzParseOne(f, a, seeds...)
}

func BenchmarkIngest(b *testing.B) {
	a := setup(b, map[string]string{"REBOUND_POSTMARK_TENANT_FROM": "tenant"})
	ingesttest.BenchIngest(b, a, req(ingesttest.Basic(testCreds)), ingesttest.Fixture(b, "bounce-hard.json"), 1)
}

// TestStandInsClassify runs every bounce type's stand-in text through the catalog the
// way the process stage does.
func TestStandInsClassify(t *testing.T) {
	t.Parallel()
	cat := ingesttest.Catalog(t)
	want := map[string]catalog.Class{
		"HardBounce": "recipient_unknown", "BadEmailAddress": "recipient_unknown",
		"SoftBounce": "unknown", "DnsError": "network_error", "Transient": "unknown",
		"Blocked": "reputation_block", "DMARCPolicy": "sender_auth_policy", "SpamNotification": "reputation_block",
		"VirusNotification": "content_rejected", "Unknown": "unknown", "ManuallyDeactivated": "mailbox_disabled",
	}
	for name, kind := range bounceKinds {
		if kind.typ == events.TypeComplaint {
			continue
		}
		class, ok := want[name]
		if !ok {
			t.Errorf("%s: no expectation", name)
			continue
		}
		r := reply("", kind.text)
		cl := cat.Classify(r.String(), catalog.Hints{})
		if cl.Class != class {
			t.Errorf("%s: %q classified %s (%s), want %s", name, r.Text, cl.Class, cl.Rule, class)
		}
	}
}
