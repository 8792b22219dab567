package sparkpost

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/ingesttest"
)

const testCreds = "sparkpost-hooks:P4r-k9Lm+2Qx"

// setup builds an adapter with the test credentials; extra settings are merged in.
func setup(t testing.TB, extra map[string]string) *Adapter {
	t.Helper()
	return mustNew(t, ingesttest.With(map[string]string{"REBOUND_SPARKPOST_BASIC_AUTH": testCreds}, extra))
}

func mustNew(t testing.TB, vars map[string]string) *Adapter {
	t.Helper()
	return ingesttest.New[*Adapter](t, New, ingesttest.Env(vars))
}

func req(auth string) *http.Request { return ingesttest.Request("sparkpost", auth) }

func TestNew(t *testing.T) {
	t.Parallel()
	_, err := New(ingesttest.Env(map[string]string{"REBOUND_SPARKPOST_BASIC_AUTH": "a-bearer-token"}))
	if err == nil || !strings.Contains(err.Error(), "REBOUND_SPARKPOST_BASIC_AUTH") {
		t.Fatalf("New = %v, want an error naming REBOUND_SPARKPOST_BASIC_AUTH", err)
	}
	if strings.Contains(err.Error(), "a-bearer-token") {
		t.Fatalf("error %q leaks the secret", err)
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
		{"wrong password", a, ingesttest.Basic("sparkpost-hooks:guess"), false},
		{"no header", a, "", false},
		{"bearer is not accepted", a, "Bearer " + testCreds, false},
	}
	ingesttest.VerifyRule(t, New, "REBOUND_SPARKPOST_BASIC_AUTH", map[string]string{"REBOUND_SPARKPOST_BASIC_AUTH": testCreds},
		func(t testing.TB) (*http.Request, []byte) { return req(""), ingesttest.Fixture(t, "bounce-hard.json") })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.a.Authenticate(req(tt.auth), ingesttest.Fixture(t, "bounce-hard.json"))
			ingesttest.AssertAuth(t, err, tt.ok, "P4r-k9Lm")
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	a := setup(t, map[string]string{"REBOUND_SPARKPOST_TENANT_FROM": "tenant"})
	tests := []struct {
		fixture string
		want    events.Event
	}{
		{"bounce-hard.json", events.Event{
			ID: "sparkpost:92356927693813856", ESP: "sparkpost", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767225600, 0).UTC(), Recipient: "lena.hart@example.net",
			Sender: "msprvs1=1767225600_abc@bounces.shop.example", SendingDomain: "bounces.shop.example",
			SendingIP: "192.0.2.20", IPPool: "transactional", Tenant: "acme-eu",
			MessageID:  "0e0d94b7-9085-4e3c-ab30-e3f2cd9c273e",
			Reply:      events.Reply{Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 <lena.hart@example.net>: Recipient address rejected: User unknown"},
			ESPVerdict: map[string]string{"type": "bounce", "bounce_class": "10"},
		}},
		{"bounce-soft.json", events.Event{
			ID: "sparkpost:92356927693813857", ESP: "sparkpost", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767229200, 0).UTC(), Recipient: "marco.vieri@example.org",
			Sender: "bounces@bounces.shop.example", SendingDomain: "bounces.shop.example",
			SendingIP: "192.0.2.20", IPPool: "transactional",
			MessageID:  "1f1ea5c8-a196-4f4d-bc41-f4a3de0d3840",
			Reply:      events.Reply{Code: 552, Enhanced: "5.2.2", Text: "552 5.2.2 The email account that you tried to reach is over quota."},
			ESPVerdict: map[string]string{"type": "bounce", "bounce_class": "22"},
		}},
		{"bounce-block.json", events.Event{
			ID: "sparkpost:92356927693813858", ESP: "sparkpost", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767232800, 0).UTC(), Recipient: "ops-team@example.com",
			Sender: "bounces@bounces.shop.example", SendingDomain: "bounces.shop.example",
			SendingIP: "192.0.2.21", IPPool: "marketing",
			MessageID:  "2a2fb6d9-b2a7-405e-8d52-05b4ef1e4951",
			Reply:      events.Reply{Code: 554, Enhanced: "5.7.1", Text: "554 5.7.1 Service unavailable; Client host [192.0.2.21] blocked using a reputation list"},
			ESPVerdict: map[string]string{"type": "bounce", "bounce_class": "51"},
		}},
		{"out-of-band.json", events.Event{
			ID: "sparkpost:92356927693813859", ESP: "sparkpost", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767234600, 0).UTC(), Recipient: "kim.sato@example.jp",
			SendingIP: "192.0.2.20", MessageID: "3b30c7ea-c3b8-416f-9e63-16c5f02f5a62",
			Reply:      events.Reply{Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 <kim.sato@example.jp>... User unknown"},
			ESPVerdict: map[string]string{"type": "out_of_band", "bounce_class": "10"},
		}},
		{"delay.json", events.Event{
			ID: "sparkpost:92356927693813860", ESP: "sparkpost", Type: events.TypeDeferral,
			OccurredAt: time.Unix(1767236400, 0).UTC(), Recipient: "j.okafor@example.org",
			Sender: "bounces@bounces.shop.example", SendingDomain: "bounces.shop.example",
			SendingIP: "192.0.2.20", IPPool: "transactional",
			MessageID:  "4c41d8fb-d4c9-4270-8f74-27d6013a6b73",
			Reply:      events.Reply{Code: 451, Enhanced: "4.4.4", Text: "451 4.4.4 [internal] no MX or A for domain example.org"},
			ESPVerdict: map[string]string{"type": "delay", "bounce_class": "21"},
		}},
		{"spam-complaint.json", events.Event{
			ID: "sparkpost:92356927693813861", ESP: "sparkpost", Type: events.TypeComplaint,
			OccurredAt: time.Date(2026, 1, 1, 12, 30, 0, 0, time.UTC), Recipient: "p.lindqvist@example.com",
			SendingIP: "192.0.2.21", IPPool: "marketing", MessageID: "5d52e90c-e5da-4381-9085-38e7124b7c84",
			ESPVerdict: map[string]string{"type": "spam_complaint", "fbtype": "abuse"},
		}},
		{"policy-rejection.json", events.Event{
			ID: "sparkpost:92356927693813862", ESP: "sparkpost", Type: events.TypeDropped, ProviderSuppressed: true,
			OccurredAt: time.Unix(1767243600, 0).UTC(), Recipient: "old.customer@example.net",
			Sender: "bounces@bounces.shop.example", SendingDomain: "bounces.shop.example",
			MessageID:  "6e63fa1d-f6eb-4492-a196-49f8235c8d95",
			Reply:      events.Reply{Code: 554, Enhanced: "5.7.1", Text: "554 5.7.1 recipient address was suppressed due to customer policy"},
			ESPVerdict: map[string]string{"type": "policy_rejection", "bounce_class": "25"},
		}},
		{"delivery.json", events.Event{
			ID: "sparkpost:92356927693813863", ESP: "sparkpost", Type: events.TypeDelivered,
			OccurredAt: time.Unix(1767247200, 0).UTC(), Recipient: "lena.hart@example.net",
			Sender: "bounces@bounces.shop.example", SendingDomain: "bounces.shop.example",
			SendingIP: "192.0.2.20", IPPool: "transactional",
			MessageID:  "7f740b2e-07fc-45a3-b2a7-5a09346d9ea6",
			ESPVerdict: map[string]string{"type": "delivery"},
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

func TestParseBatch(t *testing.T) {
	t.Parallel()
	a := setup(t, map[string]string{"REBOUND_SPARKPOST_TENANT_FROM": "subaccount"})
	tests := []struct {
		fixture                  string
		events, rejects, ignored int
		rejectIndexes            []int
		firstTenant              string
	}{
		{"batch-mixed.json", 4, 3, 2, []int{4, 5, 6}, "7"},
		{"unknown-types.json", 0, 0, 3, nil, ""},
		{"ping.json", 0, 0, 1, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			got, err := a.Parse(ingesttest.Fixture(t, tt.fixture))
			ingesttest.AssertBatch(t, got, err, ingesttest.Want{NEvents: tt.events, Rejects: tt.rejects, Ignored: tt.ignored, RejectIndexes: tt.rejectIndexes})
			if tt.events > 0 && got.Events[0].Tenant != tt.firstTenant {
				t.Errorf("tenant = %q, want %q", got.Events[0].Tenant, tt.firstTenant)
			}
			for _, e := range got.Events {
				if e.Type == events.TypeDropped && !e.ProviderSuppressed {
					t.Errorf("%s: policy_rejection not marked provider_suppressed", e.ID)
				}
			}
		})
	}
}

// TestUnsubscribes: both of SparkPost's unsubscribes are the recipient's opt-out from
// this sender, suppressed for the tenant (the subaccount) only.
func TestUnsubscribes(t *testing.T) {
	t.Parallel()
	a := setup(t, map[string]string{"REBOUND_SPARKPOST_TENANT_FROM": "subaccount"})
	got, err := a.Parse(ingesttest.Fixture(t, "unsubscribe.json"))
	ingesttest.AssertBatch(t, got, err, ingesttest.Want{Events: []events.Event{{
		ID: "sparkpost:92356927693813867", ESP: "sparkpost", Type: events.TypeDropped, ProviderSuppressed: true,
		OccurredAt: time.Unix(1767250950, 0).UTC(), Recipient: "r.nakamura@example.org", Tenant: "9",
		MessageID:  "8a851c3f-18fc-46b3-b3b8-6b4a1d0e8f21",
		Reply:      events.Reply{Text: "synthetic (SparkPost list_unsubscribe, not sent): " + ingest.OptOutUnsubscribed},
		ESPVerdict: map[string]string{"type": "list_unsubscribe"},
	}, {
		ID: "sparkpost:92356927693813868", ESP: "sparkpost", Type: events.TypeDropped, ProviderSuppressed: true,
		OccurredAt: time.Unix(1767251010, 0).UTC(), Recipient: "s.okoye@example.net", Tenant: "9",
		MessageID:  "9b962d40-29ad-47c4-84c9-7c5b2e1f9032",
		Reply:      events.Reply{Text: "synthetic (SparkPost link_unsubscribe, not sent): " + ingest.OptOutUnsubscribed},
		ESPVerdict: map[string]string{"type": "link_unsubscribe"},
	}}})
	for i := range got.Events {
		ingesttest.AssertTenantOptOut(t, &got.Events[i])
	}
}

func TestParseUnreadable(t *testing.T) {
	t.Parallel()
	a := setup(t, nil)
	for name, body := range map[string][]byte{
		"truncated": ingesttest.Fixture(t, "malformed.json"),
		"empty":     nil,
		"object":    []byte(`{"msys":{}}`),
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
	seeds = append(seeds, []byte(`[{"msys":{"a":{"type":"bounce","event_id":"1","rcpt_to":"a@b.example","timestamp":"1e308","error_code":99999}}}]`))
	a := mustNew(f, map[string]string{"REBOUND_SPARKPOST_TENANT_FROM": "tenant"})
	ingesttest.FuzzParse(f, a, seeds...)
}

func BenchmarkIngest(b *testing.B) {
	a := setup(b, map[string]string{"REBOUND_SPARKPOST_TENANT_FROM": "tenant"})
	ingesttest.BenchIngest(b, a, req(ingesttest.Basic(testCreds)), ingesttest.Fixture(b, "bounce-hard.json"), 1)
}
