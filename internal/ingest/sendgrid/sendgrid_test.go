package sendgrid

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/ingesttest"
)

// now is the test clock: shortly after the fixtures' timestamps.
var now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// bundle is what setup gives each test: a key pair, the adapter and its settings.
type bundle struct {
	priv *ecdsa.PrivateKey
	a    *Adapter
	vars map[string]string
}

// setup builds an adapter with a fresh P-256 key; extra settings are merged in.
func setup(t testing.TB, extra map[string]string) bundle {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	vars := ingesttest.With(map[string]string{"REBOUND_SENDGRID_PUBLIC_KEY": base64.StdEncoding.EncodeToString(der)}, extra)
	return bundle{priv: priv, a: mustNew(t, vars), vars: vars}
}

// signed returns a request carrying SendGrid's signature headers for body at ts.
func signed(t testing.TB, priv *ecdsa.PrivateKey, body []byte, ts time.Time) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/webhooks/sendgrid", bytes.NewReader(body))
	stamp := strconv.FormatInt(ts.Unix(), 10)
	sum := sha256.Sum256(append([]byte(stamp), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	r.Header.Set(HeaderTimestamp, stamp)
	return r
}

func TestNew(t *testing.T) {
	t.Parallel()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p256DER, _ := x509.MarshalPKIXPublicKey(&p256.PublicKey)
	p256PEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: p256DER}))
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(p256DER)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		vars    map[string]string
		wantErr bool
	}{
		{"not configured", nil, false},
		{"base64 DER", map[string]string{"REBOUND_SENDGRID_PUBLIC_KEY": base64.StdEncoding.EncodeToString(p256DER)}, false},
		{"PEM", map[string]string{"REBOUND_SENDGRID_PUBLIC_KEY": p256PEM}, false},
		{"from file", map[string]string{"REBOUND_SENDGRID_PUBLIC_KEY_FILE": keyFile}, false},
		{"not base64", map[string]string{"REBOUND_SENDGRID_PUBLIC_KEY": "not a key!"}, true},
		{"base64 of junk", map[string]string{"REBOUND_SENDGRID_PUBLIC_KEY": base64.StdEncoding.EncodeToString([]byte("junk"))}, true},
		{"P-384", map[string]string{"REBOUND_SENDGRID_PUBLIC_KEY": base64.StdEncoding.EncodeToString(p384DER)}, true},
		{"RSA", map[string]string{"REBOUND_SENDGRID_PUBLIC_KEY": base64.StdEncoding.EncodeToString(rsaDER)}, true},
		{"broken PEM", map[string]string{"REBOUND_SENDGRID_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nAAAA"}, true},
		{"value and file", map[string]string{"REBOUND_SENDGRID_PUBLIC_KEY": "x", "REBOUND_SENDGRID_PUBLIC_KEY_FILE": keyFile}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(ingesttest.EnvAt(tt.vars, now))
			if (err != nil) != tt.wantErr {
				t.Fatalf("New error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "REBOUND_SENDGRID_PUBLIC_KEY") {
				t.Errorf("error %q does not name the variable", err)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	body := ingesttest.Fixture(t, "bounce-hard.json")
	tests := []struct {
		name string
		req  func() *http.Request
		a    *Adapter
		ok   bool
	}{
		{"valid", func() *http.Request { return signed(t, b.priv, body, now) }, b.a, true},
		{"valid, 4 min old", func() *http.Request { return signed(t, b.priv, body, now.Add(-4*time.Minute)) }, b.a, true},
		{"expired timestamp", func() *http.Request { return signed(t, b.priv, body, now.Add(-6*time.Minute)) }, b.a, false},
		{"timestamp in the future", func() *http.Request { return signed(t, b.priv, body, now.Add(6*time.Minute)) }, b.a, false},
		{"other key", func() *http.Request { return signed(t, other, body, now) }, b.a, false},
		{"body changed after signing", func() *http.Request { return signed(t, b.priv, append(bytes.Clone(body), ' '), now) }, b.a, false},
		{"timestamp header changed", func() *http.Request {
			r := signed(t, b.priv, body, now)
			r.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10))
			return r
		}, b.a, false},
		{"signature not base64", func() *http.Request {
			r := signed(t, b.priv, body, now)
			r.Header.Set(HeaderSignature, "%%%")
			return r
		}, b.a, false},
		{"no signature header", func() *http.Request {
			r := signed(t, b.priv, body, now)
			r.Header.Del(HeaderSignature)
			return r
		}, b.a, false},
		{"no timestamp header", func() *http.Request {
			r := signed(t, b.priv, body, now)
			r.Header.Del(HeaderTimestamp)
			return r
		}, b.a, false},
	}
	// A request signed with another key carries no valid credentials for b's.
	ingesttest.VerifyRule(t, New, "REBOUND_SENDGRID_PUBLIC_KEY", map[string]string{"REBOUND_SENDGRID_PUBLIC_KEY": b.vars["REBOUND_SENDGRID_PUBLIC_KEY"]},
		func(t testing.TB) (*http.Request, []byte) { return signed(t, other, body, now), body })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.a.Authenticate(tt.req(), body)
			ingesttest.AssertAuth(t, err, tt.ok)
		})
	}
}

func mustNew(t testing.TB, vars map[string]string) *Adapter {
	t.Helper()
	return ingesttest.New[*Adapter](t, New, ingesttest.EnvAt(vars, now))
}

func TestParse(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string]string{"REBOUND_SENDGRID_TENANT_FROM": "account"})
	tests := []struct {
		fixture string
		want    events.Event
	}{
		{"bounce-hard.json", events.Event{
			ID: "sendgrid:YmNlLWhhcmQtMDAx", ESP: "sendgrid", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767225600, 0).UTC(), Recipient: "lena.hart@example.net",
			SendingIP: "203.0.113.41", Tenant: "acme-eu", MessageID: "<invoice-88213@billing.shop.example>",
			Reply:      events.Reply{Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 The email account that you tried to reach does not exist."},
			ESPVerdict: map[string]string{"event": "bounce", "type": "bounce", "bounce_classification": "Invalid Address"},
		}},
		{"bounce-soft.json", events.Event{
			ID: "sendgrid:YmNlLXNvZnQtMDAy", ESP: "sendgrid", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767229200, 0).UTC(), Recipient: "marco.vieri@example.org",
			MessageID:  "Zp0aX1mWQh2Jv8b1cNeL7g.filterdrecv-7d9c-2-6772AFC0-9.0",
			Reply:      events.Reply{Code: 452, Enhanced: "4.2.2", Text: "452 4.2.2 Mailbox full: quota exceeded for this recipient"},
			ESPVerdict: map[string]string{"event": "bounce", "type": "bounce", "bounce_classification": "Mailbox Unavailable"},
		}},
		{"bounce-block.json", events.Event{
			ID: "sendgrid:YmNlLWJsb2NrLTAwMw", ESP: "sendgrid", Type: events.TypeBounce,
			OccurredAt: time.Unix(1767232800, 0).UTC(), Recipient: "ops-team@example.com",
			SendingIP: "203.0.113.41", IPPool: "transactional-eu",
			MessageID:  "Tb4Kc9QpSMyFh3nR0aZx1Q.filterdrecv-11aa-3-6772BDD0-1.0",
			Reply:      events.Reply{Code: 554, Enhanced: "5.7.1", Text: "554 5.7.1 Service unavailable; Client host [203.0.113.41] blocked using a reputation list"},
			ESPVerdict: map[string]string{"event": "bounce", "type": "blocked", "bounce_classification": "Reputation"},
		}},
		{"deferred.json", events.Event{
			ID: "sendgrid:ZGVmZXJyZWQtMDA0", ESP: "sendgrid", Type: events.TypeDeferral,
			OccurredAt: time.Unix(1767236400, 0).UTC(), Recipient: "j.okafor@example.org",
			SendingIP: "203.0.113.42", MessageID: "<welcome-5521@app.shop.example>",
			Reply:      events.Reply{Code: 451, Enhanced: "4.7.1", Text: "451 4.7.1 Greylisted, please try again in 300 seconds"},
			ESPVerdict: map[string]string{"event": "deferred", "attempt": "3"},
		}},
		{"spamreport.json", events.Event{
			ID: "sendgrid:c3BhbXJlcG9ydC0wMDU", ESP: "sendgrid", Type: events.TypeComplaint,
			OccurredAt: time.Unix(1767240000, 0).UTC(), Recipient: "p.lindqvist@example.com", Tenant: "acme-us",
			MessageID:  "Ra7Ws3XeQy6Lk9Pd2mFh0w.filterdrecv-9e0f-4-6772D9F0-7.0",
			ESPVerdict: map[string]string{"event": "spamreport"},
		}},
		{"dropped-suppressed.json", events.Event{
			ID: "sendgrid:ZHJvcHBlZC0wMDY", ESP: "sendgrid", Type: events.TypeDropped, ProviderSuppressed: true,
			OccurredAt: time.Unix(1767243600, 0).UTC(), Recipient: "old.customer@example.net",
			MessageID:  "<reminder-204@app.shop.example>",
			Reply:      events.Reply{Text: "sendgrid dropped: Bounced Address"},
			ESPVerdict: map[string]string{"event": "dropped", "reason": "Bounced Address", "status": "5.0.0"},
		}},
		{"unsubscribe.json", events.Event{
			ID: "sendgrid:dW5zdWJzY3JpYmUtMDEx", ESP: "sendgrid", Type: events.TypeDropped, ProviderSuppressed: true,
			OccurredAt: time.Unix(1767254400, 0).UTC(), Recipient: "r.nakamura@example.org", Tenant: "acme-us",
			MessageID:  "Hq2Vd7TeRw1Mn5Kc8pLf4a.filterdrecv-3b1c-5-6772F4A0-2.0",
			Reply:      events.Reply{Text: "synthetic (SendGrid unsubscribe, not sent): " + ingest.OptOutUnsubscribed},
			ESPVerdict: map[string]string{"event": "unsubscribe"},
		}},
		{"delivered.json", events.Event{
			ID: "sendgrid:ZGVsaXZlcmVkLTAwNw", ESP: "sendgrid", Type: events.TypeDelivered,
			OccurredAt: time.Unix(1767247200, 0).UTC(), Recipient: "lena.hart@example.net",
			SendingIP: "203.0.113.41", IPPool: "transactional-eu", MessageID: "<order-99120@app.shop.example>",
			Reply:      events.Reply{Text: "250 2.0.0 OK 1767247200 d9443c01a7336-21c2b5e8 - gsmtp"},
			ESPVerdict: map[string]string{"event": "delivered"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			body := ingesttest.Fixture(t, tt.fixture)
			if err := b.a.Authenticate(signed(t, b.priv, body, now), body); err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			got, err := b.a.Parse(body)
			ingesttest.AssertBatch(t, got, err, ingesttest.Want{Events: []events.Event{tt.want}})
		})
	}
}

func TestParseBatch(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string]string{"REBOUND_SENDGRID_TENANT_FROM": "account"})
	tests := []struct {
		fixture                   string
		events, rejects, ignored  int
		rejectIndexes             []int
		firstTenant, rejectReason string
	}{
		{"batch-mixed.json", 4, 3, 1, []int{3, 4, 5}, "acme-eu", "recipient"},
		{"unknown-type.json", 0, 0, 3, nil, "", ""},
		// One unsubscribe group only: Rebound's list has no groups.
		{"group-unsubscribe.json", 0, 0, 1, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			got, err := b.a.Parse(ingesttest.Fixture(t, tt.fixture))
			ingesttest.AssertBatch(t, got, err, ingesttest.Want{NEvents: tt.events, Rejects: tt.rejects, Ignored: tt.ignored,
				RejectIndexes: tt.rejectIndexes, RejectReason: tt.rejectReason})
			if tt.events > 0 && got.Events[0].Tenant != tt.firstTenant {
				t.Errorf("tenant = %q, want %q", got.Events[0].Tenant, tt.firstTenant)
			}
		})
	}
}

func TestParseUnreadable(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for name, body := range map[string][]byte{
		"truncated": ingesttest.Fixture(t, "malformed.json"),
		"empty":     nil,
		"string":    []byte(`"hello"`),
		"form":      []byte("event=bounce&email=a@example.com"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := b.a.Parse(body)
			ingesttest.AssertUnreadable(t, err)
		})
	}
}

// TestUnsubscribeIsForTheTenant: a global unsubscribe at SendGrid is the recipient's
// wish about this sender, suppressed for the tenant at once rather than at the next drop.
func TestUnsubscribeIsForTheTenant(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string]string{"REBOUND_SENDGRID_TENANT_FROM": "account"})
	got, err := b.a.Parse(ingesttest.Fixture(t, "unsubscribe.json"))
	ingesttest.AssertOptOuts(t, got, err, 1)
}

func TestDroppedReasons(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for reason, suppressed := range map[string]bool{
		"Bounced Address": true, "Unsubscribed Address": true, "Spam Reporting Address": true,
		"Invalid": false, "Invalid SMTPAPI header": false,
	} {
		body := []byte(`[{"email":"x@example.com","timestamp":1767225600,"event":"dropped","sg_event_id":"d1","reason":"` + reason + `"}]`)
		got, err := b.a.Parse(body)
		if err != nil || len(got.Events) != 1 {
			t.Fatalf("%s: Parse = %+v, %v", reason, got, err)
		}
		if got.Events[0].ProviderSuppressed != suppressed {
			t.Errorf("%s: provider_suppressed = %v, want %v", reason, got.Events[0].ProviderSuppressed, suppressed)
		}
	}
}

func FuzzParse(f *testing.F) {
	seeds := ingesttest.Fixtures(f)
	seeds = append(seeds, []byte(`[{"event":"bounce","email":"a@b","timestamp":1e300,"sg_event_id":"x"}]`))
	seeds = append(seeds, []byte(`[{"event":"dropped","email":"<a@b.example>","timestamp":"NaN","sg_event_id":"x","pool":{"name":7}}]`))
	a := mustNew(f, map[string]string{"REBOUND_SENDGRID_TENANT_FROM": "account"})
	ingesttest.FuzzParse(f, a, seeds...)
}

func BenchmarkIngest(b *testing.B) {
	bd := setup(b, map[string]string{"REBOUND_SENDGRID_TENANT_FROM": "account"})
	body := ingesttest.Fixture(b, "bounce-hard.json")
	// SendGrid signs no one-time token: one signed request can be replayed.
	ingesttest.BenchIngest(b, bd.a, signed(b, bd.priv, body, now), body, 1)
}
