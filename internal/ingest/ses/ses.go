package ses

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
)

const esp = "ses"

// maxBody bounds what Parse reads: an SNS message is at most 256 KiB, and JSON escaping
// of the SES payload inside Message can roughly double it.
const maxBody = 1 << 20

// snsHost is the host a SigningCertURL or SubscribeURL must have, as in AWS's own
// validators: an SNS regional endpoint, never a generic *.amazonaws.com host such as an
// S3 bucket that anyone can fill.
var snsHost = regexp.MustCompile(`^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)

// timestampWindow is how old (or how far ahead) a signed SNS message may be. AWS sets
// none; an hour covers SNS's retries and refuses replays of captured old messages.
const timestampWindow = time.Hour

// Certificate fetching limits.
const (
	maxCertBytes = 64 << 10
	maxCerts     = 32 // certificates cached; SNS rotates rarely and uses one per region
	// certRetry is how long a failed certificate fetch is remembered: a forged message
	// naming an allow-listed topic costs at most one outbound fetch per certificate URL
	// in this period, however many copies of it arrive. It is shorter than the 20 s x 3
	// of SNS's default HTTP retry policy, so a passing network failure on our side
	// does not outlast the retries of a genuine message.
	certRetry = 30 * time.Second
	// maxCertFailures bounds the failures remembered: past it the expired ones are
	// dropped, and all of them if none has expired.
	maxCertFailures = 1024
)

// errRedirect refuses every redirect of a certificate or subscription fetch: AWS
// serves both directly, and following one would leave the SNS hosts checkURL allows.
var errRedirect = errors.New("redirect refused")

// Adapter is the SES-over-SNS dialect.
type Adapter struct {
	topics   map[string]bool // allowed TopicArns; empty: not configured (see verifier)
	basic    string          // optional user:password SNS puts in the endpoint URL
	verifier ingest.Verifier
	tenant   tenantFrom
	client   *http.Client
	guard    *ingest.ReplayGuard
	certs    *certCache
	log      *zap.Logger

	// hostOK decides whether a certificate or subscribe URL may be fetched from host
	// (host[:port] as in the URL). Production keeps the SNS pattern; tests in this
	// package swap it to reach a local TLS server.
	hostOK func(host string) bool
}

// tenantFrom is REBOUND_SES_TENANT_FROM, parsed.
type tenantFrom struct {
	kind  string            // "", "tag", "configuration_set" or "topic"
	tag   string            // mail.tags key
	byARN map[string]string // topic ARN → tenant
}

// New builds the adapter from REBOUND_SES_TOPIC_ARNS, REBOUND_SES_BASIC_AUTH (or its
// _FILE), REBOUND_SES_TENANT_FROM and REBOUND_SES_INSECURE_SKIP_VERIFY.
func New(env ingest.Env) (ingest.Adapter, error) {
	a := &Adapter{
		topics: map[string]bool{},
		guard:  ingest.NewReplayGuard(timestampWindow, env.Now),
		certs:  newCertCache(env.Now),
		hostOK: snsHost.MatchString,
		log:    env.Log,
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	// A copy of the shared client (its transport is kept) that follows no redirect.
	client := http.Client{Timeout: 5 * time.Second}
	if env.HTTPClient != nil {
		client = *env.HTTPClient
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return errRedirect }
	a.client = &client
	for arn := range strings.SplitSeq(env.Var(esp, "TOPIC_ARNS"), ",") {
		if arn = strings.TrimSpace(arn); arn == "" {
			continue
		}
		if !validARN(arn) {
			return nil, fmt.Errorf("REBOUND_SES_TOPIC_ARNS: %q is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)", arn)
		}
		a.topics[arn] = true
	}
	a.verifier = env.Verifier(esp, "TOPIC_ARNS", len(a.topics) > 0)
	basic, err := env.BasicAuthSecret(esp, ", as in the subscription URL")
	if err != nil {
		return nil, err
	}
	a.basic = basic
	if a.tenant, err = parseTenantFrom(env.TenantFrom(esp)); err != nil {
		return nil, fmt.Errorf("REBOUND_SES_TENANT_FROM: %w", err)
	}
	return a, nil
}

func validARN(s string) bool {
	p := strings.Split(s, ":")
	return len(p) == 6 && p[0] == "arn" && strings.HasPrefix(p[1], "aws") && p[2] == "sns" && p[3] != "" && p[4] != "" && p[5] != ""
}

func parseTenantFrom(s string) (tenantFrom, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return tenantFrom{}, nil
	case s == "configuration_set":
		return tenantFrom{kind: "configuration_set"}, nil
	case strings.HasPrefix(s, "tag:") && len(s) > len("tag:"):
		return tenantFrom{kind: "tag", tag: s[len("tag:"):]}, nil
	case strings.HasPrefix(s, "topic:"):
		m := map[string]string{}
		for pair := range strings.SplitSeq(s[len("topic:"):], ";") {
			arn, tenant, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || !validARN(arn) || tenant == "" {
				return tenantFrom{}, fmt.Errorf("%q: want topic:<topic ARN>=<tenant>;<topic ARN>=<tenant>…", pair)
			}
			m[arn] = tenant
		}
		return tenantFrom{kind: "topic", byARN: m}, nil
	}
	return tenantFrom{}, fmt.Errorf("%q: want tag:<mail.tags key>, configuration_set or topic:<ARN>=<tenant>;…", s)
}

// ESP implements ingest.Adapter.
func (a *Adapter) ESP() string { return esp }

// Challenge implements ingest.Challenger: SNS sends the credentials of the endpoint URL
// only after a 401 that asks for basic auth.
func (a *Adapter) Challenge() string {
	if a.basic == "" {
		return ""
	}
	return `Basic realm="rebound"`
}

// envelope is the SNS HTTP message. Subject and the confirmation fields are pointers
// because the string to sign includes a key only when it is present.
type envelope struct {
	Type             string  `json:"Type"`
	MessageID        string  `json:"MessageId"`
	TopicArn         string  `json:"TopicArn"`
	Subject          *string `json:"Subject"`
	Message          string  `json:"Message"`
	Timestamp        string  `json:"Timestamp"`
	SignatureVersion string  `json:"SignatureVersion"`
	Signature        string  `json:"Signature"`
	SigningCertURL   string  `json:"SigningCertURL"`
	SubscribeURL     *string `json:"SubscribeURL"`
	Token            *string `json:"Token"`
}

// Authenticate implements ingest.Adapter: optional basic auth, then the SNS signature
// from an allow-listed topic, checked in an order that never fetches anything for a
// message that fails a local check. A verified SubscriptionConfirmation is confirmed
// here, since only here is the request known to be genuine.
//
// The topics are what the opt-out stands in for: with none configured and
// REBOUND_SES_INSECURE_SKIP_VERIFY=true there is no signature check, but configured
// basic-auth credentials are still checked, as every configured secret is.
func (a *Adapter) Authenticate(r *http.Request, body []byte) error {
	if a.verifier.Unchecked() && a.basic != "" {
		return ingest.BasicAuth(r, a.basic)
	}
	return a.verifier.Authenticate(func() error { return a.verifyRequest(r, body) })
}

// AuthenticateHeaders implements ingest.HeaderAuthenticator: the configured basic auth
// (which SNS sends in the header) is checked before the body is read, and an endpoint
// without topics refuses at once; the signature is in the body.
func (a *Adapter) AuthenticateHeaders(r *http.Request) error {
	if a.verifier.Unchecked() && a.basic != "" {
		return ingest.BasicAuth(r, a.basic)
	}
	return a.verifier.Authenticate(func() error {
		if a.basic != "" {
			return ingest.BasicAuth(r, a.basic)
		}
		return nil
	})
}

func (a *Adapter) verifyRequest(r *http.Request, body []byte) error {
	if a.basic != "" {
		if err := ingest.BasicAuth(r, a.basic); err != nil {
			return err
		}
	}
	if len(body) > maxBody {
		return fmt.Errorf("%w: body larger than %d bytes", ingest.ErrUnauthenticated, maxBody)
	}
	var m envelope
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("%w: body is not an SNS message: %v", ingest.ErrUnauthenticated, err)
	}
	if err := a.verify(r.Context(), r.Header, &m); err != nil {
		return err
	}
	if m.Type == "SubscriptionConfirmation" {
		// The SubscribeURL carries the confirmation token: the error and the log name the
		// topic and the URL's host, never the URL.
		if err := a.confirm(r.Context(), *m.SubscribeURL); err != nil {
			return fmt.Errorf("confirm the subscription to %s at %s: %w", m.TopicArn, redactedHost(*m.SubscribeURL), err)
		}
		a.log.Info("SNS subscription confirmed", zap.String("topic_arn", m.TopicArn), zap.String("host", redactedHost(*m.SubscribeURL)))
	}
	return nil
}

// redactedHost is the host of a URL for a log line, without its path, query or
// credentials; "(not a URL)" when there is none.
func redactedHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(not a URL)"
	}
	return u.Host
}

func (a *Adapter) verify(ctx context.Context, h http.Header, m *envelope) error {
	var fields []string
	switch m.Type {
	case "Notification":
		fields = []string{"Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"}
	case "SubscriptionConfirmation", "UnsubscribeConfirmation":
		if m.SubscribeURL == nil || m.Token == nil {
			return fmt.Errorf("%w: %s without SubscribeURL or Token", ingest.ErrUnauthenticated, m.Type)
		}
		fields = []string{"Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"}
	default:
		return fmt.Errorf("%w: SNS message type %q", ingest.ErrUnauthenticated, m.Type)
	}
	if v := h.Get("x-amz-sns-message-type"); v != "" && v != m.Type {
		return fmt.Errorf("%w: x-amz-sns-message-type %q does not match the body", ingest.ErrUnauthenticated, v)
	}
	if v := h.Get("x-amz-sns-message-id"); v != "" && v != m.MessageID {
		return fmt.Errorf("%w: x-amz-sns-message-id does not match the body", ingest.ErrUnauthenticated)
	}
	if !a.topics[m.TopicArn] {
		return fmt.Errorf("%w: topic %q is not in REBOUND_SES_TOPIC_ARNS", ingest.ErrUnauthenticated, m.TopicArn)
	}
	var hash crypto.Hash
	switch m.SignatureVersion {
	case "1":
		hash = crypto.SHA1
	case "2":
		hash = crypto.SHA256
	default:
		return fmt.Errorf("%w: SignatureVersion %q (want 1 or 2)", ingest.ErrUnauthenticated, m.SignatureVersion)
	}
	ts, err := time.Parse(time.RFC3339Nano, m.Timestamp)
	if err != nil {
		return fmt.Errorf("%w: Timestamp %q is not ISO 8601", ingest.ErrUnauthenticated, m.Timestamp)
	}
	if err := a.guard.CheckTime(ts); err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("%w: Signature is not base64", ingest.ErrUnauthenticated)
	}
	if err := a.checkURL(m.SigningCertURL, true); err != nil {
		return fmt.Errorf("%w: SigningCertURL: %v", ingest.ErrUnauthenticated, err)
	}
	pub, err := a.cert(ctx, m.SigningCertURL)
	if err != nil {
		return fmt.Errorf("%w: signing certificate: %v", ingest.ErrUnauthenticated, err)
	}
	signed := stringToSign(m, fields)
	var digest []byte
	if hash == crypto.SHA1 {
		d := sha1.Sum(signed)
		digest = d[:]
	} else {
		d := sha256.Sum256(signed)
		digest = d[:]
	}
	if err := rsa.VerifyPKCS1v15(pub, hash, digest, sig); err != nil {
		return fmt.Errorf("%w: SNS signature does not verify", ingest.ErrUnauthenticated)
	}
	return nil
}

// stringToSign is SNS's canonical form: "Key\nvalue\n" for each field present, in the
// given (byte) order, with the JSON-decoded values.
func stringToSign(m *envelope, fields []string) []byte {
	var b bytes.Buffer
	b.Grow(len(m.Message) + 512)
	add := func(k, v string) {
		b.WriteString(k)
		b.WriteByte('\n')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	for _, f := range fields {
		switch f {
		case "Message":
			add(f, m.Message)
		case "MessageId":
			add(f, m.MessageID)
		case "Subject":
			if m.Subject != nil {
				add(f, *m.Subject)
			}
		case "SubscribeURL":
			add(f, *m.SubscribeURL)
		case "Timestamp":
			add(f, m.Timestamp)
		case "Token":
			add(f, *m.Token)
		case "TopicArn":
			add(f, m.TopicArn)
		case "Type":
			add(f, m.Type)
		}
	}
	return b.Bytes()
}

// checkURL refuses anything but https on an SNS host; a certificate URL must also name
// a .pem file.
func (a *Adapter) checkURL(raw string, pemFile bool) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "https":
		return fmt.Errorf("scheme %q is not https", u.Scheme)
	case u.User != nil:
		return errors.New("URL carries credentials")
	case !a.hostOK(u.Host):
		return fmt.Errorf("host %q is not an SNS endpoint", u.Host)
	case pemFile && !strings.HasSuffix(u.Path, ".pem"):
		return errors.New("path is not a .pem file")
	}
	return nil
}

// certCache keeps the public keys of SNS signing certificates by URL, and the failed
// fetches for certRetry. One fetch per URL is in flight at a time: the requests that
// name a URL being fetched wait for its outcome instead of fetching it again.
type certCache struct {
	now func() time.Time

	mu       sync.Mutex
	keys     map[string]*rsa.PublicKey
	failed   map[string]certFailure
	inflight map[string]*certFetch
}

type certFailure struct {
	err   error
	until time.Time
}

type certFetch struct {
	done chan struct{}
	pub  *rsa.PublicKey
	err  error
}

func newCertCache(now func() time.Time) *certCache {
	if now == nil {
		now = time.Now
	}
	return &certCache{now: now, keys: map[string]*rsa.PublicKey{}, failed: map[string]certFailure{}, inflight: map[string]*certFetch{}}
}

func (a *Adapter) cert(ctx context.Context, certURL string) (*rsa.PublicKey, error) {
	c := a.certs
	c.mu.Lock()
	if pub := c.keys[certURL]; pub != nil {
		c.mu.Unlock()
		return pub, nil
	}
	now := c.now()
	if f, ok := c.failed[certURL]; ok && now.Before(f.until) {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w (failed less than %s ago, not fetched again yet)", f.err, certRetry)
	}
	if f := c.inflight[certURL]; f != nil {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.pub, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &certFetch{done: make(chan struct{})}
	c.inflight[certURL] = f
	c.mu.Unlock()

	// The fetch is not bound to this request: the requests waiting on it must not fail
	// because the first one's caller went away. The client's timeout bounds it.
	f.pub, f.err = a.fetchCert(context.WithoutCancel(ctx), certURL)

	c.mu.Lock()
	delete(c.inflight, certURL)
	if f.err == nil {
		if len(c.keys) >= maxCerts {
			clear(c.keys) // rare: SNS rotates certificates every few years
		}
		c.keys[certURL] = f.pub
	} else {
		if len(c.failed) >= maxCertFailures {
			for u, old := range c.failed {
				if !now.Before(old.until) {
					delete(c.failed, u)
				}
			}
			if len(c.failed) >= maxCertFailures {
				clear(c.failed)
			}
		}
		c.failed[certURL] = certFailure{err: f.err, until: c.now().Add(certRetry)}
	}
	c.mu.Unlock()
	close(f.done)
	return f.pub, f.err
}

func (a *Adapter) fetchCert(ctx context.Context, certURL string) (*rsa.PublicKey, error) {
	body, err := a.get(ctx, certURL, maxCertBytes)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	return pub, nil
}

// get fetches a URL already checked by checkURL, reading at most limit bytes. Its
// errors name the host only: a SubscribeURL's query is a confirmation token.
func (a *Adapter) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	host := redactedHost(u)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: bad request", host)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		// A *url.Error quotes the whole URL; keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("GET %s: %w", host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", host, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", host, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("GET %s: larger than %d bytes", host, limit)
	}
	return body, nil
}

// confirm visits SubscribeURL, which is how an HTTPS endpoint accepts a subscription.
func (a *Adapter) confirm(ctx context.Context, subscribeURL string) error {
	if err := a.checkURL(subscribeURL, false); err != nil {
		return fmt.Errorf("SubscribeURL: %w", err)
	}
	_, err := a.get(ctx, subscribeURL, 64<<10)
	return err
}

// notification is the SES payload inside Message.
type notification struct {
	EventType        string `json:"eventType"`
	NotificationType string `json:"notificationType"`
	Mail             struct {
		Timestamp string              `json:"timestamp"`
		MessageID string              `json:"messageId"`
		Source    string              `json:"source"`
		SourceArn string              `json:"sourceArn"`
		Dest      []string            `json:"destination"`
		Tags      map[string][]string `json:"tags"`
	} `json:"mail"`
	Bounce *struct {
		BounceType        string      `json:"bounceType"`
		BounceSubType     string      `json:"bounceSubType"`
		BouncedRecipients []recipient `json:"bouncedRecipients"`
		Timestamp         string      `json:"timestamp"`
		FeedbackID        string      `json:"feedbackId"`
		ReportingMTA      string      `json:"reportingMTA"`
		RemoteMtaIP       string      `json:"remoteMtaIp"`
	} `json:"bounce"`
	Complaint *struct {
		ComplainedRecipients  []recipient `json:"complainedRecipients"`
		Timestamp             string      `json:"timestamp"`
		FeedbackID            string      `json:"feedbackId"`
		ComplaintSubType      *string     `json:"complaintSubType"`
		ComplaintFeedbackType string      `json:"complaintFeedbackType"`
	} `json:"complaint"`
	DeliveryDelay *struct {
		DelayType         string      `json:"delayType"`
		DelayedRecipients []recipient `json:"delayedRecipients"`
		Timestamp         string      `json:"timestamp"`
		ReportingMTA      string      `json:"reportingMTA"`
	} `json:"deliveryDelay"`
	Delivery *struct {
		Timestamp    string   `json:"timestamp"`
		Recipients   []string `json:"recipients"`
		SMTPResponse string   `json:"smtpResponse"`
		ReportingMTA string   `json:"reportingMTA"`
		RemoteMtaIP  string   `json:"remoteMtaIp"`
	} `json:"delivery"`
	Reject *struct {
		Reason string `json:"reason"`
	} `json:"reject"`
	Subscription *struct {
		ContactList         string `json:"contactList"`
		Timestamp           string `json:"timestamp"`
		Source              string `json:"source"`
		NewTopicPreferences struct {
			UnsubscribeAll bool `json:"unsubscribeAll"`
		} `json:"newTopicPreferences"`
	} `json:"subscription"`
}

type recipient struct {
	EmailAddress   string `json:"emailAddress"`
	Action         string `json:"action"`
	Status         string `json:"status"`
	DiagnosticCode string `json:"diagnosticCode"`
}

// Parse implements ingest.Adapter: one SNS message; a Notification's Message is the SES
// payload, fanned out into one event per recipient. Confirmations, the topic validation
// notice and SES events Rebound does not act on (Send, Open, Click, …) count as ignored.
func (a *Adapter) Parse(body []byte) (ingest.Batch, error) {
	if len(body) > maxBody {
		return ingest.Batch{}, fmt.Errorf("ses: body of %d bytes is larger than %d", len(body), maxBody)
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return ingest.Batch{}, fmt.Errorf("ses: body is not an SNS message: %w", err)
	}
	msg := strings.TrimSpace(env.Message)
	if env.Type != "Notification" || !strings.HasPrefix(msg, "{") {
		return ingest.Batch{Ignored: 1}, nil
	}
	var n notification
	if err := json.Unmarshal([]byte(msg), &n); err != nil {
		return ingest.Batch{}, fmt.Errorf("ses: Message is not an SES notification: %w", err)
	}
	kind := n.EventType
	if kind == "" {
		kind = n.NotificationType
	}
	base := events.Event{
		ESP:       esp,
		Sender:    ingest.OptionalAddress(n.Mail.Source),
		MessageID: n.Mail.MessageID,
		Tenant:    a.tenantOf(&env, &n),
	}
	if i := strings.LastIndex(n.Mail.SourceArn, ":identity/"); i >= 0 {
		if id := n.Mail.SourceArn[i+len(":identity/"):]; !strings.Contains(id, "@") {
			base.SendingDomain = id
		}
	}
	verdict := map[string]string{"eventType": kind}
	var items []item
	switch kind {
	case "Bounce":
		bo := n.Bounce
		if bo == nil {
			return reject(body, "Bounce without a bounce object")
		}
		base.Type = events.TypeBounce
		base.MTA = remoteMTA(bo.RemoteMtaIP, bo.ReportingMTA)
		base.ProviderSuppressed = bo.BounceSubType == "Suppressed" || bo.BounceSubType == "OnAccountSuppressionList"
		verdict["bounceType"], verdict["bounceSubType"] = bo.BounceType, bo.BounceSubType
		for _, r := range bo.BouncedRecipients {
			items = append(items, item{r: r, idBase: bo.FeedbackID, at: bo.Timestamp,
				reply: reply(r, func() string { return bounceSynthetic(bo.BounceType, bo.BounceSubType, r.Status) })})
		}
	case "Complaint":
		c := n.Complaint
		if c == nil {
			return reject(body, "Complaint without a complaint object")
		}
		base.Type = events.TypeComplaint
		if c.ComplaintSubType != nil {
			verdict["complaintSubType"] = *c.ComplaintSubType
			base.ProviderSuppressed = *c.ComplaintSubType == "OnAccountSuppressionList"
		}
		if c.ComplaintFeedbackType != "" {
			verdict["complaintFeedbackType"] = c.ComplaintFeedbackType
		}
		for _, r := range c.ComplainedRecipients {
			items = append(items, item{r: r, idBase: c.FeedbackID, at: c.Timestamp})
		}
	case "DeliveryDelay":
		d := n.DeliveryDelay
		if d == nil {
			return reject(body, "DeliveryDelay without a deliveryDelay object")
		}
		base.Type = events.TypeDeferral
		base.MTA = remoteMTA("", d.ReportingMTA)
		verdict["delayType"] = d.DelayType
		for _, r := range d.DelayedRecipients {
			items = append(items, item{r: r, at: d.Timestamp,
				reply: reply(r, func() string { return delaySynthetic(d.DelayType) })})
		}
	case "Delivery":
		d := n.Delivery
		if d == nil {
			return reject(body, "Delivery without a delivery object")
		}
		base.Type = events.TypeDelivered
		base.MTA = remoteMTA(d.RemoteMtaIP, d.ReportingMTA)
		p := catalog.ParseReply(d.SMTPResponse)
		for _, addr := range d.Recipients {
			items = append(items, item{r: recipient{EmailAddress: addr}, at: d.Timestamp,
				reply: events.Reply{Code: p.Code, Enhanced: p.Enhanced, Text: p.Text}})
		}
	case "Reject":
		base.Type = events.TypeDropped
		text := "synthetic (SES Reject, the ESP did not send): 554 5.6.0 message content rejected"
		if n.Reject != nil && n.Reject.Reason != "" {
			verdict["reason"] = n.Reject.Reason
		}
		for _, addr := range n.Mail.Dest {
			items = append(items, item{r: recipient{EmailAddress: addr}, at: env.Timestamp, reply: events.Reply{Text: text}})
		}
	case "Subscription":
		// SES list management: the recipient changed their preferences through the
		// List-Unsubscribe header or SES's unsubscribe page. Only an unsubscribe from the
		// whole contact list is the tenant's opt-out (ingest.MarkUnsubscribed); one topic
		// is a group Rebound's list does not have, and a re-subscription lifts nothing
		// here (a suppression is lifted through the API).
		sub := n.Subscription
		if sub == nil || !sub.NewTopicPreferences.UnsubscribeAll {
			return ingest.Batch{Ignored: 1}, nil
		}
		ingest.MarkUnsubscribed(&base, "SES Subscription unsubscribeAll")
		verdict["contactList"], verdict["source"] = sub.ContactList, sub.Source
		for _, addr := range n.Mail.Dest {
			items = append(items, item{r: recipient{EmailAddress: addr}, at: sub.Timestamp, reply: base.Reply})
		}
	default:
		return ingest.Batch{Ignored: 1}, nil
	}
	if len(items) == 0 {
		return reject(body, kind+" names no recipient")
	}
	var b ingest.Batch
	for _, it := range items {
		ev := base
		ev.Recipient = ingest.BareAddress(it.r.EmailAddress)
		ev.Reply = it.reply
		ev.ESPVerdict = make(map[string]string, len(verdict)+2)
		for k, v := range verdict {
			if v != "" {
				ev.ESPVerdict[k] = v
			}
		}
		if it.r.Status != "" {
			ev.ESPVerdict["status"] = it.r.Status
		}
		if it.r.Action != "" {
			ev.ESPVerdict["action"] = it.r.Action
		}
		// feedbackId is one per bounce or complaint whatever topic carried it; other
		// notifications have only the SNS MessageId. The recipient makes it unique
		// within the fan-out.
		idBase := it.idBase
		if idBase == "" {
			idBase = env.MessageID
		}
		ev.ID = esp + ":" + idBase + ":" + strings.ToLower(ev.Recipient)
		ev.OccurredAt = firstTime(it.at, env.Timestamp, n.Mail.Timestamp)
		if err := ev.Normalize(); err != nil {
			b.Rejects = append(b.Rejects, ingest.Reject{Index: 0, Reason: it.r.EmailAddress + ": " + err.Error(), Raw: bytes.Clone(body)})
			continue
		}
		b.Events = append(b.Events, ev)
	}
	return b, nil
}

// item is one recipient of a notification on its way to an event.
type item struct {
	r      recipient
	idBase string
	at     string
	reply  events.Reply
}

func reject(body []byte, reason string) (ingest.Batch, error) {
	return ingest.Batch{Rejects: []ingest.Reject{{Index: 0, Reason: reason, Raw: bytes.Clone(body)}}}, nil
}

// reply is the recipient's SMTP reply: SES's status as the enhanced code and the
// diagnostic code's words; without a diagnostic code, the synthetic text.
func reply(r recipient, synthetic func() string) events.Reply {
	if strings.TrimSpace(r.DiagnosticCode) == "" {
		return events.Reply{Text: synthetic()}
	}
	p := catalog.ParseReply(r.DiagnosticCode)
	out := events.Reply{Code: p.Code, Enhanced: p.Enhanced, Text: p.Text}
	if s := strings.TrimSpace(r.Status); s != "" {
		out.Enhanced = s
	}
	return out
}

// bounceSynthetic words a reply for a bounce SES reported without a diagnostic code.
// Each text is checked against the catalog in the tests.
func bounceSynthetic(typ, sub, status string) string {
	label := "synthetic (SES bounce " + typ + "/" + sub + ", no reply from the remote server): "
	switch typ {
	case "Permanent":
		switch sub {
		case "NoEmail":
			return label + "550 5.1.1 mailbox does not exist"
		case "Suppressed", "OnAccountSuppressionList":
			return label + "550 5.1.1 address is on the ESP suppression list"
		}
		if len(status) >= 5 && status[0] == '5' && status != "5.0.0" && !strings.ContainsAny(status, " \t") {
			// SES's status is the remote server's enhanced code: keep it.
			return label + "550 " + status + " permanent failure"
		}
		return label + "550 5.1.1 recipient rejected permanently"
	case "Transient":
		switch sub {
		case "MailboxFull":
			return label + "452 4.2.2 mailbox full"
		case "MessageTooLarge":
			return label + "552 5.3.4 message too large"
		case "ContentRejected", "AttachmentRejected":
			return label + "554 5.6.0 message content rejected"
		}
	}
	return label + "451 4.3.0 temporary failure"
}

// delaySynthetic words a reply for an SES delivery delay without a diagnostic code.
// IPFailure is about SES's sending IP, so it must read as sender-side, never as the
// recipient's fault.
func delaySynthetic(delayType string) string {
	label := "synthetic (SES delayType " + delayType + ", no reply from the remote server): "
	switch delayType {
	case "MailboxFull":
		return label + "452 4.2.2 mailbox full"
	case "SpamDetected":
		return label + "451 4.7.1 message deferred: the recipient server suspects spam"
	case "IPFailure":
		return label + "421 4.7.0 sending IP blocked or rejected by the recipient server"
	case "TransientCommunicationFailure":
		return label + "421 4.4.2 connection to the recipient server failed"
	case "BYOIPHostNameLookupUnavailable":
		return label + "451 4.4.3 reverse DNS lookup of the sending IP unavailable"
	}
	return label + "451 4.3.0 temporary failure"
}

// remoteMTA names the remote server: its IP when SES gives one, else the reporting MTA
// unless that is SES's own outbound host (which would mislead provider rules).
func remoteMTA(ip, reporting string) string {
	if ip != "" {
		return ip
	}
	h := strings.TrimSpace(reporting)
	if i := strings.IndexByte(h, ';'); i >= 0 {
		h = strings.TrimSpace(h[i+1:])
	}
	if l := strings.ToLower(h); l == "amazonses.com" || strings.HasSuffix(l, ".amazonses.com") {
		return ""
	}
	return h
}

func firstTime(candidates ...string) time.Time {
	for _, s := range candidates {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// tenantOf reads the tenant where REBOUND_SES_TENANT_FROM says.
func (a *Adapter) tenantOf(env *envelope, n *notification) string {
	first := func(k string) string {
		if v := n.Mail.Tags[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	switch a.tenant.kind {
	case "tag":
		return first(a.tenant.tag)
	case "configuration_set":
		return first("ses:configuration-set")
	case "topic":
		return a.tenant.byARN[env.TopicArn]
	}
	return ""
}
