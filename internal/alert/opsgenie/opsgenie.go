// Package opsgenie pages through the Opsgenie Alert API for teams whose on-call
// rotation still lives in Opsgenie: it opens one alert per incident, keyed by an alias
// derived from the incident ID so the acknowledgement and the close land on the same
// alert. Atlassian is retiring Opsgenie (no new sales since June 2025; its REST API
// stops working on 5 April 2027), so treat this receiver as a bridge for existing
// users, not a choice for new installations: it goes when the API does.
package opsgenie

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/alert/receiver"
)

// DefaultURL is Opsgenie's US API; EU accounts use https://api.eu.opsgenie.com.
const DefaultURL = "https://api.opsgenie.com"

// Opsgenie's documented limits. A request over one is refused with 422, which is not
// retried, so an oversized field would cost the page: every field is cut to fit.
const (
	maxMessage     = 130
	maxAlias       = 512
	maxDescription = 15000
	maxEntity      = 512
	maxUser        = 100
	maxNote        = 25000
	maxTags        = 20
	maxTag         = 50
	// Details are limited to 8000 characters in total; a dozen keys of at most 512
	// bytes each stays under it.
	maxDetail = 512
	// builtinTags is how many tags Rebound adds itself (class, severity, tenant).
	builtinTags = 3
)

// Config is one Opsgenie receiver as written in the alert configuration.
type Config struct {
	URL        string      `yaml:"url"`
	APIKey     string      `yaml:"api_key"`
	APIKeyFile string      `yaml:"api_key_file"`
	Responders []Responder `yaml:"responders"`
	Tags       []string    `yaml:"tags"`
}

// Responder routes the alert to a team, user, escalation or schedule. Opsgenie names a
// user by id or username and the others by id or name.
type Responder struct {
	Type     string `yaml:"type" json:"type"`
	ID       string `yaml:"id" json:"id,omitempty"`
	Name     string `yaml:"name" json:"name,omitempty"`
	Username string `yaml:"username" json:"username,omitempty"`
}

// Prepare applies the default URL, reads api_key_file (relative to baseDir) and
// validates. Afterwards APIKey holds the key and APIKeyFile is empty, so Prepare can
// run again on its own output. No error carries the key.
func (c *Config) Prepare(baseDir string) error {
	u := strings.TrimRight(c.URL, "/")
	if u == "" {
		u = DefaultURL
	}
	if err := receiver.CheckURL("url", u); err != nil {
		return err
	}
	// The API paths are appended to the URL, which a query or fragment would swallow.
	if strings.ContainsAny(u, "?#") {
		return errors.New("url: must not have a query or fragment")
	}
	key, err := receiver.Secret("api_key", c.APIKey, c.APIKeyFile, baseDir, true)
	if err != nil {
		return err
	}
	if strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		// It goes into a header; caught here it is a start-up error, not a lost page.
		return errors.New("api_key: contains whitespace or a control character")
	}
	for i, r := range c.Responders {
		if err := r.check(); err != nil {
			return fmt.Errorf("responders[%d]%w", i, err)
		}
	}
	if len(c.Tags) > maxTags-builtinTags {
		return fmt.Errorf("tags: at most %d (Opsgenie keeps %d per alert and Rebound adds %d)", maxTags-builtinTags, maxTags, builtinTags)
	}
	for i, tag := range c.Tags {
		switch {
		case strings.TrimSpace(tag) == "":
			return fmt.Errorf("tags[%d]: empty", i)
		case len(tag) > maxTag:
			return fmt.Errorf("tags[%d]: longer than %d bytes", i, maxTag)
		}
	}
	c.URL, c.APIKey, c.APIKeyFile = u, key, ""
	return nil
}

// check validates r; its error starts with the field so the caller can prefix the
// index.
func (r Responder) check() error {
	switch r.Type {
	case "team", "escalation", "schedule":
		if r.Username != "" {
			return fmt.Errorf(".username: a %s is named by id or name", r.Type)
		}
		if r.ID == "" && r.Name == "" {
			return fmt.Errorf(": a %s needs id or name", r.Type)
		}
	case "user":
		if r.Name != "" {
			return errors.New(".name: a user is named by id or username")
		}
		if r.ID == "" && r.Username == "" {
			return errors.New(": a user needs id or username")
		}
	case "":
		return errors.New(".type: required (team, user, escalation or schedule)")
	default:
		return fmt.Errorf(".type: %q is not one of team, user, escalation, schedule", r.Type)
	}
	return nil
}

// Notifier sends notifications to one Opsgenie account.
type Notifier struct {
	base       string // the API root, without a trailing slash
	auth       string // the Authorization header value
	responders []Responder
	tags       []string
	client     *http.Client
}

var _ receiver.Receiver = (*Notifier)(nil)

// New returns the Notifier for a prepared c. A nil client means
// receiver.DefaultClient().
func New(c Config, client *http.Client) *Notifier {
	if client == nil {
		client = receiver.DefaultClient()
	}
	base := strings.TrimRight(c.URL, "/")
	if base == "" {
		base = DefaultURL
	}
	return &Notifier{
		base:       base,
		auth:       "GenieKey " + c.APIKey,
		responders: slices.Clone(c.Responders),
		tags:       slices.Clone(c.Tags),
		client:     client,
	}
}

// Send creates the alert for a trigger or a reminder, and acknowledges or closes it
// for an ack or a resolve.
//
// A reminder posts the same alert again: while the alert is open Opsgenie
// deduplicates on the alias and only raises its count, and if the alert was closed in
// Opsgenie meanwhile it opens a new one, which is what a reminder for a still-open
// incident should do.
func (n *Notifier) Send(ctx context.Context, note receiver.Notification) error {
	if note.ID == "" {
		// Every incident would share the alias "rebound-" and close each other.
		return &receiver.Error{Reason: "encode", Err: errors.New("notification has no incident ID")}
	}
	a := alias(note.ID)
	var (
		path    string
		payload any
	)
	switch note.Kind {
	case receiver.KindTrigger, receiver.KindReminder:
		path, payload = "/v2/alerts", n.create(note, a)
	case receiver.KindAck:
		path = "/v2/alerts/" + url.PathEscape(a) + "/acknowledge?identifierType=alias"
		payload = action{Source: "rebound", User: receiver.Truncate(note.AckedBy, maxUser), Note: ackNote(note)}
	case receiver.KindResolve:
		path = "/v2/alerts/" + url.PathEscape(a) + "/close?identifierType=alias"
		payload = action{Source: "rebound", Note: resolveNote(note)}
	default:
		return &receiver.Error{Reason: "encode", Err: fmt.Errorf("unknown notification kind %q", note.Kind)}
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return &receiver.Error{Reason: "encode", Err: err}
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Authorization", n.auth)
	// Opsgenie answers 202: the request is queued, not yet applied. Post counts any
	// 2xx as delivered, which is all Opsgenie promises synchronously.
	return receiver.Post(ctx, n.client, n.base+path, h, body)
}

// alias is the incident's Opsgenie identity. An ID too long for the alias is hashed
// rather than cut, so two long IDs sharing a prefix stay two alerts.
func alias(id string) string {
	a := "rebound-" + id
	if len(a) > maxAlias {
		sum := sha256.Sum256([]byte(id))
		a = "rebound-" + hex.EncodeToString(sum[:])
	}
	return a
}

// createAlert is the body of POST /v2/alerts.
type createAlert struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias"`
	Description string            `json:"description,omitempty"`
	Responders  []Responder       `json:"responders,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
	Entity      string            `json:"entity,omitempty"`
	Source      string            `json:"source"`
	Priority    string            `json:"priority"`
}

// action is the body of the acknowledge and close calls.
type action struct {
	Source string `json:"source"`
	User   string `json:"user,omitempty"`
	Note   string `json:"note,omitempty"`
}

func (n *Notifier) create(note receiver.Notification, alias string) createAlert {
	msg := note.Summary
	if strings.TrimSpace(msg) == "" {
		// message is the one field Opsgenie requires.
		msg = strings.Join(slices.DeleteFunc([]string{"Rebound incident", note.Class, firstNonEmpty(note.SendingDomain, note.ReceivingDomain)}, func(s string) bool { return s == "" }), " ")
	}
	return createAlert{
		Message:     receiver.Truncate(strings.TrimSpace(msg), maxMessage),
		Alias:       alias,
		Description: receiver.Truncate(description(note), maxDescription),
		Responders:  n.responders,
		Tags:        n.tagsFor(note),
		Details:     details(note),
		Entity:      receiver.Truncate(firstNonEmpty(note.SendingDomain, note.ReceivingDomain), maxEntity),
		Source:      "rebound",
		Priority:    priority(note.Severity),
	}
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func priority(severity string) string {
	switch severity {
	case "critical":
		return "P1"
	case "high":
		return "P2"
	case "warning":
		return "P3"
	}
	// P5 rather than Opsgenie's default P3: an unknown severity should not outrank a
	// known warning in someone's routing rules.
	return "P5"
}

func (n *Notifier) tagsFor(note receiver.Notification) []string {
	tags := make([]string, 0, builtinTags+len(n.tags))
	add := func(t string) {
		t = receiver.Truncate(t, maxTag)
		if t != "" && !slices.Contains(tags, t) && len(tags) < maxTags {
			tags = append(tags, t)
		}
	}
	add(note.Class)
	add(note.Severity)
	if note.Tenant != "" {
		add("tenant:" + note.Tenant)
	}
	for _, t := range n.tags {
		add(t)
	}
	return tags
}

func details(note receiver.Notification) map[string]string {
	d := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			d[k] = receiver.Truncate(v, maxDetail)
		}
	}
	count := func(k string, v int64) {
		if v != 0 {
			d[k] = strconv.FormatInt(v, 10)
		}
	}
	when := func(k string, t time.Time) {
		if !t.IsZero() {
			d[k] = t.UTC().Format(time.RFC3339)
		}
	}
	set("class", note.Class)
	set("code", note.Code)
	set("code_title", note.CodeTitle)
	set("tenant", note.Tenant)
	set("sending_domain", note.SendingDomain)
	set("sending_ip", note.SendingIP)
	count("messages", note.Messages)
	count("recipients", note.Recipients)
	when("first_seen", note.FirstSeen)
	when("last_seen", note.LastSeen)
	set("runbook_url", note.RunbookURL)
	set("incident_url", note.IncidentURL)
	return d
}

// description is what the responder reads on the alert page: the summary, then what
// the receiving servers said, what it means and what to do, so the page is actionable
// without opening Rebound.
func description(note receiver.Notification) string {
	var b strings.Builder
	para := func() {
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
	}
	if note.Summary != "" {
		b.WriteString(note.Summary)
	}
	if len(note.Examples) > 0 {
		para()
		b.WriteString("Example replies:")
		for _, e := range note.Examples {
			b.WriteString("\n- ")
			b.WriteString(e)
		}
	}
	if note.Meaning != "" {
		para()
		b.WriteString("What it means: ")
		b.WriteString(note.Meaning)
	}
	if len(note.Fix) > 0 {
		para()
		b.WriteString("How to fix:")
		for i, f := range note.Fix {
			fmt.Fprintf(&b, "\n%d. %s", i+1, f)
		}
	}
	if note.RunbookURL != "" || note.IncidentURL != "" {
		para()
		if note.RunbookURL != "" {
			b.WriteString("Runbook: " + note.RunbookURL)
		}
		if note.IncidentURL != "" {
			if note.RunbookURL != "" {
				b.WriteString("\n")
			}
			b.WriteString("Incident: " + note.IncidentURL)
		}
	}
	return b.String()
}

func ackNote(note receiver.Notification) string {
	if note.AckedBy == "" {
		return "Acknowledged in Rebound."
	}
	return receiver.Truncate("Acknowledged in Rebound by "+note.AckedBy+".", maxNote)
}

func resolveNote(note receiver.Notification) string {
	var s string
	switch {
	case note.ResolvedBy != "":
		s = "Resolved: by " + note.ResolvedBy + " in Rebound"
	case !note.LastSeen.IsZero():
		s = "Resolved: no new bounces since " + note.LastSeen.UTC().Format(time.RFC3339)
	default:
		s = "Resolved: in Rebound"
	}
	if !note.ResolvedAt.IsZero() {
		s += " (at " + note.ResolvedAt.UTC().Format(time.RFC3339) + ")"
	}
	return receiver.Truncate(s+".", maxNote)
}
