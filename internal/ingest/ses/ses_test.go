package ses

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/ingest/ingesttest"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/stream"
)

const (
	topic      = "arn:aws:sns:eu-west-1:111122223333:ses-events"
	otherTopic = "arn:aws:sns:eu-west-1:999988887777:someone-else"
)

var now = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

// signer is an RSA key and its self-signed certificate, made once per test binary.
type signer struct {
	key     *rsa.PrivateKey
	certPEM []byte
}

var testSigner = sync.OnceValue(func() signer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.test.amazonaws.com"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return signer{key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
})

// bundle is one test's adapter and the local TLS server standing in for SNS.
type bundle struct {
	a         *Adapter
	srv       *httptest.Server
	certURL   string
	certHits  atomic.Int32
	confirms  atomic.Int32
	otherHits atomic.Int32
	redirects atomic.Int32
}

// setup starts a TLS server that serves the certificate and the subscribe URL, and an
// adapter that trusts it and may fetch from it. extra overrides the variables.
func setup(t testing.TB, extra map[string]string) *bundle {
	t.Helper()
	b := &bundle{}
	b.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/SimpleNotificationService-test.pem":
			b.certHits.Add(1)
			w.Write(testSigner().certPEM)
		case "/confirm":
			b.confirms.Add(1)
			w.Write([]byte("<ConfirmSubscriptionResponse/>"))
		case "/moved.pem", "/moved-confirm":
			// Where a redirect points is never fetched: the hop is not re-checked.
			b.redirects.Add(1)
			target := "/SimpleNotificationService-test.pem"
			if r.URL.Path == "/moved-confirm" {
				target = "/confirm"
			}
			http.Redirect(w, r, target, http.StatusFound)
		default:
			b.otherHits.Add(1)
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(b.srv.Close)
	b.certURL = b.srv.URL + "/SimpleNotificationService-test.pem"
	vars := ingesttest.With(map[string]string{"REBOUND_SES_TOPIC_ARNS": topic + ", arn:aws:sns:us-east-1:111122223333:ses-other", "REBOUND_SES_TENANT_FROM": "tag:tenant"}, extra)
	env := ingesttest.EnvAt(vars, now)
	env.HTTPClient = b.srv.Client()
	b.a = ingesttest.New[*Adapter](t, New, env)
	host := strings.TrimPrefix(b.srv.URL, "https://")
	b.a.hostOK = func(h string) bool { return h == host || snsHost.MatchString(h) }
	return b
}

// message is an SNS message under construction; sign fills Signature.
type message map[string]string

// sign computes the SNS signature the way AWS documents it, independently of the
// adapter: "Key\nvalue\n" for the message type's keys, in order, when present.
func (m message) sign(t testing.TB, version string) message {
	t.Helper()
	keys := []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	if m["Type"] != "Notification" {
		keys = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	}
	var s strings.Builder
	for _, k := range keys {
		if v, ok := m[k]; ok {
			s.WriteString(k + "\n" + v + "\n")
		}
	}
	var sig []byte
	var err error
	if version == "1" {
		d := sha1.Sum([]byte(s.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, testSigner().key, crypto.SHA1, d[:])
	} else {
		d := sha256.Sum256([]byte(s.String()))
		sig, err = rsa.SignPKCS1v15(rand.Reader, testSigner().key, crypto.SHA256, d[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	m["SignatureVersion"] = version
	m["Signature"] = base64.StdEncoding.EncodeToString(sig)
	return m
}

func (m message) body(t testing.TB) []byte {
	b, err := json.Marshal(map[string]string(m))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// notification wraps an SES payload (a fixture) into an SNS Notification.
func (b *bundle) notification(t testing.TB, sesJSON []byte) message {
	var buf bytes.Buffer
	if len(sesJSON) > 0 && json.Compact(&buf, sesJSON) == nil {
		sesJSON = buf.Bytes()
	}
	return message{
		"Type": "Notification", "MessageId": "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab", "TopicArn": topic,
		"Message": string(sesJSON), "Timestamp": now.Add(-time.Second).Format("2006-01-02T15:04:05.000Z"),
		"SigningCertURL": b.certURL, "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
	}
}

func (b *bundle) confirmation(topicARN, subscribeURL string) message {
	return message{
		"Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", "TopicArn": topicARN,
		"Token":        "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736",
		"Message":      "You have chosen to subscribe to the topic " + topicARN + ".\nTo confirm the subscription, visit the SubscribeURL included in this message.",
		"SubscribeURL": subscribeURL, "Timestamp": now.Format(time.RFC3339), "SigningCertURL": b.certURL,
	}
}

func request(body []byte, m message) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/ses", bytes.NewReader(body))
	r.Header.Set("Content-Type", "text/plain; charset=UTF-8")
	r.Header.Set("x-amz-sns-message-type", m["Type"])
	r.Header.Set("x-amz-sns-message-id", m["MessageId"])
	return r
}

func TestParse(t *testing.T) {
	t.Parallel()
	const snsID = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"
	tests := []struct {
		file    string
		want    []events.Event
		actions []policy.Action
		ignored int
		rejects int
		err     bool
	}{
		{file: "bounce-hard.json", actions: []policy.Action{policy.ActionSuppress, policy.ActionSuppress}, want: []events.Event{{
			ID: "ses:0102019a1b2c3d4e-5f6a7b8c-1111-2222-3333-444455556666-000000:ana@example.net", ESP: "ses", Type: events.TypeBounce,
			OccurredAt: ingesttest.At("2026-03-04T09:15:00.250Z"), Recipient: "ana@example.net", Sender: "no-reply@mail.shop.example",
			SendingDomain: "mail.shop.example", Tenant: "t42", MTA: "198.51.100.25", MessageID: "0102019a1b2c3d4e-aaaa-bbbb-cccc-000000",
			Reply:      events.Reply{Code: 550, Enhanced: "5.1.1", Text: "<ana@example.net>: Recipient address rejected: User unknown in local recipient table"},
			ESPVerdict: map[string]string{"eventType": "Bounce", "bounceType": "Permanent", "bounceSubType": "General", "status": "5.1.1", "action": "failed"},
		}, {
			ID: "ses:0102019a1b2c3d4e-5f6a7b8c-1111-2222-3333-444455556666-000000:ben@example.net", ESP: "ses", Type: events.TypeBounce,
			OccurredAt: ingesttest.At("2026-03-04T09:15:00.250Z"), Recipient: "ben@example.net", Sender: "no-reply@mail.shop.example",
			SendingDomain: "mail.shop.example", Tenant: "t42", MTA: "198.51.100.25", MessageID: "0102019a1b2c3d4e-aaaa-bbbb-cccc-000000",
			Reply:      events.Reply{Text: "synthetic (SES bounce Permanent/General, no reply from the remote server): 550 5.1.1 permanent failure"},
			ESPVerdict: map[string]string{"eventType": "Bounce", "bounceType": "Permanent", "bounceSubType": "General", "status": "5.1.1", "action": "failed"},
		}}},
		{file: "bounce-soft.json", actions: []policy.Action{policy.ActionSoft}, want: []events.Event{{
			ID: "ses:0102019a1b2c3d4e-soft-000000:cy@example.org", ESP: "ses", Type: events.TypeBounce,
			OccurredAt: ingesttest.At("2026-03-04T10:00:00Z"), Recipient: "cy@example.org", Sender: "no-reply@mail.shop.example",
			SendingDomain: "mail.shop.example", MTA: "mx2.example.org", MessageID: "0102019a1b2c3d4e-soft-msg",
			Reply:      events.Reply{Code: 552, Enhanced: "5.2.2", Text: "Mailbox full"},
			ESPVerdict: map[string]string{"eventType": "Bounce", "bounceType": "Transient", "bounceSubType": "MailboxFull", "status": "5.2.2", "action": "failed"},
		}}},
		{file: "bounce-block.json", actions: []policy.Action{policy.ActionAlert}, want: []events.Event{{
			ID: "ses:0102019a1b2c3d4e-block-000000:dee@example.com", ESP: "ses", Type: events.TypeBounce,
			OccurredAt: ingesttest.At("2026-03-04T10:10:00Z"), Recipient: "dee@example.com", Sender: "no-reply@mail.shop.example",
			SendingDomain: "mail.shop.example", MTA: "192.0.2.60", MessageID: "0102019a1b2c3d4e-block-msg",
			Reply:      events.Reply{Code: 554, Enhanced: "5.7.1", Text: "Service unavailable; Client host [54.240.4.1] blocked using zen.spamhaus.org"},
			ESPVerdict: map[string]string{"eventType": "Bounce", "bounceType": "Permanent", "bounceSubType": "General", "status": "5.7.1", "action": "failed"},
		}}},
		{file: "bounce-suppressed.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: "ses:0102019a1b2c3d4e-supp-000000:gone@example.com", ESP: "ses", Type: events.TypeBounce, ProviderSuppressed: true,
			OccurredAt: ingesttest.At("2026-03-04T10:20:00Z"), Recipient: "gone@example.com", Sender: "no-reply@mail.shop.example",
			SendingDomain: "mail.shop.example", MessageID: "0102019a1b2c3d4e-supp-msg",
			Reply:      events.Reply{Enhanced: "5.1.1", Text: "Amazon SES did not send the message to this address because it is on the suppression list for your account."},
			ESPVerdict: map[string]string{"eventType": "Bounce", "bounceType": "Permanent", "bounceSubType": "OnAccountSuppressionList", "status": "5.1.1", "action": "failed"},
		}}},
		{file: "delay-ipfailure.json", actions: []policy.Action{policy.ActionAlert}, want: []events.Event{{
			ID: "ses:" + snsID + ":eve@example.org", ESP: "ses", Type: events.TypeDeferral,
			OccurredAt: ingesttest.At("2026-03-04T10:30:00Z"), Recipient: "eve@example.org", Sender: "no-reply@mail.shop.example",
			SendingDomain: "mail.shop.example", MessageID: "0102019a1b2c3d4e-delay-msg",
			Reply:      events.Reply{Text: delaySynthetic("IPFailure")},
			ESPVerdict: map[string]string{"eventType": "DeliveryDelay", "delayType": "IPFailure"},
		}}},
		{file: "delay-mailboxfull.json", actions: []policy.Action{policy.ActionNone}, want: []events.Event{{
			ID: "ses:" + snsID + ":fay@example.org", ESP: "ses", Type: events.TypeDeferral,
			OccurredAt: ingesttest.At("2026-03-04T10:35:00Z"), Recipient: "fay@example.org", Sender: "no-reply@mail.shop.example",
			SendingDomain: "mail.shop.example", MessageID: "0102019a1b2c3d4e-delay2-msg",
			Reply:      events.Reply{Code: 452, Enhanced: "4.2.2", Text: "The email account that you tried to reach is over quota."},
			ESPVerdict: map[string]string{"eventType": "DeliveryDelay", "delayType": "MailboxFull", "status": "4.2.2"},
		}}},
		{file: "complaint.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: "ses:0102019a1b2c3d4e-cmpl-000000:gus@example.com", ESP: "ses", Type: events.TypeComplaint,
			OccurredAt: ingesttest.At("2026-03-04T11:00:05Z"), Recipient: "gus@example.com", Sender: "news@mail.shop.example",
			SendingDomain: "mail.shop.example", MessageID: "0102019a1b2c3d4e-cmpl-msg",
			ESPVerdict: map[string]string{"eventType": "Complaint", "complaintFeedbackType": "abuse"},
		}}},
		{file: "delivery.json", actions: []policy.Action{policy.ActionReset}, want: []events.Event{{
			ID: "ses:" + snsID + ":hal@example.net", ESP: "ses", Type: events.TypeDelivered,
			OccurredAt: ingesttest.At("2026-03-04T11:10:00Z"), Recipient: "hal@example.net", Sender: "no-reply@mail.shop.example",
			SendingDomain: "mail.shop.example", MTA: "142.250.27.26", MessageID: "0102019a1b2c3d4e-dlv-msg",
			Reply:      events.Reply{Text: "250 2.0.0 OK 1772622600 x12si345 - gsmtp"},
			ESPVerdict: map[string]string{"eventType": "Delivery"},
		}}},
		{file: "reject.json", actions: []policy.Action{policy.ActionNone}, want: []events.Event{{
			ID: "ses:" + snsID + ":ivy@example.net", ESP: "ses", Type: events.TypeDropped,
			OccurredAt: now.Add(-time.Second), Recipient: "ivy@example.net", Sender: "no-reply@mail.shop.example",
			SendingDomain: "mail.shop.example", MessageID: "0102019a1b2c3d4e-rej-msg",
			Reply:      events.Reply{Text: "synthetic (SES Reject, the ESP did not send): 554 5.6.0 message content rejected"},
			ESPVerdict: map[string]string{"eventType": "Reject", "reason": "Bad content"},
		}}},
		{file: "subscription-unsubscribe-all.json", actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: "ses:" + snsID + ":kai@example.org", ESP: "ses", Type: events.TypeDropped, ProviderSuppressed: true,
			OccurredAt: ingesttest.At("2026-03-04T11:55:00Z"), Recipient: "kai@example.org", Sender: "news@mail.shop.example",
			SendingDomain: "mail.shop.example", Tenant: "t42", MessageID: "0102019a1b2c3d4e-sub-msg",
			Reply:      events.Reply{Text: "synthetic (SES Subscription unsubscribeAll, not sent): " + ingest.OptOutUnsubscribed},
			ESPVerdict: map[string]string{"eventType": "Subscription", "contactList": "Newsletter", "source": "UnsubscribeHeader"},
		}}},
		// One topic only: Rebound's list has no topics.
		{file: "subscription-topic.json", ignored: 1},
		{file: "open.json", ignored: 1},
		{file: "bad-recipient.json", rejects: 1, actions: []policy.Action{policy.ActionSuppress}, want: []events.Event{{
			ID: "ses:0102019a1b2c3d4e-bad-000000:jo@example.com", ESP: "ses", Type: events.TypeBounce,
			OccurredAt: ingesttest.At("2026-03-04T11:40:00Z"), Recipient: "jo@example.com", Sender: "no-reply@mail.shop.example",
			SendingDomain: "mail.shop.example", MessageID: "0102019a1b2c3d4e-bad-msg",
			Reply:      events.Reply{Text: "synthetic (SES bounce Permanent/NoEmail, no reply from the remote server): 550 5.1.1 mailbox does not exist"},
			ESPVerdict: map[string]string{"eventType": "Bounce", "bounceType": "Permanent", "bounceSubType": "NoEmail", "status": "5.1.1"},
		}}},
		{file: "truncated.json", err: true},
	}
	b := setup(t, nil)
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			m := b.notification(t, ingesttest.Fixture(t, tt.file)).sign(t, "2")
			body := m.body(t)
			if err := b.a.Authenticate(request(body, m), body); err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			got, err := b.a.Parse(body)
			ingesttest.AssertBatch(t, got, err, ingesttest.Want{Events: tt.want, Actions: tt.actions, Ignored: tt.ignored, Rejects: tt.rejects, Unreadable: tt.err})
		})
	}
}

// TestUnsubscribeAllIsForTheTenant: leaving the whole contact list is the recipient's
// opt-out from this sender, suppressed for the tenant only.
func TestUnsubscribeAllIsForTheTenant(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	got, err := b.a.Parse(b.notification(t, ingesttest.Fixture(t, "subscription-unsubscribe-all.json")).sign(t, "2").body(t))
	ingesttest.AssertOptOuts(t, got, err, 1)
}

func TestParseNonEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	validation := b.notification(t, nil)
	validation["Message"] = "Successfully validated SNS topic for Amazon SES event publishing."
	for name, body := range map[string][]byte{
		"topic validation notice": validation.body(t),
		"subscription":            b.confirmation(topic, "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription").body(t),
	} {
		got, err := b.a.Parse(body)
		if err != nil || got.Ignored != 1 || len(got.Events)+len(got.Rejects) != 0 {
			t.Errorf("%s: Parse = %+v, %v; want one ignored", name, got, err)
		}
	}
	if _, err := b.a.Parse([]byte(`{"Type":"Notification","Message":`)); err == nil || errors.Is(err, ingest.ErrBadRequest) {
		t.Errorf("truncated envelope: Parse error = %v, want a dead-letter error", err)
	}
	if _, err := b.a.Parse(make([]byte, maxBody+1)); err == nil || errors.Is(err, ingest.ErrBadRequest) {
		t.Errorf("oversized: Parse error = %v, want a dead-letter error", err)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	body := ingesttest.Fixture(t, "bounce-hard.json")
	tests := []struct {
		name      string
		vars      map[string]string
		prod      bool // keep the production host check
		build     func(b *bundle) message
		tamper    func(m message)
		auth      string // Authorization header
		ok        bool
		certFetch bool // whether the certificate may have been fetched
	}{
		{name: "v1 SHA1withRSA", ok: true, certFetch: true, build: func(b *bundle) message { return b.notification(t, body).sign(t, "1") }},
		{name: "v2 SHA256withRSA", ok: true, certFetch: true, build: func(b *bundle) message { return b.notification(t, body).sign(t, "2") }},
		{name: "with Subject", ok: true, certFetch: true, build: func(b *bundle) message {
			m := b.notification(t, body)
			m["Subject"] = "Amazon SES Email Event Notification"
			return m.sign(t, "2")
		}},
		{name: "Subject added after signing", certFetch: true, build: func(b *bundle) message { return b.notification(t, body).sign(t, "2") },
			tamper: func(m message) { m["Subject"] = "x" }},
		{name: "message changed after signing", certFetch: true, build: func(b *bundle) message { return b.notification(t, body).sign(t, "2") },
			tamper: func(m message) { m["Message"] = strings.Replace(m["Message"], "ana@", "eve@", 1) }},
		{name: "v1 signature claimed as v2", certFetch: true, build: func(b *bundle) message { return b.notification(t, body).sign(t, "1") },
			tamper: func(m message) { m["SignatureVersion"] = "2" }},
		{name: "signature version 3", build: func(b *bundle) message { return b.notification(t, body).sign(t, "2") },
			tamper: func(m message) { m["SignatureVersion"] = "3" }},
		{name: "topic not allowed", build: func(b *bundle) message {
			m := b.notification(t, body)
			m["TopicArn"] = otherTopic
			return m.sign(t, "2")
		}},
		{name: "cert URL on a foreign host", prod: true, build: func(b *bundle) message { return b.notification(t, body).sign(t, "2") }},
		{name: "cert URL on S3", build: func(b *bundle) message {
			m := b.notification(t, body)
			m["SigningCertURL"] = "https://s3.amazonaws.com/bucket/SimpleNotificationService-x.pem"
			return m.sign(t, "2")
		}},
		{name: "cert URL look-alike host", build: func(b *bundle) message {
			m := b.notification(t, body)
			m["SigningCertURL"] = "https://sns.eu-west-1.amazonaws.com.evil.example/SimpleNotificationService-x.pem"
			return m.sign(t, "2")
		}},
		{name: "cert URL over http", build: func(b *bundle) message {
			m := b.notification(t, body)
			m["SigningCertURL"] = strings.Replace(b.certURL, "https://", "http://", 1)
			return m.sign(t, "2")
		}},
		{name: "cert URL not a .pem", build: func(b *bundle) message {
			m := b.notification(t, body)
			m["SigningCertURL"] = b.srv.URL + "/cert.txt"
			return m.sign(t, "2")
		}},
		{name: "expired timestamp", build: func(b *bundle) message {
			m := b.notification(t, body)
			m["Timestamp"] = now.Add(-2 * time.Hour).Format(time.RFC3339)
			return m.sign(t, "2")
		}},
		{name: "header type differs from body", build: func(b *bundle) message { return b.notification(t, body).sign(t, "2") },
			tamper: func(m message) { m["hdr-type"] = "SubscriptionConfirmation" }},
		{name: "opt-out still checks configured basic auth", vars: map[string]string{"REBOUND_SES_TOPIC_ARNS": "", "REBOUND_SES_INSECURE_SKIP_VERIFY": "true", "REBOUND_SES_BASIC_AUTH": "sns:pa55"},
			build: func(b *bundle) message { return message{"Type": "Notification"} }},
		{name: "opt-out with basic auth given", vars: map[string]string{"REBOUND_SES_TOPIC_ARNS": "", "REBOUND_SES_INSECURE_SKIP_VERIFY": "true", "REBOUND_SES_BASIC_AUTH": "sns:pa55"},
			auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("sns:pa55")), ok: true,
			build: func(b *bundle) message { return message{"Type": "Notification"} }},
		{name: "basic auth missing", vars: map[string]string{"REBOUND_SES_BASIC_AUTH": "sns:pa55"}, build: func(b *bundle) message { return b.notification(t, body).sign(t, "2") }},
		{name: "basic auth given", vars: map[string]string{"REBOUND_SES_BASIC_AUTH": "sns:pa55"}, auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("sns:pa55")),
			ok: true, certFetch: true, build: func(b *bundle) message { return b.notification(t, body).sign(t, "2") }},
	}
	ingesttest.VerifyRule(t, New, "REBOUND_SES_TOPIC_ARNS", map[string]string{"REBOUND_SES_TOPIC_ARNS": topic},
		func(testing.TB) (*http.Request, []byte) {
			return request([]byte("{}"), message{"Type": "Notification"}), []byte("{}")
		})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tt.vars)
			if tt.prod {
				b.a.hostOK = snsHost.MatchString
			}
			m := tt.build(b)
			if tt.tamper != nil {
				tt.tamper(m)
			}
			hdrType := m["hdr-type"]
			delete(m, "hdr-type")
			raw := m.body(t)
			r := request(raw, m)
			if hdrType != "" {
				r.Header.Set("x-amz-sns-message-type", hdrType)
			}
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			err := b.a.Authenticate(r, raw)
			ingesttest.AssertAuth(t, err, tt.ok)
			if !tt.certFetch && b.certHits.Load()+b.otherHits.Load() != 0 {
				t.Errorf("the server saw %d certificate and %d other requests, want none", b.certHits.Load(), b.otherHits.Load())
			}
			if b.confirms.Load() != 0 {
				t.Error("a notification confirmed a subscription")
			}
		})
	}
}

func TestCertificateCache(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for i := range 3 {
		m := b.notification(t, ingesttest.Fixture(t, "complaint.json")).sign(t, []string{"1", "2"}[i%2])
		raw := m.body(t)
		if err := b.a.Authenticate(request(raw, m), raw); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.certHits.Load(); n != 1 {
		t.Errorf("certificate fetched %d times, want once", n)
	}
}

func TestSubscriptionConfirmation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		topic   string
		url     func(b *bundle) string
		ok      bool
		confirm int32
	}{
		{name: "allow-listed topic", topic: topic, url: func(b *bundle) string { return b.srv.URL + "/confirm?Action=ConfirmSubscription" }, ok: true, confirm: 1},
		{name: "topic not allowed", topic: otherTopic, url: func(b *bundle) string { return b.srv.URL + "/confirm" }},
		{name: "SubscribeURL on a foreign host", topic: topic, url: func(b *bundle) string {
			u, _ := url.Parse(b.srv.URL)
			return "https://localhost:" + u.Port() + "/confirm"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			m := b.confirmation(tt.topic, tt.url(b)).sign(t, "1")
			raw := m.body(t)
			err := b.a.Authenticate(request(raw, m), raw)
			if (err == nil) != tt.ok {
				t.Fatalf("Authenticate = %v, want ok=%v", err, tt.ok)
			}
			if got := b.confirms.Load(); got != tt.confirm {
				t.Errorf("SubscribeURL visited %d times, want %d", got, tt.confirm)
			}
			if tt.topic == otherTopic && b.certHits.Load() != 0 {
				t.Error("certificate fetched for a topic that is not allowed")
			}
		})
	}
}

func TestTenantFrom(t *testing.T) {
	t.Parallel()
	for tf, want := range map[string]string{
		"tag:tenant":        "t42",
		"configuration_set": "prod-t42",
		"topic:" + topic + "=acme;arn:aws:sns:us-east-1:111122223333:ses-other=other": "acme",
	} {
		b := setup(t, map[string]string{"REBOUND_SES_TENANT_FROM": tf})
		got, err := b.a.Parse(b.notification(t, ingesttest.Fixture(t, "bounce-hard.json")).body(t))
		if err != nil || len(got.Events) != 2 || got.Events[0].Tenant != want {
			t.Errorf("TENANT_FROM=%s: %+v %v, want tenant %q", tf, got.Events, err, want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	for name, vars := range map[string]map[string]string{
		"REBOUND_SES_TOPIC_ARNS":  {"REBOUND_SES_TOPIC_ARNS": "arn:aws:s3:::bucket"},
		"REBOUND_SES_BASIC_AUTH":  {"REBOUND_SES_TOPIC_ARNS": topic, "REBOUND_SES_BASIC_AUTH": "no-colon"},
		"REBOUND_SES_TENANT_FROM": {"REBOUND_SES_TOPIC_ARNS": topic, "REBOUND_SES_TENANT_FROM": "topic:not-an-arn=x"},
	} {
		_, err := New(ingesttest.Env(vars))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("New error = %v, want one naming %s", err, name)
		}
	}
}

func TestProductionHostPattern(t *testing.T) {
	t.Parallel()
	for host, ok := range map[string]bool{
		"sns.eu-west-1.amazonaws.com": true, "sns.cn-north-1.amazonaws.com.cn": true, "sns.us-gov-west-1.amazonaws.com": true,
		"s3.amazonaws.com": false, "sns.eu-west-1.amazonaws.com.evil.example": false, "evil.example/sns.eu-west-1.amazonaws.com": false,
		"sns.eu-west-1.amazonaws.com:8443": false, "SNS.eu-west-1.amazonaws.com": false, "": false,
	} {
		if snsHost.MatchString(host) != ok {
			t.Errorf("host %q allowed = %v, want %v", host, !ok, ok)
		}
	}
}

func TestSyntheticReplies(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		typ, sub, status string
		want             policy.Action
	}{
		{"Permanent", "General", "", policy.ActionSuppress},
		{"Permanent", "General", "5.0.0", policy.ActionSuppress},
		{"Permanent", "General", "5.7.1", policy.ActionAlert},
		{"Permanent", "NoEmail", "", policy.ActionSuppress},
		{"Permanent", "Suppressed", "", policy.ActionSuppress},
		{"Permanent", "OnAccountSuppressionList", "", policy.ActionSuppress},
		{"Transient", "MailboxFull", "", policy.ActionSoft},
		{"Transient", "MessageTooLarge", "", policy.ActionNone},
		{"Transient", "ContentRejected", "", policy.ActionNone},
		{"Transient", "AttachmentRejected", "", policy.ActionNone},
		{"Transient", "General", "", policy.ActionNone},
		{"Undetermined", "Undetermined", "", policy.ActionNone},
	} {
		ev := events.Event{Type: events.TypeBounce, Reply: events.Reply{Text: bounceSynthetic(c.typ, c.sub, c.status)}}
		if got := ingesttest.Decide(t, &ev); got != c.want {
			t.Errorf("bounce %s/%s %s: %q → %q, want %q", c.typ, c.sub, c.status, ev.Reply.Text, got, c.want)
		}
	}
	// Deferrals never suppress; the sender-side ones must reach on-call.
	for delay, want := range map[string]policy.Action{
		"IPFailure": policy.ActionAlert, "BYOIPHostNameLookupUnavailable": policy.ActionAlert,
		"InternalFailure": policy.ActionNone, "General": policy.ActionNone, "MailboxFull": policy.ActionNone, "SpamDetected": policy.ActionNone,
		"RecipientServerError": policy.ActionNone, "TransientCommunicationFailure": policy.ActionNone, "Undetermined": policy.ActionNone,
	} {
		ev := events.Event{Type: events.TypeDeferral, Reply: events.Reply{Text: delaySynthetic(delay)}}
		if got := ingesttest.Decide(t, &ev); got != want {
			t.Errorf("delay %s: %q → %q, want %q", delay, ev.Reply.Text, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	b := setup(f, nil)
	var seeds [][]byte
	for _, name := range []string{"bounce-hard.json", "complaint.json", "delay-ipfailure.json", "delivery.json", "reject.json", "truncated.json"} {
		seeds = append(seeds, b.notification(f, ingesttest.Fixture(f, name)).body(f))
	}
	ingesttest.FuzzParse(f, b.a, seeds...)
}

func BenchmarkIngest(bm *testing.B) {
	b := setup(bm, nil)
	m := b.notification(bm, ingesttest.Fixture(bm, "bounce-hard.json")).sign(bm, "2")
	raw := m.body(bm)
	r := request(raw, m)
	if err := b.a.Authenticate(r, raw); err != nil { // warms the certificate cache
		bm.Fatal(err)
	}
	ingesttest.BenchIngest(bm, b.a, r, raw, 2)
}

// TestConfirmationFailureRedacted: a SubscribeURL carries the subscription's token, so
// a failed confirmation is logged with the topic ARN and the host, never the URL.
func TestConfirmationFailureRedacted(t *testing.T) {
	t.Parallel()
	const secretToken = "2336412f37fb687f5d51e6e2-confirmation-token"
	for name, path := range map[string]string{"status 404": "/not-there", "redirect": "/moved-confirm"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			core, logs := observer.New(zap.DebugLevel)
			mux := http.NewServeMux()
			ingest.NewHandler(nopPublisher{}, metrics.New(), zap.New(core), 1<<20, b.a).Register(mux)
			m := b.confirmation(topic, b.srv.URL+path+"?Action=ConfirmSubscription&TopicArn="+url.QueryEscape(topic)+"&Token="+secretToken).sign(t, "2")
			raw := m.body(t)
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, request(raw, m))
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", w.Code)
			}
			if b.confirms.Load() != 0 {
				t.Fatal("the subscription was confirmed through a redirect")
			}
			entries := logs.FilterMessage("webhook authentication failed").All()
			if len(entries) != 1 {
				t.Fatalf("logged %d authentication failures, want 1", len(entries))
			}
			line := fmt.Sprint(entries[0].ContextMap())
			host := strings.TrimPrefix(b.srv.URL, "https://")
			if strings.Contains(line, secretToken) || strings.Contains(line, path) || !strings.Contains(line, topic) || !strings.Contains(line, host) {
				t.Errorf("log line %s: want the topic ARN and host %s, without the SubscribeURL's path or token", line, host)
			}
		})
	}
}

// TestCertificateRedirectRefused: a redirect from an allowed host is not followed, so
// it cannot lead the fetch to a host the allow-list refuses.
func TestCertificateRedirectRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	m := b.notification(t, ingesttest.Fixture(t, "bounce-hard.json"))
	m["SigningCertURL"] = b.srv.URL + "/moved.pem"
	m.sign(t, "2")
	raw := m.body(t)
	err := b.a.Authenticate(request(raw, m), raw)
	ingesttest.AssertAuth(t, err, false)
	if !strings.Contains(err.Error(), "redirect refused") {
		t.Errorf("error %v does not say the redirect was refused", err)
	}
	if b.redirects.Load() != 1 || b.certHits.Load() != 0 {
		t.Errorf("redirect served %d times, its target %d times; want 1 and 0", b.redirects.Load(), b.certHits.Load())
	}
}

// TestCertificateFailureCached: copies of a forged message that names an allow-listed
// topic and a certificate URL that fails cost one fetch per certRetry, concurrent or not.
func TestCertificateFailureCached(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	var mu sync.Mutex
	clock := now
	b.a.certs.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	m := b.notification(t, ingesttest.Fixture(t, "bounce-hard.json"))
	m["SigningCertURL"] = b.srv.URL + "/SimpleNotificationService-forged.pem"
	m.sign(t, "2")
	raw := m.body(t)
	attempt := func() {
		if err := b.a.Authenticate(request(raw, m), raw); err == nil {
			t.Error("a message with an unreachable certificate was accepted")
		}
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(attempt)
	}
	wg.Wait()
	attempt()
	if n := b.otherHits.Load(); n != 1 {
		t.Fatalf("certificate URL fetched %d times, want once", n)
	}
	mu.Lock()
	clock = clock.Add(certRetry + time.Second)
	mu.Unlock()
	attempt()
	if n := b.otherHits.Load(); n != 2 {
		t.Fatalf("after %s the URL was fetched %d times in all, want twice", certRetry, n)
	}
	// The genuine certificate is unaffected, and cached once fetched.
	good := b.notification(t, ingesttest.Fixture(t, "bounce-hard.json")).sign(t, "2")
	graw := good.body(t)
	for range 2 {
		if err := b.a.Authenticate(request(graw, good), graw); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.certHits.Load(); n != 1 {
		t.Errorf("genuine certificate fetched %d times, want once", n)
	}
}

// TestHeadersBeforeBody: configured basic auth is checked before the body is read.
func TestHeadersBeforeBody(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string]string{"REBOUND_SES_BASIC_AUTH": "sns:pa55"})
	r := request(nil, message{"Type": "Notification"})
	ingesttest.AssertAuth(t, b.a.AuthenticateHeaders(r), false, "pa55")
	r.Header.Set("Authorization", ingesttest.Basic("sns:pa55"))
	ingesttest.AssertAuth(t, b.a.AuthenticateHeaders(r), true)
	if b.a.Challenge() == "" {
		t.Error("no WWW-Authenticate challenge with basic auth configured")
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, []events.Event) error       { return nil }
func (nopPublisher) DeadLetter(context.Context, stream.DeadLetter) error { return nil }

// failingTransport answers every request with an error, so fuzzing never leaves the
// machine whatever URL passes the checks.
type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in fuzzing")
}

// FuzzEnvelope fuzzes what runs on an SNS request before its signature is verified:
// the envelope, the header cross-checks, the topic, the timestamp and the certificate
// URL, with the production host pattern and no network.
func FuzzEnvelope(f *testing.F) {
	b := setup(f, nil)
	for _, name := range []string{"bounce-hard.json", "complaint.json"} {
		m := b.notification(f, ingesttest.Fixture(f, name)).sign(f, "2")
		f.Add(m.body(f), "Notification")
	}
	f.Add(b.confirmation(topic, "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=x").sign(f, "1").body(f), "SubscriptionConfirmation")
	f.Add([]byte(`{"Type":"Notification","TopicArn":"`+topic+`","SignatureVersion":"2","Timestamp":"2026-03-04T12:00:00Z","Signature":"AAAA","SigningCertURL":"https://sns.eu-west-1.amazonaws.com/x.pem"}`), "")
	f.Add([]byte(`{"Type":"SubscriptionConfirmation","TopicArn":"`+topic+`"}`), "SubscriptionConfirmation")
	f.Add([]byte(`{"SubscribeURL":null,"Token":null,"Subject":null}`), "")
	f.Add([]byte(`[]`), "")
	a := ingesttest.New[*Adapter](f, New, ingesttest.EnvAt(map[string]string{"REBOUND_SES_TOPIC_ARNS": topic}, now))
	a.client = &http.Client{Transport: failingTransport{}, CheckRedirect: a.client.CheckRedirect}
	f.Fuzz(func(t *testing.T, body []byte, msgType string) {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/ses", nil)
		r.Header.Set("x-amz-sns-message-type", msgType)
		if err := a.AuthenticateHeaders(r); err != nil {
			t.Fatalf("AuthenticateHeaders without basic auth configured = %v", err)
		}
		// No message can verify (the certificate is never fetched), whatever the bytes.
		if err := a.Authenticate(r, body); err == nil {
			t.Fatalf("accepted without a certificate: %q", body)
		}
	})
}

// FuzzCheckURL fuzzes the SigningCertURL and SubscribeURL check: whatever it lets
// through is https on an SNS host, without credentials, and a .pem when asked.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
		"https://sns.cn-north-1.amazonaws.com.cn/x.pem",
		"https://sns.eu-west-1.amazonaws.com.evil.example/x.pem",
		"https://user:pw@sns.eu-west-1.amazonaws.com/x.pem",
		"http://sns.eu-west-1.amazonaws.com/x.pem",
		"https://s3.amazonaws.com/bucket/x.pem",
		"https://sns.eu-west-1.amazonaws.com:443/x.pem",
		"https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t",
		"https://[::1]/x.pem", "%zz", "", "https://", "//sns.eu-west-1.amazonaws.com/x.pem",
	} {
		f.Add(s)
	}
	a := &Adapter{hostOK: snsHost.MatchString}
	f.Fuzz(func(t *testing.T, raw string) {
		_ = redactedHost(raw)
		for _, pemFile := range []bool{true, false} {
			if a.checkURL(raw, pemFile) != nil {
				continue
			}
			u, err := url.Parse(raw)
			switch {
			case err != nil:
				t.Fatalf("%q passed but does not parse: %v", raw, err)
			case u.Scheme != "https" || u.User != nil || !snsHost.MatchString(u.Host):
				t.Fatalf("%q passed: scheme %q, user %v, host %q", raw, u.Scheme, u.User, u.Host)
			case pemFile && !strings.HasSuffix(u.Path, ".pem"):
				t.Fatalf("%q passed as a certificate URL without a .pem path", raw)
			}
			if h := redactedHost(raw); h != u.Host {
				t.Fatalf("redactedHost(%q) = %q, want %q", raw, h, u.Host)
			}
		}
	})
}
