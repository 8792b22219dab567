// Package receiver is the contract between Rebound's incident machinery and the
// integrations that page people: one Notification type carrying everything a message
// needs, one Receiver interface with a single method, and the HTTP helper every
// integration uses so that retry decisions and secret scrubbing are written once.
// Each integration lives in its own sibling package (pagerduty, slack, teams,
// alertmanager, webhook, opsgenie) and knows nothing of Redis or the pipeline.
package receiver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Kind is the incident transition a notification reports.
type Kind string

// The transitions. A receiver that has nothing to say for one (Alertmanager has no
// "acknowledged") returns nil for it.
const (
	KindTrigger  Kind = "trigger"  // the incident opened, or reopened after a resolve
	KindReminder Kind = "reminder" // still open and not acknowledged after the reminder interval
	KindAck      Kind = "ack"      // someone acknowledged it through the API
	KindResolve  Kind = "resolve"  // quiet for the resolve period, or resolved by hand
)

// Notification is one incident transition, with the incident as it stands when the
// notification is sent. Nothing in it names a recipient address.
type Notification struct {
	Kind Kind `json:"kind"`
	// ID is the incident's stable identity (its fingerprint): PagerDuty's dedup_key,
	// Opsgenie's alias, the label that makes Alertmanager see one alert.
	ID string `json:"id"`
	// Seq numbers the incident's transitions; with ID it identifies this notification.
	Seq int64 `json:"seq"`
	// At is when the transition happened.
	At time.Time `json:"at"`

	Class    string `json:"class"`
	Severity string `json:"severity"` // critical | high | warning | info
	State    string `json:"state"`    // open | notified | resolved | reopened

	Tenant          string `json:"tenant,omitempty"`
	SendingDomain   string `json:"sending_domain,omitempty"`
	SendingIP       string `json:"sending_ip,omitempty"`
	ReceivingDomain string `json:"receiving_domain,omitempty"` // mass-bounce incidents
	Code            string `json:"code,omitempty"`             // "530", "5.7.0", …
	CodeTitle       string `json:"code_title,omitempty"`       // "Authentication required"
	Rule            string `json:"rule,omitempty"`
	ESP             string `json:"esp,omitempty"`

	// Summary is the one line that says what happened, e.g. "SMTP 530 Authentication
	// required for mail.example.com via 192.0.2.10 — 1,243 messages to 1,201 recipients
	// in 5 min". Receivers put it where a pager or a chat preview shows it.
	Summary    string    `json:"summary"`
	Messages   int64     `json:"messages"`   // events counted in this episode
	Recipients int64     `json:"recipients"` // distinct recipients (estimated above a few thousand)
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	ResolvedBy string    `json:"resolved_by,omitempty"`
	AckedBy    string    `json:"acked_by,omitempty"`
	Reopened   int64     `json:"reopened"` // times it came back after a resolve

	Examples         []string `json:"examples"`          // up to 5 example replies, addresses redacted
	ReceivingDomains []string `json:"receiving_domains"` // the most affected receiving domains
	Meaning          string   `json:"meaning,omitempty"` // the catalog's meaning of the code
	Fix              []string `json:"fix"`               // the catalog's fix steps

	RunbookURL  string `json:"runbook_url,omitempty"`
	IncidentURL string `json:"incident_url,omitempty"` // the incident in Rebound's API
}

// Firing reports whether the notification is about an incident that is still open.
func (n *Notification) Firing() bool { return n.Kind != KindResolve }

// Receiver sends notifications to one destination. Send returns nil when the
// destination accepted the notification (or when the receiver has nothing to send for
// this kind), and otherwise an error; Retryable tells the caller whether trying again
// later can help.
type Receiver interface {
	Send(ctx context.Context, n Notification) error
}

// Error is a failed send with the receiver's verdict on retrying it. Its message
// never carries the destination URL or a key.
type Error struct {
	Status int  // HTTP status, 0 when no answer came
	Retry  bool // a later attempt can succeed (5xx, 429, no answer)
	// RetryAfter is the delay the receiver asked for (429/503 Retry-After), 0 if none.
	RetryAfter time.Duration
	Reason     string // short, from a closed set: client_error, server_error, rate_limited, auth_error, network, encode
	Err        error
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s: HTTP %d: %v", e.Reason, e.Status, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether err is worth retrying. An error that is not an *Error
// (a bug, a cancelled context) is retried: dropping a page is worse than resending it.
func Retryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Retry
	}
	return err != nil
}

// ReasonOf returns the closed-set reason of err for the failure metric's label.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Reason != "" {
		return e.Reason
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "other"
}

// maxResponse bounds what is read of a receiver's answer.
const maxResponse = 16 << 10

// Post sends body to rawURL as a POST with the given headers and turns the answer
// into nil (2xx) or an *Error that says whether to retry: 5xx, 429 and no answer are
// retried, every other status is not. The URL often carries a secret (Slack, Teams),
// so no error names it.
func Post(ctx context.Context, client *http.Client, rawURL string, header http.Header, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return &Error{Reason: "client_error", Err: scrub(err)}
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "rebound-alert/1")
	if client == nil {
		client = DefaultClient()
	}
	resp, err := client.Do(req)
	if err != nil {
		return &Error{Retry: true, Reason: "network", Err: scrub(err)}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	return Check(resp, answer)
}

// Check classifies a receiver's HTTP answer; answer is (the start of) its body.
func Check(resp *http.Response, answer []byte) error {
	code := resp.StatusCode
	if code/100 == 2 {
		return nil
	}
	msg := Truncate(strings.TrimSpace(string(answer)), 200)
	if msg == "" {
		msg = http.StatusText(code)
	}
	e := &Error{Status: code, Err: errors.New(msg)}
	switch {
	case code == http.StatusTooManyRequests:
		e.Retry, e.Reason = true, "rate_limited"
	case code >= 500:
		e.Retry, e.Reason = true, "server_error"
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		e.Reason = "auth_error"
	default:
		e.Reason = "client_error"
	}
	if e.Retry {
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
	}
	return e
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(min(s, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 && d < time.Hour {
			return d
		}
	}
	return 0
}

// scrub drops the URL from a client error: it may carry a token.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// DefaultClient is the HTTP client receivers use when none is given: a bounded
// timeout so a receiver that hangs cannot hold a delivery forever.
// Redirects are not followed: a receiver's endpoint does not move, and a redirect would
// carry custom auth headers to another host; a 3xx is reported as a client error.
//
// Each client has its own transport: receivers then keep their own connection pools,
// and nothing else in the process that closes the shared default transport's idle
// connections (httptest.Server.Close does) can break a page in flight.
func DefaultClient() *http.Client {
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{
		Timeout:       10 * time.Second,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Secret returns a receiver setting that may come inline or from a file (the
// `<key>_file` twin, for Kubernetes Secrets mounted as files). key names the setting
// in errors; a relative file is read from baseDir (the config file's folder). Both
// set is an error, and so is neither when required.
func Secret(key, value, file, baseDir string, required bool) (string, error) {
	switch {
	case value != "" && file != "":
		return "", fmt.Errorf("%s and %s_file are both set: set one", key, key)
	case file != "":
		if !filepath.IsAbs(file) && baseDir != "" {
			file = filepath.Join(baseDir, file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_file: %w", key, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" && required {
			return "", fmt.Errorf("%s_file: the file is empty", key)
		}
		return v, nil
	case value == "" && required:
		return "", fmt.Errorf("%s (or %s_file): required", key, key)
	}
	return value, nil
}

// CheckURL validates an endpoint URL without echoing it (it may carry a token).
func CheckURL(key, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: not an http(s) URL", key)
	}
	return nil
}

// Truncate cuts s to at most n bytes on a rune boundary, ending with "…" when cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	if cut <= 0 {
		return s[:0]
	}
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Redact removes secrets from the answer text Post copies into its error: a proxy or an
// endpoint that echoes the request (its URL, its headers) must not put a key or a
// webhook token into logs. Secrets of one character or none are ignored (they would
// blank everything). The error chain is kept whenever there is nothing to remove.
func Redact(err error, secrets ...string) error {
	var e *Error
	if !errors.As(err, &e) || e.Err == nil {
		return err
	}
	msg := e.Err.Error()
	clean := msg
	for _, s := range secrets {
		if len(s) > 1 {
			clean = strings.ReplaceAll(clean, s, "[redacted]")
		}
	}
	if clean != msg {
		e.Err = errors.New(clean)
	}
	return err
}

// SecretURL reads a required endpoint URL that is itself a secret (Slack's and Teams'
// webhook URLs, a generic webhook's): inline as `url` or from `url_file`, validated,
// with errors that name whichever key was used and never the URL.
func SecretURL(value, file, baseDir string) (string, error) {
	u, err := Secret("url", strings.TrimSpace(value), file, baseDir, true)
	if err != nil {
		return "", err
	}
	key := "url"
	if file != "" {
		key = "url_file"
	}
	if err := CheckURL(key, u); err != nil {
		return "", err
	}
	return u, nil
}
