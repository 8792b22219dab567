package brevo

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/ingesttest"
	"github.com/reboundhq/rebound/internal/policy"
)

const testToken = "brevo-token-for-tests-only"

func setup(t testing.TB, vars map[string]string) *Adapter {
	t.Helper()
	if vars == nil {
		vars = map[string]string{"REBOUND_BREVO_TOKEN": testToken, "REBOUND_BREVO_TENANT_FROM": "tag:tenant-"}
	}
	return ingesttest.New[*Adapter](t, New, ingesttest.Env(vars))
}

func id(msgID, event, email, ts string) string {
	return ingest.CompositeID("brevo", msgID, event, email, ts)
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file    string
		want    []events.Event
		actions []policy.Action
		ignored int
		rejects int
		err     bool
	}{
		{file: "hard-bounce.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: id("<202601011000.88121@smtp-relay.mailin.fr>", "hard_bounce", "ana@example.net", "1767261600123"), ESP: "brevo",
			Type: events.TypeBounce, OccurredAt: time.UnixMilli(1767261600123).UTC(), Recipient: "ana@example.net",
			SendingIP: "185.41.28.17", Tenant: "t42", MessageID: "<202601011000.88121@smtp-relay.mailin.fr>",
			Reply:      events.Reply{Code: 550, Enhanced: "5.1.1", Text: "The email account that you tried to reach does not exist."},
			ESPVerdict: map[string]string{"event": "hard_bounce", "reason": "RecipientError: 550 5.1.1 The email account that you tried to reach does not exist."},
		}}},
		{file: "soft-bounce.json", actions: []policy.Action{policy.ActionSoft}, want: []events.Event{{
			ID: id("<202601011001.88122@smtp-relay.mailin.fr>", "soft_bounce", "bo@example.org", "1767261700456"), ESP: "brevo",
			Type: events.TypeBounce, OccurredAt: time.UnixMilli(1767261700456).UTC(), Recipient: "bo@example.org",
			SendingIP: "185.41.28.17", MessageID: "<202601011001.88122@smtp-relay.mailin.fr>",
			Reply:      events.Reply{Code: 452, Enhanced: "4.2.2", Text: "Mailbox full"},
			ESPVerdict: map[string]string{"event": "soft_bounce", "reason": "452 4.2.2 Mailbox full"},
		}}},
		{file: "block.json", actions: []policy.Action{policy.ActionAlert}, want: []events.Event{{
			ID: id("<202601011002.88123@smtp-relay.mailin.fr>", "hard_bounce", "cy@example.com", "1767261800789"), ESP: "brevo",
			Type: events.TypeBounce, OccurredAt: time.UnixMilli(1767261800789).UTC(), Recipient: "cy@example.com",
			SendingIP: "185.41.28.17", MessageID: "<202601011002.88123@smtp-relay.mailin.fr>",
			Reply:      events.Reply{Code: 554, Enhanced: "5.7.1", Text: "Service unavailable; Client host [185.41.28.17] blocked using zen.spamhaus.org"},
			ESPVerdict: map[string]string{"event": "hard_bounce", "reason": "RecipientError: 554 5.7.1 Service unavailable; Client host [185.41.28.17] blocked using zen.spamhaus.org"},
		}}},
		{file: "deferred.json", actions: []policy.Action{policy.ActionNone}, want: []events.Event{{
			ID: id("<202601011003.88124@smtp-relay.mailin.fr>", "deferred", "bo@example.org", "1767261900"), ESP: "brevo",
			Type: events.TypeDeferral, OccurredAt: time.Unix(1767261900, 0).UTC(), Recipient: "bo@example.org",
			SendingIP: "185.41.28.18", MessageID: "<202601011003.88124@smtp-relay.mailin.fr>",
			Reply:      events.Reply{Code: 451, Enhanced: "4.7.1", Text: "<bo@example.org>: Recipient address rejected: Greylisted, please try again in 5 minutes"},
			ESPVerdict: map[string]string{"event": "deferred", "reason": "451 4.7.1 <bo@example.org>: Recipient address rejected: Greylisted, please try again in 5 minutes"},
		}}},
		{file: "spam.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: id("<202601011004.88125@smtp-relay.mailin.fr>", "spam", "ana@example.net", "1767262000000"), ESP: "brevo",
			Type: events.TypeComplaint, OccurredAt: time.UnixMilli(1767262000000).UTC(), Recipient: "ana@example.net",
			MessageID: "<202601011004.88125@smtp-relay.mailin.fr>", ESPVerdict: map[string]string{"event": "spam"},
		}}},
		{file: "blocked.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: id("<202601011005.88126@smtp-relay.mailin.fr>", "blocked", "gone@example.com", "1767262100000"), ESP: "brevo",
			Type: events.TypeDropped, ProviderSuppressed: true, OccurredAt: time.UnixMilli(1767262100000).UTC(), Recipient: "gone@example.com",
			MessageID: "<202601011005.88126@smtp-relay.mailin.fr>", Reply: events.Reply{Text: synthetic["blocked"]},
			ESPVerdict: map[string]string{"event": "blocked", "reason": "blocked : due to blacklist user"},
		}}},
		{file: "invalid-email.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: id("<202601011006.88127@smtp-relay.mailin.fr>", "invalid_email", "typo@example.con", "1767262200000"), ESP: "brevo",
			Type: events.TypeDropped, OccurredAt: time.UnixMilli(1767262200000).UTC(), Recipient: "typo@example.con",
			MessageID: "<202601011006.88127@smtp-relay.mailin.fr>", Reply: events.Reply{Text: synthetic["invalid_email"]},
			ESPVerdict: map[string]string{"event": "invalid_email"},
		}}},
		{file: "delivered.json", actions: []policy.Action{policy.ActionReset}, want: []events.Event{{
			ID: id("<202601011007.88128@smtp-relay.mailin.fr>", "delivered", "bo@example.org", "1767262300000"), ESP: "brevo",
			Type: events.TypeDelivered, OccurredAt: time.UnixMilli(1767262300000).UTC(), Recipient: "bo@example.org",
			SendingIP: "185.41.28.17", MessageID: "<202601011007.88128@smtp-relay.mailin.fr>", Reply: events.Reply{Text: "sent"},
			ESPVerdict: map[string]string{"event": "delivered", "reason": "sent"},
		}}},
		{file: "batch.json", ignored: 1, rejects: 2, actions: []policy.Action{policy.ActionSuppress, policy.ActionReset}, want: []events.Event{{
			ID: id("<b1@smtp-relay.mailin.fr>", "hard_bounce", "ana@example.net", "1767261600123"), ESP: "brevo",
			Type: events.TypeBounce, OccurredAt: time.UnixMilli(1767261600123).UTC(), Recipient: "ana@example.net", Tenant: "t42",
			MessageID: "<b1@smtp-relay.mailin.fr>", Reply: events.Reply{Code: 550, Enhanced: "5.1.1", Text: "user unknown"},
			ESPVerdict: map[string]string{"event": "hard_bounce", "reason": "RecipientError: 550 5.1.1 user unknown"},
		}, {
			ID: id("<b4@smtp-relay.mailin.fr>", "delivered", "cy@example.com", "1767261600400"), ESP: "brevo",
			Type: events.TypeDelivered, OccurredAt: time.UnixMilli(1767261600400).UTC(), Recipient: "cy@example.com",
			MessageID: "<b4@smtp-relay.mailin.fr>", ESPVerdict: map[string]string{"event": "delivered"},
		}}},
		{file: "unsubscribed.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: id("<202601011008.88129@smtp-relay.mailin.fr>", "unsubscribed", "dee@example.net", "1767262400000"), ESP: "brevo",
			Type: events.TypeDropped, ProviderSuppressed: true, OccurredAt: time.UnixMilli(1767262400000).UTC(), Recipient: "dee@example.net",
			MessageID: "<202601011008.88129@smtp-relay.mailin.fr>", Reply: events.Reply{Text: "synthetic (Brevo unsubscribed, not sent): " + ingest.OptOutUnsubscribed},
			ESPVerdict: map[string]string{"event": "unsubscribed"},
		}}},
		{file: "click.json", ignored: 1},
		{file: "truncated.json", err: true},
	}
	a := setup(t, nil)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			body := ingesttest.Fixture(t, tt.file)
			b, err := a.Parse(body)
			ingesttest.AssertBatch(t, b, err, ingesttest.Want{Events: tt.want, Actions: tt.actions, Ignored: tt.ignored, Rejects: tt.rejects, Unreadable: tt.err})
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

func TestTenantCustom(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ tf, file, want string }{
		{"custom:tenant", "hard-bounce.json", "t42"},
		{"custom", "spam.json", "t7"},
		{"tag:receipt", "hard-bounce.json", "s"},
		{"custom:missing", "hard-bounce.json", ""},
	} {
		tf, want := c.tf, c.want
		a := setup(t, map[string]string{"REBOUND_BREVO_TOKEN": testToken, "REBOUND_BREVO_TENANT_FROM": tf})
		b, err := a.Parse(ingesttest.Fixture(t, c.file))
		if err != nil || len(b.Events) != 1 || b.Events[0].Tenant != want {
			t.Errorf("TENANT_FROM=%s: %+v %v, want tenant %q", tf, b.Events, err, want)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	withToken := func(tok string) map[string]string { return map[string]string{"REBOUND_BREVO_TOKEN": tok} }
	tests := []struct {
		name   string
		vars   map[string]string
		header string
		ok     bool
	}{
		{"bearer", nil, "Bearer " + testToken, true},
		{"wrong bearer", nil, "Bearer nope", false},
		{"no header", nil, "", false},
		{"basic when the token has no colon", nil, ingesttest.Basic(testToken), false},
		{"basic user:password", withToken("rebound:pa55word"), ingesttest.Basic("rebound:pa55word"), true},
		{"basic wrong password", withToken("rebound:pa55word"), ingesttest.Basic("rebound:other"), false},
		{"bearer user:password", withToken("rebound:pa55word"), "Bearer rebound:pa55word", true},
	}
	ingesttest.VerifyRule(t, New, "REBOUND_BREVO_TOKEN", withToken(testToken),
		func(testing.TB) (*http.Request, []byte) {
			return httptest.NewRequest(http.MethodPost, "/webhooks/brevo", nil), nil
		})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/webhooks/brevo", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			err := setup(t, tt.vars).Authenticate(r, nil)
			ingesttest.AssertAuth(t, err, tt.ok, testToken)
		})
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	for name, vars := range map[string]map[string]string{
		"REBOUND_BREVO_TOKEN":       {"REBOUND_BREVO_TOKEN": "two words"},
		"REBOUND_BREVO_TENANT_FROM": {"REBOUND_BREVO_TENANT_FROM": "header:x"},
	} {
		_, err := New(ingesttest.Env(vars))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("New error = %v, want one naming %s", err, name)
		}
	}
}

func TestSyntheticReplies(t *testing.T) {
	t.Parallel()
	want := map[string]policy.Action{
		"hard_bounce": policy.ActionSuppress, "soft_bounce": policy.ActionNone, "deferred": policy.ActionNone,
		"blocked": policy.ActionSuppress, "invalid_email": policy.ActionSuppress, "error": policy.ActionAlert,
	}
	for name, text := range synthetic {
		ev := events.Event{Type: types[name], ProviderSuppressed: name == "blocked", Reply: events.Reply{Text: text}}
		if got := ingesttest.Decide(t, &ev); got != want[name] {
			t.Errorf("%s: %q → %q, want %q", name, text, got, want[name])
		}
	}
}

func TestOversized(t *testing.T) {
	t.Parallel()
	_, err := setup(t, nil).Parse(make([]byte, maxBody+1))
	ingesttest.AssertUnreadable(t, err)
}

func FuzzParse(f *testing.F) {
	ingesttest.FuzzParse(f, setup(f, nil), ingesttest.Fixtures(f, "hard-bounce.json", "batch.json", "blocked.json", "spam.json", "truncated.json")...)
}

func BenchmarkIngest(b *testing.B) {
	a := setup(b, nil)
	body := ingesttest.Fixture(b, "hard-bounce.json")
	r := httptest.NewRequest(http.MethodPost, "/webhooks/brevo", nil)
	r.Header.Set("Authorization", "Bearer "+testToken)
	ingesttest.BenchIngest(b, a, r, body, 1)
}
