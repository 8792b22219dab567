// Package alertmanager sends Rebound incidents to a Prometheus Alertmanager through its
// v2 API (POST /api/v2/alerts), for teams whose paging, silencing and routing already
// live there. Each incident is one Alertmanager alert: its labels are the same for
// every transition, so Alertmanager sees one alert that Rebound keeps firing and then
// resolves, and its grouping, inhibition and silences apply as to any other alert.
//
// Alertmanager has no notion of acknowledgement, so an ack sends nothing; silence the
// alert in Alertmanager (matching incident="<id>") to stop its repeats.
package alertmanager

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/alert/receiver"
)

// DefaultFiringTTL is how long a firing alert stays active in Alertmanager without
// hearing from Rebound again.
const DefaultFiringTTL = "24h"

// apiPath is the v2 endpoint that accepts alerts, appended to the configured base URL.
const apiPath = "/api/v2/alerts"

// Alert names: one for the sender-side incidents (our credentials, our IP, our
// domain), one for a receiving domain bouncing much of what we send, so that routes
// can tell the two apart without knowing Rebound's classes.
const (
	AlertSenderIncident = "ReboundSenderIncident"
	AlertMassBounce     = "ReboundMassBounce"
)

// Bounds on annotation text. Alertmanager stores and forwards every annotation to every
// notification it sends; an example reply or a catalog entry gone wild should not
// make each email, chat message or webhook it triggers huge.
const (
	maxSummary     = 1024
	maxDescription = 4096
	maxExample     = 1024
)

// Config is the `alertmanager` receiver's YAML settings.
//
// The alert's endsAt is set firing_ttl ahead at every trigger and reminder; without a
// fresh endsAt Alertmanager resolves an alert by itself after its resolve_timeout
// (5m by default). The policy's reminder interval must therefore stay below
// firing_ttl, or Alertmanager will mark a still-open incident resolved between two
// reminders. If Rebound stops (or loses the incident), the alert resolves itself at
// most firing_ttl after the last trigger or reminder: a stale page does not fire
// forever.
type Config struct {
	// URL is Alertmanager's base URL, e.g. http://alertmanager:9093 (or with its
	// --web.route-prefix); /api/v2/alerts is appended unless the path ends with it.
	URL string `yaml:"url"`
	// Labels are static labels added to every alert, e.g. team or cluster, for
	// Alertmanager's routes. They never override the labels Rebound sets (alertname,
	// severity, class, incident, and tenant, sending_domain, sending_ip,
	// receiving_domain when the incident has them); naming one of the first four is a
	// configuration error, while one of the others only applies to incidents that lack
	// it.
	Labels map[string]string `yaml:"labels"`
	// FiringTTL is how far ahead of each trigger or reminder endsAt is set (a Go
	// duration, default 24h). See the type's comment.
	FiringTTL string `yaml:"firing_ttl"`
	// Username and Password are HTTP basic auth, for an Alertmanager behind a proxy
	// that asks for it (Alertmanager's own --web.config.file basic_auth_users too).
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// BearerToken is sent as "Authorization: Bearer <token>"; not together with basic
	// auth.
	BearerToken     string `yaml:"bearer_token"`
	BearerTokenFile string `yaml:"bearer_token_file"`

	// ttl is FiringTTL parsed by Prepare.
	ttl time.Duration
}

// fixedLabels are the labels Rebound always sets; a configured label of the same name
// could never take effect.
var fixedLabels = []string{"alertname", "severity", "class", "incident"}

// labelName is Prometheus' classic label-name syntax. Alertmanager accepts more since
// UTF-8 names arrived, but not every tool downstream of it (amtool matchers, older
// webhooks' templates) does; the classic syntax works everywhere.
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Prepare applies defaults, reads password_file and bearer_token_file (relative to
// baseDir) and validates. Afterwards Password and BearerToken hold the secrets and the
// _file fields are empty, so a second Prepare sees one source and succeeds. Errors name
// the YAML key and never contain a secret or the URL.
func (c *Config) Prepare(baseDir string) error {
	c.URL = strings.TrimSpace(c.URL)
	if c.URL == "" {
		return errors.New("url: required (Alertmanager's base URL, e.g. http://alertmanager:9093)")
	}
	if err := receiver.CheckURL("url", c.URL); err != nil {
		return err
	}

	c.FiringTTL = strings.TrimSpace(c.FiringTTL)
	if c.FiringTTL == "" {
		c.FiringTTL = DefaultFiringTTL
	}
	ttl, err := time.ParseDuration(c.FiringTTL)
	if err != nil {
		return fmt.Errorf("firing_ttl: %q is not a duration (e.g. 24h)", c.FiringTTL)
	}
	// Under a minute the alert would flap between reminders of any sensible policy.
	if ttl < time.Minute {
		return fmt.Errorf("firing_ttl: %s is shorter than 1m", c.FiringTTL)
	}
	c.ttl = ttl

	for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
		switch {
		case !labelName.MatchString(k):
			return fmt.Errorf("labels: %q is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", k)
		case strings.HasPrefix(k, "__"):
			return fmt.Errorf("labels: %q: names starting with __ are reserved", k)
		case slices.Contains(fixedLabels, k):
			return fmt.Errorf("labels: %q is set by Rebound on every alert and cannot be configured", k)
		case c.Labels[k] == "":
			// An empty label is the same as no label to Alertmanager's matchers.
			return fmt.Errorf("labels: %q has an empty value", k)
		}
	}

	c.Username = strings.TrimSpace(c.Username)
	password, err := receiver.Secret("password", c.Password, c.PasswordFile, baseDir, false)
	if err != nil {
		return err
	}
	token, err := receiver.Secret("bearer_token", strings.TrimSpace(c.BearerToken), c.BearerTokenFile, baseDir, false)
	if err != nil {
		return err
	}
	basic := c.Username != "" || password != ""
	switch {
	case basic && token != "":
		return errors.New("username/password and bearer_token are both set: set one kind of authentication")
	case c.Username != "" && password == "":
		return errors.New("username is set without password (or password_file)")
	case c.Username == "" && password != "":
		return errors.New("password is set without username")
	case strings.ContainsAny(token, " \t\r\n"):
		// A token pasted with a line break cannot go in a header; say so now rather
		// than at the first page.
		return errors.New("bearer_token: contains whitespace")
	case strings.ContainsAny(c.Username, ":\r\n"):
		return errors.New("username: contains ':' or a line break")
	}
	c.Password, c.PasswordFile = password, ""
	c.BearerToken, c.BearerTokenFile = token, ""
	return nil
}

// Notifier sends notifications to one Alertmanager (or an HA pair behind one URL).
type Notifier struct {
	endpoint string
	header   http.Header
	labels   map[string]string
	ttl      time.Duration
	secrets  []string // to scrub from error text
	client   *http.Client
}

var _ receiver.Receiver = (*Notifier)(nil)

// New returns a Notifier for a prepared Config; a nil client means
// receiver.DefaultClient().
func New(c Config, client *http.Client) *Notifier {
	if client == nil {
		client = receiver.DefaultClient()
	}
	ttl := c.ttl
	if ttl <= 0 {
		// A Config built in code without Prepare: take what it says, else the default.
		if d, err := time.ParseDuration(c.FiringTTL); err == nil && d > 0 {
			ttl = d
		} else {
			ttl, _ = time.ParseDuration(DefaultFiringTTL)
		}
	}
	n := &Notifier{
		endpoint: endpoint(c.URL),
		header:   http.Header{},
		labels:   maps.Clone(c.Labels),
		ttl:      ttl,
		client:   client,
	}
	switch {
	case c.BearerToken != "":
		n.header.Set("Authorization", "Bearer "+c.BearerToken)
		n.secrets = append(n.secrets, c.BearerToken)
	case c.Username != "" || c.Password != "":
		enc := base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))
		n.header.Set("Authorization", "Basic "+enc)
		n.secrets = append(n.secrets, c.Password, enc)
	}
	return n
}

// endpoint turns the configured base URL into the alerts endpoint. A URL that does not
// parse is passed on as it is: Prepare has refused it already, and Post will fail
// without echoing it.
func endpoint(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return raw
	}
	// Work on the escaped path so that an encoded character in a route prefix
	// (a%2Fb) stays encoded.
	p := strings.TrimRight(u.EscapedPath(), "/")
	if !strings.HasSuffix(p, apiPath) {
		p += apiPath
	}
	unescaped, err := url.PathUnescape(p)
	if err != nil {
		return raw
	}
	u.Path, u.RawPath = unescaped, p
	return u.String()
}

// Send posts note as one alert. Trigger and reminder post it firing, with endsAt
// firing_ttl ahead; resolve posts the same labels with endsAt at the resolve time,
// which Alertmanager takes as resolved; ack sends nothing.
func (n *Notifier) Send(ctx context.Context, note receiver.Notification) error {
	if note.Kind == receiver.KindAck {
		return nil
	}
	a, err := n.alert(note, time.Now())
	if err != nil {
		return err
	}
	body, err := json.Marshal([]postableAlert{a})
	if err != nil {
		return &receiver.Error{Reason: "encode", Err: err}
	}
	return receiver.Redact(receiver.Post(ctx, n.client, n.endpoint, n.header, body), n.secrets...)
}

// postableAlert is one element of the body of POST /api/v2/alerts.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func (n *Notifier) alert(note receiver.Notification, now time.Time) (postableAlert, error) {
	at := note.At
	if at.IsZero() {
		at = now
	}
	starts := note.FirstSeen
	if starts.IsZero() {
		starts = at
	}
	var ends time.Time
	switch note.Kind {
	case receiver.KindTrigger, receiver.KindReminder:
		ends = at.Add(n.ttl)
	case receiver.KindResolve:
		ends = note.ResolvedAt
		if ends.IsZero() {
			ends = at
		}
	default:
		// A kind this package does not know is a bug upstream; retrying cannot fix it.
		return postableAlert{}, &receiver.Error{Reason: "encode", Err: fmt.Errorf("unknown notification kind %q", note.Kind)}
	}
	// Alertmanager refuses the whole request when endsAt is before startsAt; clocks of
	// two Rebound replicas may disagree by that much, and the page matters more.
	if ends.Before(starts) {
		ends = starts
	}
	return postableAlert{
		Labels:       n.labelSet(note),
		Annotations:  annotations(note),
		StartsAt:     starts.UTC(),
		EndsAt:       ends.UTC(),
		GeneratorURL: note.IncidentURL,
	}, nil
}

// labelSet is the alert's identity in Alertmanager: only values that stay the same for
// the incident's whole life (so that trigger, reminders and resolve hit one alert) and
// that have few distinct values (they become Alertmanager's group keys and metrics).
// Counts, examples and times go into annotations instead.
func (n *Notifier) labelSet(note receiver.Notification) map[string]string {
	l := make(map[string]string, len(n.labels)+8)
	// Configured labels first, so that Rebound's own overwrite them.
	maps.Copy(l, n.labels)
	set := func(k, v string) {
		if v != "" {
			l[k] = v
		}
	}
	name := AlertSenderIncident
	if note.Class == "mass_bounce" {
		name = AlertMassBounce
	}
	l["alertname"] = name
	set("severity", note.Severity)
	set("class", note.Class)
	set("incident", note.ID)
	set("tenant", note.Tenant)
	set("sending_domain", note.SendingDomain)
	set("sending_ip", note.SendingIP)
	set("receiving_domain", note.ReceivingDomain)
	return l
}

// annotations carry what a responder reads: Alertmanager's templates and most of its
// integrations show summary and description, and link runbook_url.
func annotations(note receiver.Notification) map[string]string {
	a := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			a[k] = v
		}
	}
	set("summary", receiver.Truncate(note.Summary, maxSummary))
	set("description", receiver.Truncate(description(note), maxDescription))
	if len(note.Examples) > 0 {
		set("example", receiver.Truncate(note.Examples[0], maxExample))
	}
	set("runbook_url", note.RunbookURL)
	set("incident_url", note.IncidentURL)
	if note.Messages > 0 {
		a["messages"] = strconv.FormatInt(note.Messages, 10)
	}
	if note.Recipients > 0 {
		a["recipients"] = strconv.FormatInt(note.Recipients, 10)
	}
	return a
}

// description is the catalog's meaning of the code followed by its fix steps, numbered
// so that a responder can say "step 2 did it".
func description(note receiver.Notification) string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(note.Meaning))
	steps := 0
	for _, f := range note.Fix {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if steps == 0 {
			if b.Len() > 0 {
				b.WriteString("\n\n")
			}
			b.WriteString("Fix:")
		}
		steps++
		fmt.Fprintf(&b, "\n%d. %s", steps, f)
	}
	return b.String()
}
