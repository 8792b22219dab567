package mandrill

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/ingesttest"
	"github.com/reboundhq/rebound/internal/policy"
)

const (
	testKey = "mandrill-webhook-key-for-tests"
	testURL = "https://rebound.example.com/webhooks/mandrill"
)

func setup(t testing.TB, vars map[string]string) *Adapter {
	t.Helper()
	if vars == nil {
		vars = map[string]string{"REBOUND_MANDRILL_WEBHOOK_KEY": testKey, "REBOUND_MANDRILL_WEBHOOK_URL": testURL, "REBOUND_MANDRILL_TENANT_FROM": "metadata:tenant"}
	}
	return ingesttest.New[*Adapter](t, New, ingesttest.Env(vars))
}

// form turns a fixture (the JSON array) into the POST body Mandrill sends.
func form(t testing.TB, name string) []byte {
	t.Helper()
	return []byte(url.Values{"mandrill_events": {string(ingesttest.Fixture(t, name))}}.Encode())
}

// sign is Mandrill's scheme, written independently of the adapter from the parsed form.
func sign(key, u string, body []byte) string {
	v, _ := url.ParseQuery(string(body))
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(u + "mandrill_events" + v.Get("mandrill_events")))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func request(body []byte, sig string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/mandrill", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		r.Header.Set("X-Mandrill-Signature", sig)
	}
	return r
}

func id(msgID, event string, ts int64) string {
	return ingest.CompositeID("mandrill", msgID, event, strconv.FormatInt(ts, 10))
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
			ID: id("a1b2c3d4e5f60718", "hard_bounce", 1767261600), ESP: "mandrill", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767261600, 0).UTC(), Recipient: "ana@example.net", Sender: "no-reply@app.example.com",
			SendingDomain: "app.example.com", SendingIP: "198.2.128.11", MTA: "142.250.1.26", Tenant: "t42", MessageID: "a1b2c3d4e5f60718",
			Reply:      events.Reply{Code: 550, Enhanced: "5.1.1", Text: "The email account that you tried to reach does not exist."},
			ESPVerdict: map[string]string{"event": "hard_bounce", "bounce_description": "bad_mailbox", "bgtools_code": "10", "state": "bounced"},
		}}},
		{file: "soft-bounce.json", actions: []policy.Action{policy.ActionSoft}, want: []events.Event{{
			ID: id("a1b2c3d4e5f60719", "soft_bounce", 1767261700), ESP: "mandrill", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767261700, 0).UTC(), Recipient: "bo@example.org", Sender: "no-reply@app.example.com",
			SendingDomain: "app.example.com", Tenant: "7", MessageID: "a1b2c3d4e5f60719",
			Reply:      events.Reply{Code: 552, Enhanced: "5.2.2", Text: "Mailbox full"},
			ESPVerdict: map[string]string{"event": "soft_bounce", "bounce_description": "mailbox_full", "bgtools_code": "22", "state": "soft-bounced"},
		}}},
		{file: "block.json", actions: []policy.Action{policy.ActionAlert}, want: []events.Event{{
			ID: id("a1b2c3d4e5f6071a", "hard_bounce", 1767261800), ESP: "mandrill", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767261800, 0).UTC(), Recipient: "cy@example.com", Sender: "no-reply@app.example.com",
			SendingDomain: "app.example.com", SendingIP: "198.2.128.11", MTA: "203.0.113.25", MessageID: "a1b2c3d4e5f6071a",
			Reply:      events.Reply{Code: 554, Enhanced: "5.7.1", Text: "Service unavailable; Client host [198.2.128.11] blocked using zen.spamhaus.org"},
			ESPVerdict: map[string]string{"event": "hard_bounce", "bounce_description": "general", "bgtools_code": "52", "state": "bounced"},
		}}},
		{file: "no-diag.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: id("a1b2c3d4e5f6071b", "hard_bounce", 1767261850), ESP: "mandrill", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767261850, 0).UTC(), Recipient: "dee@example.com", Sender: "no-reply@app.example.com",
			SendingDomain: "app.example.com", MessageID: "a1b2c3d4e5f6071b",
			Reply:      events.Reply{Text: "synthetic (Mandrill hard_bounce invalid_domain, no reply from the remote server): 550 5.1.2 recipient domain does not exist"},
			ESPVerdict: map[string]string{"event": "hard_bounce", "bounce_description": "invalid_domain", "state": "bounced"},
		}}},
		{file: "deferral.json", actions: []policy.Action{policy.ActionNone}, want: []events.Event{{
			ID: id("a1b2c3d4e5f6071c", "deferral", 1767261900), ESP: "mandrill", Type: events.TypeDeferral,
			OccurredAt: time.Unix(1767261900, 0).UTC(), Recipient: "bo@example.org", Sender: "no-reply@app.example.com",
			SendingDomain: "app.example.com", SendingIP: "198.2.128.12", MTA: "192.0.2.44", MessageID: "a1b2c3d4e5f6071c",
			Reply:      events.Reply{Code: 451, Enhanced: "4.7.1", Text: "Greylisted, please try again later"},
			ESPVerdict: map[string]string{"event": "deferral", "state": "deferred"},
		}}},
		{file: "spam.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: id("a1b2c3d4e5f6071d", "spam", 1767262000), ESP: "mandrill", Type: events.TypeComplaint,
			OccurredAt: time.Unix(1767262000, 0).UTC(), Recipient: "ana@example.net", Sender: "news@app.example.com",
			SendingDomain: "app.example.com", MessageID: "a1b2c3d4e5f6071d",
			ESPVerdict: map[string]string{"event": "spam", "state": "sent"},
		}}},
		{file: "unsub.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: id("a1b2c3d4e5f60720", "unsub", 1767262300), ESP: "mandrill", Type: events.TypeDropped, ProviderSuppressed: true,
			OccurredAt: time.Unix(1767262300, 0).UTC(), Recipient: "dee@example.net", Sender: "news@app.example.com",
			SendingDomain: "app.example.com", MessageID: "a1b2c3d4e5f60720",
			Reply:      events.Reply{Text: "synthetic (Mandrill unsub, not sent): " + ingest.OptOutUnsubscribed},
			ESPVerdict: map[string]string{"event": "unsub", "state": "sent"},
		}}},
		{file: "reject.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: id("a1b2c3d4e5f6071e", "reject", 1767262100), ESP: "mandrill", Type: events.TypeDropped, ProviderSuppressed: true,
			OccurredAt: time.Unix(1767262100, 0).UTC(), Recipient: "gone@example.com", Sender: "no-reply@app.example.com",
			SendingDomain: "app.example.com", MessageID: "a1b2c3d4e5f6071e",
			Reply:      events.Reply{Text: "synthetic (Mandrill reject, not sent): 550 5.1.1 address is on the ESP suppression list"},
			ESPVerdict: map[string]string{"event": "reject", "state": "rejected", "reject_reason": "hard-bounce"},
		}}},
		{file: "send.json", actions: []policy.Action{policy.ActionReset}, want: []events.Event{{
			ID: id("a1b2c3d4e5f6071f", "send", 1767262200), ESP: "mandrill", Type: events.TypeDelivered,
			OccurredAt: time.Unix(1767262200, 0).UTC(), Recipient: "bo@example.org", Sender: "no-reply@app.example.com",
			SendingDomain: "app.example.com", SendingIP: "198.2.128.11", MTA: "142.250.1.26", MessageID: "a1b2c3d4e5f6071f",
			Reply:      events.Reply{Text: "250 2.0.0 OK 1767262199 q7si12345"}, // the parser reads only failure codes
			ESPVerdict: map[string]string{"event": "send", "state": "sent"},
		}}},
		{file: "mixed.json", ignored: 2, rejects: 1, actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: id("a1b2c3d4e5f60722", "hard_bounce", 1767262300), ESP: "mandrill", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767262300, 0).UTC(), Recipient: "ee@example.org", MessageID: "a1b2c3d4e5f60722",
			Reply: events.Reply{Code: 550, Enhanced: "5.1.1", Text: "unknown"}, ESPVerdict: map[string]string{"event": "hard_bounce"},
		}}},
		{file: "truncated.json", err: true},
	}
	a := setup(t, nil)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			body := form(t, tt.file)
			if err := a.Authenticate(request(body, sign(testKey, testURL, body)), body); err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			b, err := a.Parse(body)
			ingesttest.AssertBatch(t, b, err, ingesttest.Want{Events: tt.want, Actions: tt.actions, Ignored: tt.ignored, Rejects: tt.rejects, Unreadable: tt.err})
		})
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	body := form(t, "hard-bounce.json")
	good := sign(testKey, testURL, body)
	tests := []struct {
		name string
		vars map[string]string
		body []byte
		sig  string
		ok   bool
	}{
		{name: "valid", body: body, sig: good, ok: true},
		{name: "rotation: old key still listed", vars: map[string]string{"REBOUND_MANDRILL_WEBHOOK_KEY": "new-key," + testKey, "REBOUND_MANDRILL_WEBHOOK_URL": testURL}, body: body, sig: good, ok: true},
		{name: "no header", body: body},
		{name: "wrong key", body: body, sig: sign("other", testURL, body)},
		{name: "signed for another URL", body: body, sig: sign(testKey, "https://rebound.example.com/other", body)},
		{name: "body changed", body: form(t, "spam.json"), sig: good},
		{name: "extra parameter", body: append(append([]byte{}, body...), "&x=1"...), sig: good},
		{name: "truncated body", body: body[:len(body)/2], sig: good},
	}
	ingesttest.VerifyRule(t, New, "REBOUND_MANDRILL_WEBHOOK_KEY", map[string]string{"REBOUND_MANDRILL_WEBHOOK_KEY": testKey, "REBOUND_MANDRILL_WEBHOOK_URL": testURL},
		func(testing.TB) (*http.Request, []byte) { return request(body, sign("other", testURL, body)), body })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := setup(t, tt.vars).Authenticate(request(tt.body, tt.sig), tt.body)
			ingesttest.AssertAuth(t, err, tt.ok, testKey)
		})
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	for name, vars := range map[string]map[string]string{
		"REBOUND_MANDRILL_WEBHOOK_URL":  {"REBOUND_MANDRILL_WEBHOOK_KEY": testKey},
		"REBOUND_MANDRILL_WEBHOOK_URL ": {"REBOUND_MANDRILL_WEBHOOK_KEY": testKey, "REBOUND_MANDRILL_WEBHOOK_URL": "/webhooks/mandrill"},
		"REBOUND_MANDRILL_TENANT_FROM":  {"REBOUND_MANDRILL_TENANT_FROM": "tag:x"},
	} {
		_, err := New(ingesttest.Env(vars))
		if err == nil || !strings.Contains(err.Error(), strings.TrimSpace(name)) {
			t.Errorf("New error = %v, want one naming %s", err, name)
		}
	}
}

func TestTenantSubaccount(t *testing.T) {
	t.Parallel()
	a := setup(t, map[string]string{"REBOUND_MANDRILL_TENANT_FROM": "subaccount", "REBOUND_MANDRILL_INSECURE_SKIP_VERIFY": "true"})
	b, err := a.Parse(form(t, "spam.json"))
	if err != nil || len(b.Events) != 1 || b.Events[0].Tenant != "tenant-7" {
		t.Fatalf("Parse = %+v, %v; want tenant tenant-7", b, err)
	}
}

func TestSyntheticReplies(t *testing.T) {
	t.Parallel()
	want := map[string]policy.Action{
		"bad_mailbox": policy.ActionSuppress, "invalid_domain": policy.ActionSuppress, "mailbox_full": policy.ActionSoft, "spam_related": policy.ActionNone,
		"hard_bounce": policy.ActionSuppress, "soft_bounce": policy.ActionNone, "deferral": policy.ActionNone,
	}
	for k, text := range byDescription {
		ev := events.Event{Type: events.TypeBounce, Reply: events.Reply{Text: text}}
		if got := ingesttest.Decide(t, &ev); got != want[k] {
			t.Errorf("%s: %q → %q, want %q", k, text, got, want[k])
		}
	}
	for k, text := range byEvent {
		ev := events.Event{Type: types[k], Reply: events.Reply{Text: text}}
		if got := ingesttest.Decide(t, &ev); got != want[k] {
			t.Errorf("%s: %q → %q, want %q", k, text, got, want[k])
		}
	}
	// A reject for an unsubscribe or a complaint suppresses for the tenant only (one
	// tenant's unsubscriber is not every tenant's); the rejection list at large suppresses
	// for everyone, as an ESP's bounce list does.
	for reason, want := range map[string]struct {
		action policy.Action
		global bool
	}{
		"hard-bounce": {policy.ActionSuppress, true}, "soft-bounce": {policy.ActionSuppress, true}, "custom": {policy.ActionSuppress, true},
		"unsub": {policy.ActionSuppress, false}, "spam": {policy.ActionSuppress, false},
		"unsigned": {policy.ActionAlert, false}, "invalid": {policy.ActionSuppress, true},
	} {
		body := []byte(url.Values{"mandrill_events": {`[{"event":"reject","_id":"r1","ts":1767262100,"msg":{"email":"a@example.com","reject_reason":"` + reason + `"}}]`}}.Encode())
		b, err := setup(t, nil).Parse(body)
		if err != nil || len(b.Events) != 1 {
			t.Fatalf("reject %s: %+v %v", reason, b, err)
		}
		d := ingesttest.Decision(t, &b.Events[0])
		if d.Action != want.action || (d.Action == policy.ActionSuppress && d.Global != want.global) {
			t.Errorf("reject %s: %q → %s (global %v), want %s (global %v)", reason, b.Events[0].Reply.Text, d.Action, d.Global, want.action, want.global)
		}
	}
}

// TestUnsubIsForTheTenant: the recipient's opt-out from this account's mail, suppressed
// for the tenant (the subaccount) only.
func TestUnsubIsForTheTenant(t *testing.T) {
	t.Parallel()
	b, err := setup(t, nil).Parse(form(t, "unsub.json"))
	ingesttest.AssertOptOuts(t, b, err, 1)
}

func TestOversized(t *testing.T) {
	t.Parallel()
	_, err := setup(t, nil).Parse(make([]byte, maxBody+1))
	ingesttest.AssertUnreadable(t, err)
}

func FuzzParse(f *testing.F) {
	var seeds [][]byte
	for _, name := range []string{"hard-bounce.json", "mixed.json", "reject.json", "send.json", "truncated.json"} {
		seeds = append(seeds, form(f, name))
	}
	ingesttest.FuzzParse(f, setup(f, nil), seeds...)
}

func BenchmarkIngest(b *testing.B) {
	a := setup(b, nil)
	body := form(b, "hard-bounce.json")
	ingesttest.BenchIngest(b, a, request(body, sign(testKey, testURL, body)), body, 1)
}

// signedOracle is Mandrill's documented scheme over every POST parameter, written
// independently of the adapter: base64(HMAC-SHA1(key, URL + name + value, sorted by name)).
func signedOracle(key, u string, form url.Values) string {
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(u))
	for _, n := range slices.Sorted(maps.Keys(form)) {
		for _, v := range form[n] {
			m.Write([]byte(n + v))
		}
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// FuzzSignedForm fuzzes what runs on a Mandrill request before it is authenticated:
// the form parsing and the signature over it, then Parse on what passes. It must never
// panic, and accept exactly the bodies the oracle signs the same way.
func FuzzSignedForm(f *testing.F) {
	a := setup(f, nil)
	// Small seeds: the fuzzer minimizes every new input it finds, and the fixtures'
	// kilobytes of URL-encoded JSON made that take most of a short run.
	for _, events := range []string{
		`[{"event":"hard_bounce","_id":"b1","ts":1767262000,"msg":{"email":"a@example.com","diag":"550 5.1.1 unknown"}}]`,
		`[{"event":"send","_id":"s1","ts":1767262000,"msg":{"email":"a@example.com"}},{"type":"blacklist"}]`,
		`[{"event":"hard_bounce"`,
	} {
		body := []byte(url.Values{"mandrill_events": {events}}.Encode())
		f.Add(body, sign(testKey, testURL, body))
	}
	for _, s := range []string{"", "a=1&a=2&b", "mandrill_events=%zz", "x=%00&&=&;=", "mandrill_events=[]&mandrill_events=[{}]"} {
		v, _ := url.ParseQuery(s)
		f.Add([]byte(s), signedOracle(testKey, testURL, v))
	}
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		r := request(body, sig)
		herr := a.AuthenticateHeaders(r)
		err := a.Authenticate(r, body)
		if herr != nil && err == nil {
			t.Fatalf("Authenticate accepted what AuthenticateHeaders refused: %v", herr)
		}
		if err != nil {
			return
		}
		v, perr := url.ParseQuery(string(body))
		if perr != nil || signedOracle(testKey, testURL, v) != strings.TrimSpace(sig) {
			t.Fatalf("accepted %q with signature %q that the oracle does not give", body, sig)
		}
		_, _ = a.Parse(body)
	})
}
