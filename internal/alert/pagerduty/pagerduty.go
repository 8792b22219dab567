// Package pagerduty sends Rebound incidents to the PagerDuty Events API v2, the path
// by which a sender-side incident (our own credentials rejected, our IP blocked)
// actually wakes someone up. Every transition of one incident uses the same dedup key,
// so PagerDuty keeps a single alert that Rebound opens, acknowledges and resolves.
package pagerduty

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/alert/receiver"
)

// DefaultURL is the Events API v2 endpoint for PagerDuty's US service region.
const DefaultURL = "https://events.pagerduty.com/v2/enqueue"

// Limits PagerDuty enforces; a longer value makes it reject the whole event with 400,
// which is not retried, so the page would be lost rather than merely shortened.
const (
	maxSummary  = 1024
	maxDedupKey = 255
)

// Config is the `pagerduty` receiver's YAML settings.
type Config struct {
	// URL is the Events API endpoint; set it for the EU service region
	// (https://events.eu.pagerduty.com/v2/enqueue) or a proxy.
	URL string `yaml:"url"`
	// RoutingKey is the integration key of the PagerDuty service (or event
	// orchestration). It is a secret: RoutingKeyFile reads it from a mounted file.
	RoutingKey     string `yaml:"routing_key"`
	RoutingKeyFile string `yaml:"routing_key_file"`
	// Source overrides the payload's source; by default it is the incident's sending
	// domain, else its receiving domain, else "rebound".
	Source string `yaml:"source"`
}

// Prepare applies defaults, reads routing_key_file (relative to baseDir) and
// validates. Afterwards RoutingKey holds the key and RoutingKeyFile is empty, so a
// second Prepare sees one source and succeeds. Errors name the YAML key and never
// contain the key or the URL.
func (c *Config) Prepare(baseDir string) error {
	c.URL = strings.TrimSpace(c.URL)
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if err := receiver.CheckURL("url", c.URL); err != nil {
		return err
	}
	key, err := receiver.Secret("routing_key", strings.TrimSpace(c.RoutingKey), c.RoutingKeyFile, baseDir, true)
	if err != nil {
		return err
	}
	if strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		// A key pasted with a line break would be rejected by PagerDuty at the first
		// page, long after the config was accepted; here it is a start-up error.
		return errors.New("routing_key: contains whitespace or a control character")
	}
	c.RoutingKey, c.RoutingKeyFile = key, ""
	c.Source = strings.TrimSpace(c.Source)
	return nil
}

// Notifier sends notifications to one PagerDuty service.
type Notifier struct {
	cfg    Config
	client *http.Client
}

var _ receiver.Receiver = (*Notifier)(nil)

// New returns a Notifier for a prepared Config; a nil client means
// receiver.DefaultClient().
func New(c Config, client *http.Client) *Notifier {
	if client == nil {
		client = receiver.DefaultClient()
	}
	return &Notifier{cfg: c, client: client}
}

// Send posts the event for note. Trigger and reminder both send "trigger": for an
// alert that is already open PagerDuty only adds the event to its log, so a reminder
// refreshes the details without paging twice.
func (n *Notifier) Send(ctx context.Context, note receiver.Notification) error {
	ev, err := n.event(note)
	if err != nil {
		return err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return &receiver.Error{Reason: "encode", Err: err}
	}
	return receiver.Redact(receiver.Post(ctx, n.client, n.cfg.URL, nil, body), n.cfg.RoutingKey)
}

// event is an Events API v2 request body.
type event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key"`
	Payload     *payload `json:"payload,omitempty"`
	Client      string   `json:"client,omitempty"`
	ClientURL   string   `json:"client_url,omitempty"`
	Links       []link   `json:"links,omitempty"`
}

type payload struct {
	Summary       string  `json:"summary"`
	Source        string  `json:"source"`
	Severity      string  `json:"severity"`
	Timestamp     string  `json:"timestamp,omitempty"`
	Component     string  `json:"component,omitempty"`
	Group         string  `json:"group,omitempty"`
	Class         string  `json:"class,omitempty"`
	CustomDetails details `json:"custom_details"`
}

// details is what PagerDuty shows under "Custom Details": the facts a responder needs
// without opening Rebound.
type details struct {
	Code             string   `json:"code,omitempty"`
	CodeTitle        string   `json:"code_title,omitempty"`
	Messages         int64    `json:"messages"`
	Recipients       int64    `json:"recipients"`
	FirstSeen        string   `json:"first_seen,omitempty"`
	LastSeen         string   `json:"last_seen,omitempty"`
	Examples         []string `json:"examples,omitempty"`
	ReceivingDomains []string `json:"receiving_domains,omitempty"`
	Meaning          string   `json:"meaning,omitempty"`
	Fix              []string `json:"fix,omitempty"`
	RunbookURL       string   `json:"runbook_url,omitempty"`
	State            string   `json:"state,omitempty"`
	Reopened         int64    `json:"reopened"`
}

type link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

func (n *Notifier) event(note receiver.Notification) (*event, error) {
	ev := &event{
		RoutingKey: n.cfg.RoutingKey,
		DedupKey:   receiver.Truncate("rebound-"+note.ID, maxDedupKey),
	}
	switch note.Kind {
	case receiver.KindAck:
		ev.EventAction = "acknowledge"
		return ev, nil
	case receiver.KindResolve:
		ev.EventAction = "resolve"
		return ev, nil
	case receiver.KindTrigger, receiver.KindReminder:
		ev.EventAction = "trigger"
	default:
		// A kind this package does not know is a bug upstream; retrying cannot fix it.
		return nil, &receiver.Error{Reason: "encode", Err: fmt.Errorf("unknown notification kind %q", note.Kind)}
	}

	domain := cmp.Or(note.SendingDomain, note.ReceivingDomain)
	summary := note.Summary
	if summary == "" {
		// PagerDuty rejects an event without a summary; a bare page beats none.
		summary = strings.TrimSpace("Rebound incident " + note.Class + " " + domain)
	}
	ev.Payload = &payload{
		Summary:   receiver.Truncate(summary, maxSummary),
		Source:    cmp.Or(n.cfg.Source, domain, "rebound"),
		Severity:  severity(note.Severity),
		Timestamp: stamp(note.At),
		Component: domain,
		Group:     note.Tenant,
		Class:     note.Class,
		CustomDetails: details{
			Code:             note.Code,
			CodeTitle:        note.CodeTitle,
			Messages:         note.Messages,
			Recipients:       note.Recipients,
			FirstSeen:        stamp(note.FirstSeen),
			LastSeen:         stamp(note.LastSeen),
			Examples:         note.Examples,
			ReceivingDomains: note.ReceivingDomains,
			Meaning:          note.Meaning,
			Fix:              note.Fix,
			RunbookURL:       note.RunbookURL,
			State:            note.State,
			Reopened:         note.Reopened,
		},
	}
	ev.Client = "Rebound"
	ev.ClientURL = note.IncidentURL
	if note.RunbookURL != "" {
		ev.Links = append(ev.Links, link{Href: note.RunbookURL, Text: "Runbook"})
	}
	if note.IncidentURL != "" {
		ev.Links = append(ev.Links, link{Href: note.IncidentURL, Text: "Incident in Rebound"})
	}
	return ev, nil
}

// severity maps Rebound's severities onto the four PagerDuty accepts; PagerDuty
// rejects any other value, so an unknown one degrades to info instead.
func severity(s string) string {
	switch s {
	case "critical":
		return "critical"
	case "high":
		return "error"
	case "warning":
		return "warning"
	default:
		return "info"
	}
}

// stamp formats t as RFC 3339 in UTC, or "" for the zero time so that the field is
// left out instead of claiming the year 1.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
