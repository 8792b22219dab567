package mailgun

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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

var now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

const testKey = "key-test-0f1e2d3c4b5a69788796a5b4c3d2e1f0"

// setup builds an adapter with the test signing key; extra settings are merged in.
func setup(t testing.TB, extra map[string]string) *Adapter {
	t.Helper()
	return mustNew(t, ingesttest.With(map[string]string{"REBOUND_MAILGUN_SIGNING_KEY": testKey}, extra))
}

func mac(key, ts, token string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(ts + token))
	return hex.EncodeToString(m.Sum(nil))
}

func newToken(t testing.TB) string {
	b := make([]byte, 25)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b) // 50 characters, like Mailgun's
}

// sign replaces the body's signature object; sig and parent are the MACs to put in
// ("" leaves parent-signature out).
func sign(t testing.TB, body []byte, sig signature) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	s, err := json.Marshal(sig)
	if err != nil {
		t.Fatal(err)
	}
	m["signature"] = s
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signed signs body with key at ts with a fresh token.
func signed(t testing.TB, body []byte, key string, ts time.Time) []byte {
	t.Helper()
	stamp, tok := strconv.FormatInt(ts.Unix(), 10), newToken(t)
	return sign(t, body, signature{Timestamp: json.RawMessage(strconv.Quote(stamp)), Token: tok, Signature: mac(key, stamp, tok)})
}

func req() *http.Request { return httptest.NewRequest(http.MethodPost, "/webhooks/mailgun", nil) }

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	a := setup(t, nil)
	base := ingesttest.Fixture(t, "failed-permanent.json")
	stamp := strconv.FormatInt(now.Unix(), 10)
	tests := []struct {
		name string
		body func() []byte
		a    *Adapter
		ok   bool
	}{
		{"valid", func() []byte { return signed(t, base, testKey, now) }, a, true},
		{"valid, numeric timestamp", func() []byte {
			tok := newToken(t)
			return sign(t, base, signature{Timestamp: json.RawMessage(stamp), Token: tok, Signature: mac(testKey, stamp, tok)})
		}, a, true},
		{"valid, upper-case hex", func() []byte {
			tok := newToken(t)
			return sign(t, base, signature{Timestamp: json.RawMessage(strconv.Quote(stamp)), Token: tok, Signature: strings.ToUpper(mac(testKey, stamp, tok))})
		}, a, true},
		{"wrong key", func() []byte { return signed(t, base, "another-key", now) }, a, false},
		{"expired timestamp", func() []byte { return signed(t, base, testKey, now.Add(-6*time.Minute)) }, a, false},
		{"timestamp in the future", func() []byte { return signed(t, base, testKey, now.Add(6*time.Minute)) }, a, false},
		{"token changed", func() []byte {
			tok := newToken(t)
			return sign(t, base, signature{Timestamp: json.RawMessage(strconv.Quote(stamp)), Token: tok + "x", Signature: mac(testKey, stamp, tok)})
		}, a, false},
		{"parent-signature verifies (subaccount event)", func() []byte {
			tok := newToken(t)
			return sign(t, ingesttest.Fixture(t, "subaccount.json"), signature{Timestamp: json.RawMessage(strconv.Quote(stamp)), Token: tok,
				Signature: mac("subaccount-key", stamp, tok), ParentSignature: mac(testKey, stamp, tok)})
		}, a, true},
		{"signature verifies, parent-signature does not", func() []byte {
			tok := newToken(t)
			return sign(t, base, signature{Timestamp: json.RawMessage(strconv.Quote(stamp)), Token: tok,
				Signature: mac(testKey, stamp, tok), ParentSignature: mac("parent-key", stamp, tok)})
		}, a, true},
		{"neither verifies", func() []byte {
			tok := newToken(t)
			return sign(t, base, signature{Timestamp: json.RawMessage(strconv.Quote(stamp)), Token: tok,
				Signature: mac("k1", stamp, tok), ParentSignature: mac("k2", stamp, tok)})
		}, a, false},
		{"no signature object", func() []byte { return []byte(`{"event-data":{}}`) }, a, false},
		{"truncated body", func() []byte { return ingesttest.Fixture(t, "malformed.json") }, a, false},
	}
	ingesttest.VerifyRule(t, New, "REBOUND_MAILGUN_SIGNING_KEY", map[string]string{"REBOUND_MAILGUN_SIGNING_KEY": testKey},
		func(t testing.TB) (*http.Request, []byte) { return req(), signed(t, base, "another-key", now) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.a.Authenticate(req(), tt.body())
			ingesttest.AssertAuth(t, err, tt.ok, testKey)
		})
	}
}

// TestReplayToken: the token the handler remembers is signature.token, and only for a
// request checked against the key (an unchecked one's token proves nothing).
func TestReplayToken(t *testing.T) {
	t.Parallel()
	a := setup(t, nil)
	body := signed(t, ingesttest.Fixture(t, "failed-permanent.json"), testKey, now)
	s, _, err := parseSignature(body)
	if err != nil {
		t.Fatal(err)
	}
	tok, ttl := a.ReplayToken(req(), body)
	if tok != s.Token || ttl != 2*ingest.DefaultReplayWindow {
		t.Errorf("ReplayToken = %q, %s; want the signature token for %s", tok, ttl, 2*ingest.DefaultReplayWindow)
	}
	unchecked := mustNew(t, map[string]string{"REBOUND_MAILGUN_INSECURE_SKIP_VERIFY": "true"})
	if tok, _ := unchecked.ReplayToken(req(), body); tok != "" {
		t.Errorf("unchecked ReplayToken = %q, want none", tok)
	}
}

// TestReplayThroughHandler: a signed request replayed with made-up event-data (Mailgun
// does not sign it) is refused by the handler; a forged one does not burn the token.
func TestReplayThroughHandler(t *testing.T) {
	t.Parallel()
	a := setup(t, nil)
	mux := http.NewServeMux()
	ingest.NewHandler(nopPublisher{}, metrics.New(), zap.NewNop(), 1<<20, a).Register(mux)
	post := func(body []byte) int {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/webhooks/mailgun", bytes.NewReader(body)))
		return w.Code
	}
	body := signed(t, ingesttest.Fixture(t, "failed-permanent.json"), testKey, now)
	var sig map[string]json.RawMessage
	if err := json.Unmarshal(body, &sig); err != nil {
		t.Fatal(err)
	}
	forged := sign(t, ingesttest.Fixture(t, "failed-permanent.json"), signature{Timestamp: json.RawMessage(`"1"`), Token: "x", Signature: "00"})
	var forgedMap map[string]json.RawMessage
	if err := json.Unmarshal(forged, &forgedMap); err != nil {
		t.Fatal(err)
	}
	// The captured signature with other event-data.
	forgedMap["signature"] = sig["signature"]
	forgedMap["event-data"] = json.RawMessage(`{"id":"made-up","event":"failed","severity":"permanent","timestamp":1767225600,"recipient":"victim@example.net"}`)
	replay, err := json.Marshal(forgedMap)
	if err != nil {
		t.Fatal(err)
	}
	if code := post(signed(t, ingesttest.Fixture(t, "failed-permanent.json"), "not-the-key", now)); code != http.StatusUnauthorized {
		t.Fatalf("forged request = %d, want 401", code)
	}
	if code := post(body); code != http.StatusOK {
		t.Fatalf("first delivery = %d, want 200", code)
	}
	if code := post(replay); code != http.StatusUnauthorized {
		t.Fatalf("replay with made-up event-data = %d, want 401", code)
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, []events.Event) error       { return nil }
func (nopPublisher) DeadLetter(context.Context, stream.DeadLetter) error { return nil }

func mustNew(t testing.TB, vars map[string]string) *Adapter {
	t.Helper()
	return ingesttest.New[*Adapter](t, New, ingesttest.EnvAt(vars, now))
}

func TestParse(t *testing.T) {
	t.Parallel()
	a := setup(t, map[string]string{"REBOUND_MAILGUN_TENANT_FROM": "tenant"})
	tests := []struct {
		fixture string
		want    events.Event
	}{
		{"failed-permanent.json", events.Event{
			ID: "mailgun:G9Bn5sL8SZ2u6JcQ0xWd4A", ESP: "mailgun", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767225600, 250_000_000).UTC(), Recipient: "lena.hart@example.net",
			Sender: "bounces+lena.hart=example.net@mg.shop.example", SendingDomain: "mg.shop.example",
			SendingIP: "198.51.100.7", Tenant: "acme-eu", MTA: "mx1.example.net",
			MessageID:  "20260101100000.1.A1B2C3@mg.shop.example",
			Reply:      events.Reply{Code: 550, Enhanced: "5.1.1", Text: "5.1.1 The email account that you tried to reach does not exist."},
			ESPVerdict: map[string]string{"event": "failed", "severity": "permanent", "reason": "bounce"},
		}},
		{"failed-soft.json", events.Event{
			ID: "mailgun:hT2q9Xw0R4eK7mPz1cVb8g", ESP: "mailgun", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767229200, 500_000_000).UTC(), Recipient: "marco.vieri@example.org",
			Sender: "bounces@mg.shop.example", SendingDomain: "mg.shop.example", SendingIP: "198.51.100.7",
			MTA: "mx.example.org", MessageID: "20260101110000.2.D4E5F6@mg.shop.example",
			Reply:      events.Reply{Code: 552, Enhanced: "5.2.2", Text: "5.2.2 The recipient's mailbox is full and can't accept messages now."},
			ESPVerdict: map[string]string{"event": "failed", "severity": "permanent", "reason": "generic"},
		}},
		{"failed-block.json", events.Event{
			ID: "mailgun:pV6nB3kQTgO1sY8eWzA5rQ", ESP: "mailgun", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767232800, 0).UTC(), Recipient: "ops-team@example.com",
			Sender: "bounces@mg.shop.example", SendingDomain: "mg.shop.example", SendingIP: "198.51.100.8",
			MTA: "inbound.example.com", MessageID: "20260101120000.3.G7H8I9@mg.shop.example",
			Reply:      events.Reply{Code: 554, Enhanced: "5.7.1", Text: "Service unavailable; Client host [198.51.100.8] blocked using a reputation list"},
			ESPVerdict: map[string]string{"event": "failed", "severity": "permanent", "reason": "generic"},
		}},
		{"failed-temporary.json", events.Event{
			ID: "mailgun:cX4mW7zLQaG2oE9tHnS1dw", ESP: "mailgun", Type: events.TypeDeferral,
			OccurredAt: time.Unix(1767236400, 125_000_000).UTC(), Recipient: "j.okafor@example.org",
			Sender: "bounces@mg.shop.example", SendingDomain: "mg.shop.example", SendingIP: "198.51.100.7",
			MTA: "mx.example.org", MessageID: "20260101130000.4.J1K2L3@mg.shop.example",
			Reply:      events.Reply{Code: 451, Enhanced: "4.7.1", Text: "4.7.1 Greylisted, please try again in 300 seconds"},
			ESPVerdict: map[string]string{"event": "failed", "severity": "temporary", "reason": "greylisted"},
		}},
		{"failed-suppress-bounce.json", events.Event{
			ID: "mailgun:Lr8yU1oPS6iN3bD0fKq7Tg", ESP: "mailgun", Type: events.TypeDropped, ProviderSuppressed: true,
			OccurredAt: time.Unix(1767243600, 0).UTC(), Recipient: "old.customer@example.net",
			Sender: "bounces@mg.shop.example", SendingDomain: "mg.shop.example", Tenant: "acme-us",
			MessageID:  "20260101150000.6.P7Q8R9@mg.shop.example",
			Reply:      events.Reply{Text: "Not delivering to previously bounced address"},
			ESPVerdict: map[string]string{"event": "failed", "severity": "permanent", "reason": "suppress-bounce", "delivery_code": "605"},
		}},
		{"failed-suppress-unsubscribe.json", events.Event{
			ID: "mailgun:Un4sUbScRiBeD0aBcDeFgHi", ESP: "mailgun", Type: events.TypeDropped, ProviderSuppressed: true,
			OccurredAt: time.Unix(1767243600, 0).UTC(), Recipient: "old.customer@example.net",
			Sender: "bounces@mg.shop.example", SendingDomain: "mg.shop.example", Tenant: "acme-us",
			MessageID:  "20260101150000.6.P7Q8R9@mg.shop.example",
			Reply:      events.Reply{Text: "synthetic (Mailgun failed suppress-unsubscribe, not sent): 550 5.7.1 Unsubscribed Address: the recipient unsubscribed from this sender"},
			ESPVerdict: map[string]string{"event": "failed", "severity": "permanent", "reason": "suppress-unsubscribe", "delivery_code": "606", "delivery_message": "Not delivering to unsubscribed address"},
		}},
		{"failed-suppress-complaint.json", events.Event{
			ID: "mailgun:CoMpLaInT0aBcDeFgHiJkL", ESP: "mailgun", Type: events.TypeDropped, ProviderSuppressed: true,
			OccurredAt: time.Unix(1767243600, 0).UTC(), Recipient: "old.customer@example.net",
			Sender: "bounces@mg.shop.example", SendingDomain: "mg.shop.example", Tenant: "acme-us",
			MessageID:  "20260101150000.6.P7Q8R9@mg.shop.example",
			Reply:      events.Reply{Text: "synthetic (Mailgun failed suppress-complaint, not sent): 550 5.7.1 Spam Reporting Address: the recipient reported this sender's mail as spam"},
			ESPVerdict: map[string]string{"event": "failed", "severity": "permanent", "reason": "suppress-complaint", "delivery_code": "607", "delivery_message": "Not delivering to a user who marked your messages as spam"},
		}},
		{"complained.json", events.Event{
			ID: "mailgun:Ws5aF2gHRkM8vC1xZy3JeA", ESP: "mailgun", Type: events.TypeComplaint,
			OccurredAt: time.Unix(1767240000, 0).UTC(), Recipient: "p.lindqvist@example.com",
			SendingDomain: "mg.shop.example", SendingIP: "198.51.100.7",
			MessageID:  "20260101140000.5.M4N5O6@mg.shop.example",
			ESPVerdict: map[string]string{"event": "complained"},
		}},
		{"delivered.json", events.Event{
			ID: "mailgun:Dq1zE4rTSu7wX0yA2bC5fg", ESP: "mailgun", Type: events.TypeDelivered,
			OccurredAt: time.Unix(1767247200, 750_000_000).UTC(), Recipient: "lena.hart@example.net",
			Sender: "bounces@mg.shop.example", SendingDomain: "mg.shop.example", SendingIP: "198.51.100.7",
			MTA: "mx1.example.net", MessageID: "20260101160000.7.S1T2U3@mg.shop.example",
			Reply:      events.Reply{Code: 250, Text: "OK"},
			ESPVerdict: map[string]string{"event": "delivered"},
		}},
		{"subaccount.json", events.Event{
			ID: "mailgun:Sb7uB9cDT1eF3gH5iJ7kLw", ESP: "mailgun", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767250800, 0).UTC(), Recipient: "kim.sato@example.jp",
			Sender: "bounces@mg.brand.example", SendingDomain: "mg.brand.example",
			Reply:      events.Reply{Code: 550, Enhanced: "5.1.1", Text: "5.1.1 <kim.sato@example.jp>: Recipient address rejected: User unknown in virtual mailbox table"},
			ESPVerdict: map[string]string{"event": "failed", "severity": "permanent", "reason": "bounce"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			body := signed(t, ingesttest.Fixture(t, tt.fixture), testKey, now)
			if err := a.Authenticate(req(), body); err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			got, err := a.Parse(body)
			ingesttest.AssertBatch(t, got, err, ingesttest.Want{Events: []events.Event{tt.want}})
		})
	}
}

// TestUnsubscribed: the unsubscribe itself is the tenant's opt-out at once, not only
// at the next drop from Mailgun's list.
func TestUnsubscribed(t *testing.T) {
	t.Parallel()
	a := setup(t, map[string]string{"REBOUND_MAILGUN_TENANT_FROM": "tenant"})
	got, err := a.Parse(signed(t, ingesttest.Fixture(t, "unsubscribed.json"), testKey, now))
	ingesttest.AssertBatch(t, got, err, ingesttest.Want{Events: []events.Event{{
		ID: "mailgun:Qk7uNsUbS2cRiBeDxYz0Aw", ESP: "mailgun", Type: events.TypeDropped, ProviderSuppressed: true,
		OccurredAt: time.Unix(1767247200, 0).UTC(), Recipient: "r.nakamura@example.org",
		SendingDomain: "mg.shop.example", Tenant: "acme-us", MessageID: "20260101160000.7.S1T2U3@mg.shop.example",
		Reply:      events.Reply{Text: "synthetic (Mailgun unsubscribed, not sent): " + ingest.OptOutUnsubscribed},
		ESPVerdict: map[string]string{"event": "unsubscribed"},
	}}})
	if len(got.Events) == 1 {
		ingesttest.AssertTenantOptOut(t, &got.Events[0])
	}
}

// TestSuppressedDrops: Mailgun's drops from its own lists suppress the recipient, for
// the tenant only when the list is the recipient's opt-out from this sender (an
// unsubscribe, a complaint), for everyone when it is the bounce list.
func TestSuppressedDrops(t *testing.T) {
	t.Parallel()
	a := setup(t, map[string]string{"REBOUND_MAILGUN_TENANT_FROM": "tenant"})
	for fixture, global := range map[string]bool{
		"failed-suppress-bounce.json": true, "failed-suppress-unsubscribe.json": false, "failed-suppress-complaint.json": false,
		"unsubscribed.json": false,
	} {
		got, err := a.Parse(signed(t, ingesttest.Fixture(t, fixture), testKey, now))
		if err != nil || len(got.Events) != 1 {
			t.Fatalf("%s: %+v, %v", fixture, got, err)
		}
		if d := ingesttest.Decision(t, &got.Events[0]); d.Action != policy.ActionSuppress || d.Global != global {
			t.Errorf("%s: %q → %s (global %v), want suppress (global %v)", fixture, got.Events[0].Reply.Text, d.Action, d.Global, global)
		}
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
		{"opened.json", 0, 1, ""},
		{"no-recipient.json", 1, 0, "recipient"},
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
		"truncated":     ingesttest.Fixture(t, "malformed.json"),
		"empty":         nil,
		"array":         []byte(`[{"event-data":{}}]`),
		"form":          []byte("event=bounced&recipient=a%40example.com&token=t&timestamp=1&signature=s"),
		"no event-data": []byte(`{"signature":{"timestamp":"1","token":"t","signature":"s"}}`),
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
	seeds = append(seeds, []byte(`{"event-data":{"event":"failed","id":"x","recipient":"a@b","timestamp":"1e999","delivery-status":{"code":"abc"}}}`))
	a := mustNew(f, map[string]string{"REBOUND_MAILGUN_TENANT_FROM": "tenant"})
	ingesttest.FuzzParseOne(f, a, seeds...)
}

func BenchmarkIngest(b *testing.B) {
	a := setup(b, map[string]string{"REBOUND_MAILGUN_TENANT_FROM": "tenant"})
	body := ingesttest.Fixture(b, "failed-permanent.json")
	stamp := strconv.FormatInt(now.Unix(), 10)
	// Each request needs its own token, as Mailgun's do (so ingesttest.BenchIngest,
	// which replays one request, does not fit); bodies are signed in chunks with the
	// timer stopped, so the numbers are those of ingesting one request.
	const chunk = 4096
	var bodies [][]byte
	n := 0
	r := req()
	b.ReportAllocs()
	for b.Loop() {
		if len(bodies) == 0 {
			b.StopTimer()
			for range chunk {
				tok := strconv.Itoa(n) + "-bench-token"
				n++
				bodies = append(bodies, sign(b, body, signature{Timestamp: json.RawMessage(strconv.Quote(stamp)), Token: tok, Signature: mac(testKey, stamp, tok)}))
			}
			b.StartTimer()
		}
		signedBody := bodies[len(bodies)-1]
		bodies = bodies[:len(bodies)-1]
		if err := a.Authenticate(r, signedBody); err != nil {
			b.Fatal(err)
		}
		if got, err := a.Parse(signedBody); err != nil || len(got.Events) != 1 {
			b.Fatal(got, err)
		}
	}
}

// FuzzSignature fuzzes what runs on a Mailgun request before it is authenticated: the
// signature object is read out of any body, checked, and its token taken. It must never
// panic, and a body it accepts has a token for the handler to remember.
func FuzzSignature(f *testing.F) {
	a := setup(f, nil)
	for _, name := range []string{"failed-permanent.json", "subaccount.json", "malformed.json"} {
		f.Add(ingesttest.Fixture(f, name))
	}
	f.Add(signed(f, ingesttest.Fixture(f, "failed-permanent.json"), testKey, now))
	stamp := strconv.FormatInt(now.Unix(), 10)
	for _, s := range []string{
		`{"signature":{"timestamp":` + stamp + `,"token":"t","signature":"` + mac(testKey, stamp, "t") + `"}}`,
		`{"signature":{"timestamp":"` + stamp + `","token":"t","signature":"` + mac(testKey, stamp, "t") + `","parent-signature":"00"}}`,
		`{"signature":{"timestamp":1e3,"token":"t","signature":"x"}}`,
		`{"signature":{"timestamp":"1.5","token":"t","signature":"x"}}`,
		`{"signature":null}`, `{"signature":[]}`, `{"signature":{"timestamp":{}}}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := a.Authenticate(req(), body)
		if err != nil && !errors.Is(err, ingest.ErrUnauthenticated) {
			t.Fatalf("Authenticate = %v, want nil or ErrUnauthenticated", err)
		}
		tok, _ := a.ReplayToken(req(), body)
		if err == nil && tok == "" {
			t.Fatalf("accepted %q without a token to remember", body)
		}
	})
}
