package sparkpost

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
)

const testCreds = "sparkpost-hooks:P4r-k9Lm+2Qx"

func envOf(vars map[string]string) ingest.Env {
	return ingest.Env{Getenv: func(k string) string { return vars[k] }, Now: time.Now}
}

// setup builds an adapter with the test credentials; extra settings are merged in.
func setup(t testing.TB, extra map[string]string) *Adapter {
	t.Helper()
	vars := map[string]string{"REBOUND_SPARKPOST_BASIC_AUTH": testCreds}
	for k, v := range extra {
		vars[k] = v
	}
	return mustNew(t, vars)
}

func mustNew(t testing.TB, vars map[string]string) *Adapter {
	t.Helper()
	a, err := New(envOf(vars))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a.(*Adapter)
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

func req(auth string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/sparkpost", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	return r
}

func basic(userPass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
}

func TestRegistered(t *testing.T) {
	t.Parallel()
	as, err := ingest.Adapters(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.ESP() == "sparkpost" {
			return
		}
	}
	t.Fatal("sparkpost adapter not registered")
}

func TestNew(t *testing.T) {
	t.Parallel()
	_, err := New(envOf(map[string]string{"REBOUND_SPARKPOST_BASIC_AUTH": "a-bearer-token"}))
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
		{"right credentials", a, basic(testCreds), true},
		{"wrong password", a, basic("sparkpost-hooks:guess"), false},
		{"no header", a, "", false},
		{"bearer is not accepted", a, "Bearer " + testCreds, false},
		{"not configured", mustNew(t, nil), basic(testCreds), false},
		{"not configured, insecure opt-out", mustNew(t, map[string]string{"REBOUND_SPARKPOST_INSECURE_SKIP_VERIFY": "true"}), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.a.Authenticate(req(tt.auth), fixture(t, "bounce-hard.json"))
			switch {
			case tt.ok && err != nil:
				t.Fatalf("Authenticate = %v, want nil", err)
			case !tt.ok && !errors.Is(err, ingest.ErrUnauthenticated):
				t.Fatalf("Authenticate = %v, want ErrUnauthenticated", err)
			case err != nil && strings.Contains(err.Error(), "P4r-k9Lm"):
				t.Fatalf("error %q leaks the password", err)
			}
		})
	}
	t.Run("disabled names the setting", func(t *testing.T) {
		t.Parallel()
		err := mustNew(t, nil).Authenticate(req(""), nil)
		if err == nil || !strings.Contains(err.Error(), "REBOUND_SPARKPOST_BASIC_AUTH") {
			t.Fatalf("Authenticate = %v, want the disabled error naming the setting", err)
		}
	})
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
			body := fixture(t, tt.fixture)
			if err := a.Authenticate(req(basic(testCreds)), body); err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			got, err := a.Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(got.Events) != 1 || len(got.Rejects) != 0 || got.Ignored != 0 {
				t.Fatalf("Parse = %d events, %d rejects %v, %d ignored; want 1 event", len(got.Events), len(got.Rejects), got.Rejects, got.Ignored)
			}
			compare(t, got.Events[0], tt.want)
		})
	}
}

// compare checks the event field by field so a failure names the field.
func compare(t *testing.T, got, want events.Event) {
	t.Helper()
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := 0; i < g.NumField(); i++ {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("%s = %#v, want %#v", g.Type().Field(i).Name, g.Field(i).Interface(), w.Field(i).Interface())
		}
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
		{"unknown-types.json", 0, 0, 4, nil, ""},
		{"ping.json", 0, 0, 1, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			got, err := a.Parse(fixture(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Events) != tt.events || len(got.Rejects) != tt.rejects || got.Ignored != tt.ignored {
				t.Fatalf("got %d events, %d rejects, %d ignored; want %d, %d, %d (rejects %v)",
					len(got.Events), len(got.Rejects), got.Ignored, tt.events, tt.rejects, tt.ignored, got.Rejects)
			}
			for i, rej := range got.Rejects {
				if rej.Index != tt.rejectIndexes[i] || len(rej.Raw) == 0 || rej.Reason == "" {
					t.Errorf("reject %d = %+v, want index %d with raw bytes and a reason", i, rej, tt.rejectIndexes[i])
				}
			}
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

func TestParseUnreadable(t *testing.T) {
	t.Parallel()
	a := setup(t, nil)
	for name, body := range map[string][]byte{
		"truncated": fixture(t, "malformed.json"),
		"empty":     nil,
		"object":    []byte(`{"msys":{}}`),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := a.Parse(body)
			if err == nil {
				t.Fatal("Parse = nil error, want one")
			}
			if errors.Is(err, ingest.ErrBadRequest) {
				t.Fatalf("Parse = %v: must not be ErrBadRequest", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	entries, _ := os.ReadDir("testdata")
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join("testdata", e.Name())); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`[{"msys":{"a":{"type":"bounce","event_id":"1","rcpt_to":"a@b.example","timestamp":"1e308","error_code":99999}}}]`))
	a := mustNew(f, map[string]string{"REBOUND_SPARKPOST_TENANT_FROM": "tenant"})
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := a.Parse(body)
		if err != nil {
			return
		}
		for _, e := range b.Events {
			if err := e.Normalize(); err != nil {
				t.Fatalf("event %+v fails Normalize again: %v", e, err)
			}
			if !strings.HasPrefix(e.ID, "sparkpost:") {
				t.Fatalf("event %+v is not a sparkpost event", e)
			}
		}
	})
}

func BenchmarkIngest(b *testing.B) {
	a := setup(b, map[string]string{"REBOUND_SPARKPOST_TENANT_FROM": "tenant"})
	body := fixture(b, "bounce-hard.json")
	r := req(basic(testCreds))
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Authenticate(r, body); err != nil {
			b.Fatal(err)
		}
		if got, err := a.Parse(body); err != nil || len(got.Events) != 1 {
			b.Fatal(got, err)
		}
	}
}
