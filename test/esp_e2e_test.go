package test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/ses"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/stream"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// espKeys are the secrets one test run configures for every ESP.
type espKeys struct {
	sendgrid   *ecdsa.PrivateKey
	mailgun    string
	basic      string // Postmark, SparkPost and Mailjet: user:password
	mandrill   string
	resend     []byte // decoded whsec_ secret
	mailersend string
	brevo      string
	sns        *rsa.PrivateKey
}

// mandrillURL is the URL "registered in Mandrill": it is part of what Mandrill signs,
// and the worker is told the same value, whatever address the test reaches it on.
const mandrillURL = "https://rebound.example.com/webhooks/mandrill"

// snsTopic is the SES notifications' topic, allow-listed in the SES adapter.
const snsTopic = "arn:aws:sns:eu-west-1:111122223333:ses-e2e"

func newESPKeys(t *testing.T) *espKeys {
	t.Helper()
	sg, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sns, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	resend := make([]byte, 24)
	_, _ = rand.Read(resend)
	return &espKeys{
		sendgrid: sg, mailgun: "key-" + testsvc.ID(), basic: "rebound:" + testsvc.ID(), mandrill: "mk-" + testsvc.ID(),
		resend: resend, mailersend: "ms-" + testsvc.ID(), brevo: "brevo-" + testsvc.ID(), sns: sns,
	}
}

// env is the worker's configuration for every ESP but SES (see TestESPEndToEnd).
func (k *espKeys) env(t *testing.T) []string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.sendgrid.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		"REBOUND_SENDGRID_PUBLIC_KEY=" + base64.StdEncoding.EncodeToString(der),
		"REBOUND_SENDGRID_TENANT_FROM=account",
		"REBOUND_MAILGUN_SIGNING_KEY=" + k.mailgun,
		"REBOUND_POSTMARK_BASIC_AUTH=" + k.basic,
		"REBOUND_SPARKPOST_BASIC_AUTH=" + k.basic,
		"REBOUND_MAILJET_BASIC_AUTH=" + k.basic,
		"REBOUND_MANDRILL_WEBHOOK_KEY=" + k.mandrill,
		"REBOUND_MANDRILL_WEBHOOK_URL=" + mandrillURL,
		"REBOUND_RESEND_SIGNING_SECRET=whsec_" + base64.StdEncoding.EncodeToString(k.resend),
		"REBOUND_MAILERSEND_SIGNING_SECRET=" + k.mailersend,
		"REBOUND_BREVO_TOKEN=" + k.brevo,
		// SES is configured in the binary only to show that it refuses a certificate
		// outside SNS's hosts; its events are ingested in-process.
		"REBOUND_SES_TOPIC_ARNS=" + snsTopic,
	}
}

// espCase is one ESP's fixtures: a hard bounce of an unknown user and a sender-side
// refusal, with the recipients they name (replaced by fresh ones per run).
type espCase struct {
	esp       string
	hard      string
	hardRcpts []string
	block     string
	blockRcpt string
}

var espCases = []espCase{
	{"sendgrid", "bounce-hard.json", []string{"lena.hart@example.net"}, "bounce-block.json", "ops-team@example.com"},
	{"mailgun", "failed-permanent.json", []string{"lena.hart@example.net"}, "failed-block.json", "ops-team@example.com"},
	{"postmark", "bounce-hard.json", []string{"lena.hart@example.net"}, "bounce-blocked.json", "ops-team@example.com"},
	{"sparkpost", "bounce-hard.json", []string{"lena.hart@example.net"}, "bounce-block.json", "ops-team@example.com"},
	{"mailjet", "bounce-hard.json", []string{"lena.hart@example.net"}, "bounce-block.json", "ops-team@example.com"},
	{"ses", "bounce-hard.json", []string{"ana@example.net", "ben@example.net"}, "bounce-block.json", "dee@example.com"},
	{"mandrill", "hard-bounce.json", []string{"ana@example.net"}, "block.json", "cy@example.com"},
	{"resend", "bounce-permanent.json", []string{"kofi@example.net"}, "bounce-block.json", "zoe@example.com"},
	{"mailersend", "hard-bounce.json", []string{"nadia.q@example.net"}, "block.json", "li@example.com"},
	{"brevo", "hard-bounce.json", []string{"ana@example.net"}, "block.json", "cy@example.com"},
}

// espFixture reads an adapter's fixture and gives every recipient in it a fresh address
// (case-insensitively: some fixtures spell it in mixed case), returning the new ones.
func espFixture(t *testing.T, esp, name string, rcpts []string, run string) ([]byte, []string) {
	t.Helper()
	b := mustFixture(t, esp, name)
	fresh := make([]string, len(rcpts))
	for i, r := range rcpts {
		local, domain, _ := strings.Cut(r, "@")
		fresh[i] = fmt.Sprintf("%s-%s-%s@%s", strings.ReplaceAll(local, ".", "-"), esp, run, domain)
		re := regexp.MustCompile(`(?i)` + regexp.QuoteMeta(r))
		if !re.Match(b) {
			t.Fatalf("%s/%s does not name %s", esp, name, r)
		}
		b = re.ReplaceAll(b, []byte(fresh[i]))
	}
	return b, fresh
}

// signedRequest makes the POST the ESP would send for body, signed with the run's keys.
func (k *espKeys) signedRequest(t *testing.T, base, esp string, body []byte) *http.Request {
	t.Helper()
	h := http.Header{}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	switch esp {
	case "sendgrid":
		sum := sha256.Sum256(append([]byte(now), body...))
		sig, err := ecdsa.SignASN1(rand.Reader, k.sendgrid, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		h.Set("X-Twilio-Email-Event-Webhook-Signature", base64.StdEncoding.EncodeToString(sig))
		h.Set("X-Twilio-Email-Event-Webhook-Timestamp", now)
	case "mailgun":
		body = mailgunSign(t, body, k.mailgun, now)
	case "postmark", "sparkpost", "mailjet":
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(k.basic)))
	case "mandrill":
		body = []byte(url.Values{"mandrill_events": {string(body)}}.Encode())
		m := hmac.New(sha1.New, []byte(k.mandrill))
		m.Write([]byte(mandrillURL + "mandrill_events"))
		v, _ := url.ParseQuery(string(body))
		m.Write([]byte(v.Get("mandrill_events")))
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		h.Set("X-Mandrill-Signature", base64.StdEncoding.EncodeToString(m.Sum(nil)))
	case "resend":
		id := "msg_" + testsvc.ID()
		m := hmac.New(sha256.New, k.resend)
		m.Write([]byte(id + "." + now + "."))
		m.Write(body)
		h.Set("svix-id", id)
		h.Set("svix-timestamp", now)
		h.Set("svix-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	case "mailersend":
		m := hmac.New(sha256.New, []byte(k.mailersend))
		m.Write(body)
		h.Set("Signature", hex.EncodeToString(m.Sum(nil)))
	case "brevo":
		h.Set("Authorization", "Bearer "+k.brevo)
	default:
		t.Fatalf("no signer for %s", esp)
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	r, err := http.NewRequest(http.MethodPost, base+"/webhooks/"+esp, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header = h
	return r
}

// mailgunSign puts a fresh signature object (timestamp, one-time token, MAC) in body.
func mailgunSign(t *testing.T, body []byte, key, stamp string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	token := testsvc.ID() + testsvc.ID() + testsvc.ID()
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(stamp + token))
	m["signature"], _ = json.Marshal(map[string]string{"timestamp": stamp, "token": token, "signature": hex.EncodeToString(mac.Sum(nil))})
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// snsServer is a loopback TLS server standing in for SNS's certificate host, and an
// HTTP client that reaches it for every address: the SES adapter keeps its production
// host check (sns.<region>.amazonaws.com) and nothing leaves the machine.
type snsServer struct {
	certURL string
	client  *http.Client
}

func newSNSServer(t *testing.T, key *rsa.PrivateKey) *snsServer {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.amazonaws.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/SimpleNotificationService-e2e.pem" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(certPEM)
	}))
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	addr := srv.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	tr.TLSClientConfig.ServerName = "example.com" // a name in httptest's certificate
	return &snsServer{
		certURL: "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-e2e.pem",
		client:  &http.Client{Transport: tr, Timeout: 5 * time.Second},
	}
}

// snsNotification wraps an SES payload into an SNS Notification signed (version 2)
// with key, naming certURL as its certificate.
func snsNotification(t *testing.T, key *rsa.PrivateKey, certURL string, sesJSON []byte) ([]byte, http.Header) {
	t.Helper()
	var compact bytes.Buffer
	if err := json.Compact(&compact, sesJSON); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{
		"Type": "Notification", "MessageId": fmt.Sprintf("%s-%s", testsvc.ID(), testsvc.ID()), "TopicArn": snsTopic,
		"Message": compact.String(), "Timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"SignatureVersion": "2", "SigningCertURL": certURL,
	}
	var s strings.Builder
	for _, k := range []string{"Message", "MessageId", "Timestamp", "TopicArn", "Type"} {
		s.WriteString(k + "\n" + m[k] + "\n")
	}
	d := sha256.Sum256([]byte(s.String()))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	m["Signature"] = base64.StdEncoding.EncodeToString(sig)
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("x-amz-sns-message-type", m["Type"])
	h.Set("x-amz-sns-message-id", m["MessageId"])
	return body, h
}

// sesIngest is the ingest handler with the SES adapter alone, served on loopback and
// publishing into the worker's stream, so the worker processes SES events like any
// other. The binary cannot be pointed at a test certificate host: the adapter accepts
// only sns.<region>.amazonaws.com, and the certificate is fetched through a client
// that reaches the local stand-in instead.
func sesIngest(t *testing.T, names events.Names, sns *snsServer) string {
	t.Helper()
	_, js := testsvc.JetStream(t)
	vars := map[string]string{"REBOUND_SES_TOPIC_ARNS": snsTopic}
	a, err := ses.New(ingest.Env{Getenv: func(k string) string { return vars[k] }, Now: time.Now, HTTPClient: sns.client, Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ingest.NewHandler(stream.NewPublisher(js, names, 5*time.Second), metrics.New(), zap.NewNop(), 1<<20, a).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func do(t *testing.T, r *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestESPEndToEnd posts a signed hard bounce and a signed sender-side refusal of every
// ESP to the running worker and checks, through its API, that the unknown recipient is
// suppressed and the refusal opens an incident without suppressing anyone. SES goes
// through an in-process ingest handler (see sesIngest) into the same stream.
func TestESPEndToEnd(t *testing.T) {
	t.Parallel()
	keys := newESPKeys(t)
	_, js := testsvc.JetStream(t)
	names := testsvc.Names(t, js)
	// Our names replace startWorker's (the last value of a variable wins), so the
	// in-process SES handler can publish into the worker's stream.
	env := append(keys.env(t),
		"REBOUND_STREAM="+names.Stream, "REBOUND_DEADLETTER_STREAM="+names.DeadStream,
		"REBOUND_CONSUMER="+names.Consumer, "REBOUND_SUBJECT_PREFIX="+names.SubjectPrefix)
	w := startWorker(t, env...)
	sns := newSNSServer(t, keys.sns)
	sesBase := sesIngest(t, names, sns)
	run := testsvc.ID()

	post := func(t *testing.T, esp string, body []byte) {
		t.Helper()
		var code int
		var resp string
		if esp == "ses" {
			b, h := snsNotification(t, keys.sns, sns.certURL, body)
			r, _ := http.NewRequest(http.MethodPost, sesBase+"/webhooks/ses", bytes.NewReader(b))
			r.Header = h
			code, resp = do(t, r)
		} else {
			code, resp = do(t, keys.signedRequest(t, w.base, esp, body))
		}
		if code != http.StatusOK || strings.Contains(resp, `"accepted":0`) {
			t.Fatalf("POST /webhooks/%s = %d %s, want 200 with the events accepted", esp, code, resp)
		}
	}

	// Hard bounces: each unknown recipient is suppressed, by its ESP's event.
	t.Run("hard bounces", func(t *testing.T) {
		for _, c := range espCases {
			t.Run(c.esp, func(t *testing.T) {
				t.Parallel()
				body, rcpts := espFixture(t, c.esp, c.hard, c.hardRcpts, run)
				post(t, c.esp, body)
				for _, rcpt := range rcpts {
					sup := w.awaitSuppression(t, rcpt, "")
					if id, _ := sup["event_id"].(string); !strings.HasPrefix(id, c.esp+":") || sup["expires_at"] != nil {
						t.Errorf("suppression of %s = %v, want permanent, from a %s event", rcpt, sup, c.esp)
					}
					if rcpt == rcpts[0] && sup["class"] != "recipient_unknown" {
						t.Errorf("suppression of %s: class %v, want recipient_unknown", rcpt, sup["class"])
					}
				}
			})
		}
	})

	// Sender-side refusals, one ESP at a time: an incident records the last ESP that
	// counted into it, so each is seen before the next is posted.
	t.Run("sender side", func(t *testing.T) {
		for _, c := range espCases {
			body, rcpts := espFixture(t, c.esp, c.block, []string{c.blockRcpt}, run)
			post(t, c.esp, body)
			eventually(t, "an open incident from "+c.esp, func() bool {
				_, body := w.get(t, "/v1/alerts")
				alerts, _ := body["alerts"].([]any)
				for _, a := range alerts {
					if a.(map[string]any)["esp"] == c.esp {
						return true
					}
				}
				return false
			})
			if code, body := w.get(t, "/v1/suppressions/"+rcpts[0]); code != http.StatusNotFound {
				t.Errorf("%s: sender-side refusal of %s: GET suppression = %d %v, want 404", c.esp, rcpts[0], code, body)
			}
		}
		_, body := w.get(t, "/v1/alerts")
		total := 0
		for _, a := range body["alerts"].([]any) {
			total += int(a.(map[string]any)["messages"].(float64))
		}
		if total != len(espCases) {
			t.Errorf("open incidents count %d events in all, want %d (one per ESP): %v", total, len(espCases), body["alerts"])
		}
	})

	// Unsubscribes the ESPs report: the recipient's opt-out from this sender. Without a
	// tenant the suppression is the default namespace's; SendGrid's events name theirs
	// (REBOUND_SENDGRID_TENANT_FROM=account), so its opt-out must hold for that tenant
	// and for no other.
	t.Run("unsubscribes", func(t *testing.T) {
		for _, c := range []struct {
			esp, fixture string
			rcpts        []string
		}{
			{"sendgrid", "unsubscribe.json", []string{"r.nakamura@example.org"}},
			{"mailgun", "unsubscribed.json", []string{"r.nakamura@example.org"}},
			{"sparkpost", "unsubscribe.json", []string{"r.nakamura@example.org", "s.okoye@example.net"}},
			{"mandrill", "unsub.json", []string{"dee@example.net"}},
			{"brevo", "unsubscribed.json", []string{"dee@example.net"}},
			{"mailersend", "unsubscribed.json", []string{"dee@example.net"}},
			{"ses", "subscription-unsubscribe-all.json", []string{"kai@example.org"}},
		} {
			t.Run(c.esp, func(t *testing.T) {
				t.Parallel()
				body, rcpts := espFixture(t, c.esp, c.fixture, c.rcpts, run)
				post(t, c.esp, body)
				for _, rcpt := range rcpts {
					tenant := ""
					if c.esp == "sendgrid" {
						tenant = "acme-us"
					}
					sup := w.awaitSuppression(t, rcpt, tenant)
					if c.esp == "sendgrid" {
						if code, body := w.get(t, "/v1/suppressions/"+rcpt+"?tenant=acme-eu"); code != http.StatusNotFound || sup["scope"] != "tenant" {
							t.Errorf("%s: scope %v; for another tenant %d %v, want the opt-out for acme-us only", rcpt, sup["scope"], code, body)
						}
					}
					if sup["class"] != "recipient_opted_out" {
						t.Errorf("suppression of %s: class %v, want recipient_opted_out", rcpt, sup["class"])
					}
				}
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		other := newESPKeys(t)
		body, _ := espFixture(t, "sendgrid", "bounce-hard.json", []string{"lena.hart@example.net"}, run+"x")
		forged := []struct {
			name string
			req  *http.Request
		}{
			{"sendgrid signed with another key", other.signedRequest(t, w.base, "sendgrid", body)},
			{"mailgun signed with another key", other.signedRequest(t, w.base, "mailgun", mustFixture(t, "mailgun", "failed-permanent.json"))},
			{"mailersend signed with another secret", other.signedRequest(t, w.base, "mailersend", mustFixture(t, "mailersend", "hard-bounce.json"))},
			{"brevo with a wrong token", other.signedRequest(t, w.base, "brevo", mustFixture(t, "brevo", "hard-bounce.json"))},
			{"ses with a certificate off the SNS hosts", func() *http.Request {
				b, h := snsNotification(t, keys.sns, "https://127.0.0.1:1/SimpleNotificationService-e2e.pem", mustFixture(t, "ses", "bounce-hard.json"))
				r, _ := http.NewRequest(http.MethodPost, w.base+"/webhooks/ses", bytes.NewReader(b))
				r.Header = h
				return r
			}()},
		}
		for _, f := range forged {
			code, resp := do(t, f.req)
			if code != http.StatusUnauthorized || strings.TrimSpace(resp) != `{"error":"unauthorized"}` {
				t.Errorf("%s: %d %s, want 401 without detail", f.name, code, resp)
			}
		}
		r, _ := http.NewRequest(http.MethodHead, w.base+"/webhooks/mandrill", nil)
		if code, _ := do(t, r); code != http.StatusOK {
			t.Errorf("HEAD /webhooks/mandrill = %d, want 200 (Mandrill's probe)", code)
		}
	})
}

// awaitSuppression waits until the worker's API shows the address suppressed for the
// tenant ("" the default one) and returns the record.
func (w *worker) awaitSuppression(t *testing.T, addr, tenant string) map[string]any {
	t.Helper()
	path := "/v1/suppressions/" + addr
	if tenant != "" {
		path += "?tenant=" + tenant
	}
	var sup map[string]any
	eventually(t, addr+" to be suppressed", func() bool {
		code, body := w.get(t, path)
		sup = body
		return code == http.StatusOK
	})
	return sup
}

func mustFixture(t *testing.T, esp, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "internal", "ingest", esp, "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
