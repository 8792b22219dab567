package mailjet

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/ingesttest"
)

const testCreds = "mailjet-hooks:Jt5-w2Ze+8Vn"

// setup builds an adapter with the test credentials; extra settings are merged in.
func setup(t testing.TB, extra map[string]string) *Adapter {
	t.Helper()
	return mustNew(t, ingesttest.With(map[string]string{"REBOUND_MAILJET_BASIC_AUTH": testCreds}, extra))
}

func mustNew(t testing.TB, vars map[string]string) *Adapter {
	t.Helper()
	return ingesttest.New[*Adapter](t, New, ingesttest.Env(vars))
}

func req(auth string) *http.Request { return ingesttest.Request("mailjet", auth) }

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		vars    map[string]string
		wantVar string // "" = no error
	}{
		{"no colon", map[string]string{"REBOUND_MAILJET_BASIC_AUTH": "just-a-token"}, "REBOUND_MAILJET_BASIC_AUTH"},
		{"unknown tenant source", map[string]string{"REBOUND_MAILJET_TENANT_FROM": "metadata"}, "REBOUND_MAILJET_TENANT_FROM"},
		{"payload key", map[string]string{"REBOUND_MAILJET_TENANT_FROM": "Payload.tenant"}, ""},
		{"customcampaign", map[string]string{"REBOUND_MAILJET_TENANT_FROM": "customcampaign"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(ingesttest.Env(tt.vars))
			switch {
			case tt.wantVar == "" && err != nil:
				t.Fatalf("New = %v, want nil", err)
			case tt.wantVar != "" && (err == nil || !strings.Contains(err.Error(), tt.wantVar)):
				t.Fatalf("New = %v, want an error naming %s", err, tt.wantVar)
			case err != nil && strings.Contains(err.Error(), "just-a-token"):
				t.Fatalf("error %q leaks the secret", err)
			}
		})
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
		{"wrong password", a, ingesttest.Basic("mailjet-hooks:guess"), false},
		{"no header", a, "", false},
	}
	ingesttest.VerifyRule(t, New, "REBOUND_MAILJET_BASIC_AUTH", map[string]string{"REBOUND_MAILJET_BASIC_AUTH": testCreds},
		func(t testing.TB) (*http.Request, []byte) { return req(""), ingesttest.Fixture(t, "bounce-hard.json") })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.a.Authenticate(req(tt.auth), ingesttest.Fixture(t, "bounce-hard.json"))
			ingesttest.AssertAuth(t, err, tt.ok, "Jt5-w2Ze")
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	a := setup(t, map[string]string{"REBOUND_MAILJET_TENANT_FROM": "Payload.tenant"})
	tests := []struct {
		fixture string
		want    events.Event
	}{
		{"bounce-hard.json", events.Event{
			ID:  ingest.CompositeID("mailjet", "1152921508740301824", "bounce", "1767225600", "lena.hart@example.net"),
			ESP: "mailjet", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767225600, 0).UTC(), Recipient: "lena.hart@example.net", Tenant: "acme-eu",
			MessageID:  "1152921508740301824",
			Reply:      events.Reply{Text: "mailjet: recipient unknown (user unknown)"},
			ESPVerdict: map[string]string{"event": "bounce", "hard_bounce": "true", "blocked": "true", "error_related_to": "recipient", "error": "user unknown"},
		}},
		{"bounce-soft.json", events.Event{
			ID:  ingest.CompositeID("mailjet", "1152921508740301825", "bounce", "1767229200", "marco.vieri@example.org"),
			ESP: "mailjet", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767229200, 0).UTC(), Recipient: "marco.vieri@example.org",
			MessageID:  "1152921508740301825",
			Reply:      events.Reply{Text: "mailjet: mailbox quota exceeded"},
			ESPVerdict: map[string]string{"event": "bounce", "hard_bounce": "false", "blocked": "false", "error_related_to": "recipient", "error": "quota exceeded"},
		}},
		{"bounce-block.json", events.Event{
			ID:  ingest.CompositeID("mailjet", "1152921508740301826", "bounce", "1767232800", "ops-team@example.com"),
			ESP: "mailjet", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767232800, 0).UTC(), Recipient: "ops-team@example.com", Tenant: "acme-us",
			MessageID:  "1152921508740301826",
			Reply:      events.Reply{Text: "mailjet: sender blocked by the recipient server (reputation)"},
			ESPVerdict: map[string]string{"event": "bounce", "hard_bounce": "true", "blocked": "false", "error_related_to": "spam", "error": "sender blocked"},
		}},
		{"bounce-comment.json", events.Event{
			ID:  ingest.CompositeID("mailjet", "1152921508740301830", "bounce", "1767234600", "kim.sato@example.jp"),
			ESP: "mailjet", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767234600, 0).UTC(), Recipient: "kim.sato@example.jp",
			MessageID: "1152921508740301830",
			Reply: events.Reply{Code: 550, Enhanced: "5.1.1",
				Text: "host mx.example.jp[203.0.113.60] said: 550 5.1.1 <kim.sato@example.jp>: User unknown (in reply to RCPT TO command)"},
			ESPVerdict: map[string]string{"event": "bounce", "hard_bounce": "true", "blocked": "false", "error_related_to": "recipient", "error": "user unknown"},
		}},
		{"blocked-preblocked.json", events.Event{
			ID:  ingest.CompositeID("mailjet", "1152921508740301827", "blocked", "1767243600", "old.customer@example.net"),
			ESP: "mailjet", Type: events.TypeDropped, ProviderSuppressed: true,
			OccurredAt: time.Unix(1767243600, 0).UTC(), Recipient: "old.customer@example.net",
			MessageID:  "1152921508740301827",
			Reply:      events.Reply{Text: "mailjet: address preblocked by Mailjet"},
			ESPVerdict: map[string]string{"event": "blocked", "error_related_to": "mailjet", "error": "preblocked"},
		}},
		{"spam.json", events.Event{
			ID:  ingest.CompositeID("mailjet", "1152921508740301828", "spam", "1767240000", "p.lindqvist@example.com"),
			ESP: "mailjet", Type: events.TypeComplaint,
			OccurredAt: time.Unix(1767240000, 0).UTC(), Recipient: "p.lindqvist@example.com",
			MessageID:  "1152921508740301828",
			ESPVerdict: map[string]string{"event": "spam", "source": "JMRPP"},
		}},
		{"sent.json", events.Event{
			ID:  ingest.CompositeID("mailjet", "1152921508740301829", "sent", "1767247200", "lena.hart@example.net"),
			ESP: "mailjet", Type: events.TypeDelivered,
			OccurredAt: time.Unix(1767247200, 0).UTC(), Recipient: "lena.hart@example.net",
			MessageID:  "1152921508740301829",
			Reply:      events.Reply{Text: "sent (250 2.0.0 OK 1767247200 a640c23a62f3a-ab7c1d2e3f4 - gsmtp)"},
			ESPVerdict: map[string]string{"event": "sent"},
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

// TestStandIns pins the stand-in texts: none of the "spam" labels may read as a
// recipient problem, and the recipient labels must name one.
func TestStandIns(t *testing.T) {
	t.Parallel()
	for k, text := range standIns {
		if strings.Contains(strings.ToLower(text), "spam") {
			t.Errorf("%v: stand-in %q contains \"spam\", which the catalog reads as content", k, text)
		}
		if !strings.HasPrefix(text, "mailjet: ") {
			t.Errorf("%v: stand-in %q is not labelled as Mailjet's", k, text)
		}
	}
	if got := bounceReply("spam", "something new", "").Text; got != senderBlocked {
		t.Errorf("unlisted spam label = %q, want the sender-blocked stand-in", got)
	}
}

func TestParseBatch(t *testing.T) {
	t.Parallel()
	a := setup(t, map[string]string{"REBOUND_MAILJET_TENANT_FROM": "customcampaign"})
	got, err := a.Parse(ingesttest.Fixture(t, "grouped.json"))
	ingesttest.AssertBatch(t, got, err, ingesttest.Want{NEvents: 3, Rejects: 3, Ignored: 2, RejectIndexes: []int{3, 4, 5}})
	if got.Events[0].Tenant != "acme-eu" {
		t.Errorf("tenant = %q, want acme-eu", got.Events[0].Tenant)
	}
	if dup := got.Events[2]; dup.Type != events.TypeDropped || dup.ProviderSuppressed {
		t.Errorf("duplicate in campaign = %+v, want dropped and not provider_suppressed", dup)
	}
	one, err := a.Parse(ingesttest.Fixture(t, "open.json"))
	ingesttest.AssertBatch(t, one, err, ingesttest.Want{Ignored: 1})
}

func TestParseUnreadable(t *testing.T) {
	t.Parallel()
	a := setup(t, nil)
	for name, body := range map[string][]byte{
		"truncated": ingesttest.Fixture(t, "malformed.json"),
		"empty":     nil,
		"form":      []byte("event=bounce"),
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
	seeds = append(seeds, []byte(`[{"event":"bounce","time":1,"email":"a@b.example","error_related_to":"spam","comment":"5.7.1","Payload":"{\"tenant\":{}}"}]`))
	a := mustNew(f, map[string]string{"REBOUND_MAILJET_TENANT_FROM": "payload.tenant"})
	ingesttest.FuzzParse(f, a, seeds...)
}

func BenchmarkIngest(b *testing.B) {
	a := setup(b, map[string]string{"REBOUND_MAILJET_TENANT_FROM": "Payload.tenant"})
	ingesttest.BenchIngest(b, a, req(ingesttest.Basic(testCreds)), ingesttest.Fixture(b, "bounce-hard.json"), 1)
}

// TestStandInsClassify runs every stand-in through the catalog the way the process
// stage does, so a catalog change that turns "sender blocked" into a recipient
// verdict fails here.
func TestStandInsClassify(t *testing.T) {
	t.Parallel()
	cat := ingesttest.Catalog(t)
	want := map[[2]string]catalog.Class{
		{"recipient", "user unknown"}:        "recipient_unknown",
		{"recipient", "mailbox inactive"}:    "mailbox_disabled",
		{"recipient", "quota exceeded"}:      "mailbox_full",
		{"domain", "invalid domain"}:         "domain_invalid",
		{"domain", "no mail host"}:           "domain_invalid",
		{"domain", "relay/access denied"}:    "relay_denied",
		{"domain", "greylisted"}:             "greylisted",
		{"spam", "sender blocked"}:           "reputation_block",
		{"spam", "content blocked"}:          "content_rejected",
		{"spam", "policy issue"}:             "policy_rejected",
		{"system", "system issue"}:           "remote_error",
		{"system", "protocol issue"}:         "unknown",
		{"system", "connection issue"}:       "network_error",
		{"mailjet", "preblocked"}:            "mailbox_disabled", // on Mailjet's own list: suppressed, as every ESP's list is
		{"mailjet", "duplicate in campaign"}: "unknown",
	}
	if len(want) != len(standIns) {
		t.Fatalf("%d stand-ins, %d expectations", len(standIns), len(want))
	}
	for k, class := range want {
		r := bounceReply(k[0], k[1], "")
		cl := cat.Classify(r.String(), catalog.Hints{Code: r.Code, Enhanced: r.Enhanced})
		if cl.Class != class {
			t.Errorf("%v: %q classified %s (%s), want %s", k, r.Text, cl.Class, cl.Rule, class)
		}
		if k[0] == "spam" && cl.Scope == catalog.ScopeRecipient {
			t.Errorf("%v: a spam label must never be a recipient verdict, got %s", k, cl.Class)
		}
	}
}
