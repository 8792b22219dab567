// Package webhook posts every incident transition as JSON to a URL the operator
// chooses, for the tools Rebound has no dedicated integration for (an in-house bot, a
// ticketing bridge, a workflow engine). Anyone who learns the URL can post to it, so
// each delivery can carry an HMAC signature that lets the consumer tell Rebound's
// deliveries from forgeries and refuse an old delivery replayed later.
//
// # Signing scheme, version 1
//
// Every request is a POST with Content-Type application/json and these headers:
//
//	X-Rebound-Delivery:  <incident id>-<seq>
//	X-Rebound-Timestamp: <unix seconds when this request was sent>
//	X-Rebound-Signature: v1=<lower-case hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// The signature is present only when a secret is configured. A retried delivery keeps
// its X-Rebound-Delivery value (drop it if already processed) but gets a fresh
// timestamp and signature. To verify, a consumer takes the raw body bytes as received
// (before any JSON parsing: re-encoding changes the bytes), recomputes the HMAC over
// the timestamp header, ".", and the body, compares it with the header in constant
// time, and refuses a timestamp too far from its own clock. Verify does exactly that;
// Sign is the reference for consumers written in other languages. Verify also accepts
// several comma-separated v1= values and succeeds when one matches, so a sender can
// later sign with an old and a new secret while the secret is rotated without a new
// scheme version.
//
// The body is {"version":"1","kind":"rebound.incident.<kind>","incident":{...}} where
// <kind> is trigger, reminder, ack or resolve and the incident is receiver.Notification
// in its JSON form.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/alert/receiver"
)

// The headers of the scheme.
const (
	headerDelivery  = "X-Rebound-Delivery"
	headerTimestamp = "X-Rebound-Timestamp"
	headerSignature = "X-Rebound-Signature"
	signaturePrefix = "v1="
)

// Config is one webhook receiver as written in the alert configuration.
type Config struct {
	// URL receives the POSTs. It is treated as a secret: such URLs often carry a token.
	URL     string `yaml:"url"`
	URLFile string `yaml:"url_file"`
	// Secret is the HMAC key; when empty, requests go unsigned.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
	// Headers are extra static headers, typically the consumer's own auth header.
	// Their values are secrets.
	Headers map[string]string `yaml:"headers"`
}

// Shortcut returns the Config for the legacy REBOUND_ALERT_WEBHOOK_URL setting: the
// URL alone, with no secret and no headers (the caller may add a secret). Prepare
// still has to run on it.
func Shortcut(url string) Config {
	// An environment variable filled from a file or a heredoc often ends in a newline.
	return Config{URL: strings.TrimSpace(url)}
}

// Prepare reads the *_file secrets (relative to baseDir) and validates the result.
// Afterwards URL and Secret hold the values and the *_file fields are empty, so
// Prepare can run again on its own output. No error carries the URL, the secret or a
// header value.
func (c *Config) Prepare(baseDir string) error {
	u, err := receiver.SecretURL(c.URL, c.URLFile, baseDir)
	if err != nil {
		return err
	}
	s, err := receiver.Secret("secret", c.Secret, c.SecretFile, baseDir, false)
	if err != nil {
		return err
	}
	if c.SecretFile != "" && s == "" {
		// The secret is optional, but naming a file says one was meant: an empty file
		// (a Secret not yet mounted) would otherwise switch signing off without a word.
		return errors.New("secret_file: the file is empty")
	}
	if err := checkHeaders(c.Headers); err != nil {
		return err
	}
	c.URL, c.URLFile, c.Secret, c.SecretFile = u, "", s, ""
	return nil
}

// reserved are the headers the receiver or net/http sets itself: a configured value
// would be overwritten, be ignored, or (for the X-Rebound-* ones) let configuration
// forge what the scheme promises, so configuring them is refused rather than
// silently dropped.
var reserved = []string{"Content-Type", "Content-Length", "Transfer-Encoding", "Connection", "Host", "User-Agent"}

func checkHeaders(h map[string]string) error {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names) // the same configuration always reports the same first error
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !validName(name):
			return fmt.Errorf("headers: %q is not a valid header name", name)
		case slices.Contains(reserved, canon) || strings.HasPrefix(canon, "X-Rebound-"):
			return fmt.Errorf("headers: %q is set by Rebound and cannot be configured", name)
		case seen[canon]:
			return fmt.Errorf("headers: %q is set twice (header names ignore case)", canon)
		}
		seen[canon] = true
		v := h[name]
		if strings.TrimSpace(v) == "" {
			// Most likely an environment substitution that came out empty.
			return fmt.Errorf("headers: %q has an empty value", name)
		}
		if !validValue(v) {
			return fmt.Errorf("headers: the value of %q contains a line break or control character", name)
		}
	}
	return nil
}

// validName reports whether s is an RFC 9110 token.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validValue refuses the bytes net/http would refuse at send time, where the failure
// would cost a page instead of a start-up error.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// Notifier sends notifications to one webhook.
type Notifier struct {
	url    string
	secret []byte
	header http.Header
	client *http.Client
}

var _ receiver.Receiver = (*Notifier)(nil)

// New returns the Notifier for a prepared c. A nil client means
// receiver.DefaultClient().
func New(c Config, client *http.Client) *Notifier {
	if client == nil {
		client = receiver.DefaultClient()
	}
	h := make(http.Header, len(c.Headers))
	for k, v := range c.Headers {
		h.Set(k, v)
	}
	n := &Notifier{url: c.URL, header: h, client: client}
	if c.Secret != "" {
		n.secret = []byte(c.Secret)
	}
	return n
}

// envelope versions the body apart from the Notification so that the Notification can
// grow fields without consumers having to guess which shape they got.
type envelope struct {
	Version  string                `json:"version"`
	Kind     string                `json:"kind"`
	Incident receiver.Notification `json:"incident"`
}

// Send posts note. Every kind is sent: a generic consumer decides for itself what an
// acknowledgement means to it.
func (n *Notifier) Send(ctx context.Context, note receiver.Notification) error {
	switch note.Kind {
	case receiver.KindTrigger, receiver.KindReminder, receiver.KindAck, receiver.KindResolve:
	default:
		// A consumer switching on the kind would misread it; retrying cannot help.
		return &receiver.Error{Reason: "encode", Err: fmt.Errorf("unknown notification kind %q", note.Kind)}
	}
	body, err := json.Marshal(envelope{Version: "1", Kind: "rebound.incident." + string(note.Kind), Incident: note})
	if err != nil {
		return &receiver.Error{Reason: "encode", Err: err}
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	// A fresh header per request: Post hands the map to the request, and concurrent
	// sends must not share it.
	h := n.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	h.Set(headerDelivery, note.ID+"-"+strconv.FormatInt(note.Seq, 10))
	h.Set(headerTimestamp, ts)
	if len(n.secret) > 0 {
		h.Set(headerSignature, Sign(n.secret, ts, body))
	}
	return receiver.Post(ctx, n.client, n.url, h, body)
}

// Sign returns the X-Rebound-Signature value for body sent at timestamp (the
// X-Rebound-Timestamp value): "v1=" and the lower-case hex HMAC-SHA256 under secret of
// timestamp + "." + body.
func Sign(secret []byte, timestamp string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a received delivery: header are its headers and body its raw body. It
// returns nil when X-Rebound-Signature holds a v1 signature of body under secret and
// X-Rebound-Timestamp is within tolerance of now, in either direction (clocks drift
// both ways). A tolerance of zero or less accepts only the current second, so a
// forgotten setting fails closed. An empty secret is refused: anyone can compute a MAC
// under an empty key.
func Verify(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return errors.New("webhook: no secret to verify with")
	}
	ts := header.Get(headerTimestamp)
	sec, ok := parseTimestamp(ts)
	if !ok {
		return errors.New("webhook: missing or malformed " + headerTimestamp)
	}
	// Sub saturates instead of overflowing, and parseTimestamp bounds sec, so an
	// absurd timestamp cannot wrap around into the window.
	d := now.Sub(time.Unix(sec, 0))
	if d < 0 {
		d = -d
	}
	if d > max(tolerance, 0) {
		return errors.New("webhook: timestamp outside the tolerance (a replay, or a clock off)")
	}
	sigs := header.Values(headerSignature)
	if len(sigs) == 0 {
		return errors.New("webhook: missing " + headerSignature)
	}
	want := mac(secret, ts, body)
	found := false
	for _, v := range sigs {
		for part := range strings.SplitSeq(v, ",") {
			hexSig, ok := strings.CutPrefix(strings.TrimSpace(part), signaturePrefix)
			if !ok {
				continue // another scheme version: not ours to judge
			}
			got, err := hex.DecodeString(hexSig)
			if err != nil {
				continue
			}
			if hmac.Equal(got, want) {
				found = true // no early return: the time taken does not say which one matched
			}
		}
	}
	if !found {
		return errors.New("webhook: signature mismatch")
	}
	return nil
}

// parseTimestamp accepts only plain decimal seconds, at most 12 digits (good until the
// year 33658): no sign, no spaces, nothing time.Unix could overflow on.
func parseTimestamp(s string) (int64, bool) {
	if s == "" || len(s) > 12 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
