package demo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/ingest/sendgrid"
)

// espWebhook is one signed sample request as an ESP would send it.
type espWebhook struct {
	ESP    string
	Body   []byte
	Header http.Header
}

// espKeys are the demo's own keys for the ESPs it signs samples for; the worker is
// configured with their public halves, exactly as an operator would configure it.
type espKeys struct {
	sendgrid     *ecdsa.PrivateKey
	mailgun      string
	postmarkAuth string
}

func newESPKeys() (*espKeys, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &espKeys{sendgrid: k, mailgun: randomHex(16), postmarkAuth: "demo:" + randomHex(8)}, nil
}

// env is the REBOUND_<ESP>_* configuration matching the keys.
func (k *espKeys) env() (map[string]string, error) {
	der, err := x509.MarshalPKIXPublicKey(&k.sendgrid.PublicKey)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		"REBOUND_SENDGRID_PUBLIC_KEY":  base64.StdEncoding.EncodeToString(der),
		"REBOUND_MAILGUN_SIGNING_KEY":  k.mailgun,
		"REBOUND_POSTMARK_BASIC_AUTH":  k.postmarkAuth,
		"REBOUND_SENDGRID_TENANT_FROM": "tenant",
	}, nil
}

// webhooks builds signed sample requests from three ESPs: SendGrid (ECDSA over
// timestamp and body, a batch of three: a bounce, a block of our IP, an unsubscribe), Mailgun (HMAC over timestamp and token) and
// Postmark (basic auth, two records).
func (k *espKeys) webhooks(now time.Time) ([]espWebhook, error) {
	ts := now.Unix()
	run := randomHex(4)
	var out []espWebhook

	sg := fmt.Sprintf(`[
 {"email":"ivan@example.org","timestamp":%d,"event":"bounce","type":"bounce","status":"5.1.1","reason":"550 5.1.1 <ivan@example.org>: Recipient address rejected: User unknown in local recipient table","sg_event_id":"demo-sg-1-%s","sg_message_id":"m1.filter","ip":"192.0.2.20"},
 {"email":"judy@example.net","timestamp":%d,"event":"bounce","type":"blocked","reason":"554 5.7.1 Service unavailable; Client host [192.0.2.20] blocked using zen.spamhaus.org","sg_event_id":"demo-sg-2-%s","sg_message_id":"m2.filter","ip":"192.0.2.20"},
 {"email":"nina@example.org","timestamp":%d,"event":"unsubscribe","sg_event_id":"demo-sg-3-%s","sg_message_id":"m3.filter"}
]`, ts, run, ts, run, ts, run)
	stamp := strconv.FormatInt(ts, 10)
	sum := sha256.Sum256(append([]byte(stamp), sg...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.sendgrid, sum[:])
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set(sendgrid.HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	h.Set(sendgrid.HeaderTimestamp, stamp)
	out = append(out, espWebhook{ESP: "sendgrid", Body: []byte(sg), Header: h})

	token := randomHex(25)
	mac := hmac.New(sha256.New, []byte(k.mailgun))
	mac.Write([]byte(stamp + token))
	mg := fmt.Sprintf(`{"signature":{"timestamp":"%s","token":"%s","signature":"%s"},
 "event-data":{"id":"demo-mg-1-%s","event":"failed","severity":"permanent","reason":"bounce","timestamp":%d.5,
  "recipient":"kim@example.com","envelope":{"sender":"bounces@mg.shop.example","sending-ip":"192.0.2.30"},
  "delivery-status":{"code":550,"enhanced-code":"5.2.1","message":"5.2.1 The email account that you tried to reach is disabled.","mx-host":"mx.example.com"}}}`,
		stamp, token, hex.EncodeToString(mac.Sum(nil)), run, ts)
	out = append(out, espWebhook{ESP: "mailgun", Body: []byte(mg), Header: http.Header{}})

	at := now.UTC().Format(time.RFC3339)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(k.postmarkAuth))
	for i, rec := range []string{
		`{"RecordType":"Bounce","ID":%d,"Type":"HardBounce","TypeCode":1,"MessageID":"pm-1","Details":"smtp;550 5.1.1 The email account that you tried to reach does not exist.","Email":"leo@example.org","From":"news@mail.shop.example","BouncedAt":"%s"}`,
		`{"RecordType":"Bounce","ID":%d,"Type":"Blocked","TypeCode":100000,"MessageID":"pm-2","Details":"smtp;550 5.7.1 Unauthenticated email from mail.shop.example is not accepted due to domain's DMARC policy","Email":"mia@example.com","From":"news@mail.shop.example","BouncedAt":"%s"}`,
	} {
		h := http.Header{}
		h.Set("Authorization", basic)
		id := 700000000 + i + int(ts%100000)*10
		out = append(out, espWebhook{ESP: "postmark", Body: []byte(fmt.Sprintf(rec, id, at)), Header: h})
	}
	return out, nil
}

// envWith layers the demo's ESP settings over the process environment.
func envWith(extra map[string]string, getenv func(string) string) func(string) string {
	return func(k string) string {
		if v, ok := extra[k]; ok {
			return v // the demo signs with its own keys, whatever the environment says
		}
		if _, ok := extra[strings.TrimSuffix(k, "_FILE")]; ok {
			return ""
		}
		return getenv(k)
	}
}
