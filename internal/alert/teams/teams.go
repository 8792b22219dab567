// Package teams posts Rebound incidents to a Microsoft Teams channel through a
// Workflows (Power Automate) webhook, the replacement for the retired Office 365
// connectors. The message is an Adaptive Card, the one format the "post to a channel
// when a webhook request is received" workflow renders.
package teams

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/alert/receiver"
)

// Bounds on the card's text. Teams refuses a message above about 28 KB, and the
// refusal is a 4xx that is not retried, so long catalog or bounce text is cut
// instead; with these bounds a card stays well under the limit.
const (
	maxTitle = 200
	maxText  = 2000
	maxFact  = 500
)

// Config is the `teams` receiver's YAML settings.
type Config struct {
	// URL is the workflow's HTTP trigger URL. Its sig parameter lets anyone post to the
	// channel, so it is a secret: URLFile reads it from a mounted file.
	URL     string `yaml:"url"`
	URLFile string `yaml:"url_file"`
}

// Prepare reads url_file (relative to baseDir) and validates. Afterwards URL holds the
// webhook and URLFile is empty, so a second Prepare succeeds. Errors name the YAML key
// and never contain the URL.
func (c *Config) Prepare(baseDir string) error {
	u, err := receiver.SecretURL(c.URL, c.URLFile, baseDir)
	if err != nil {
		return err
	}
	c.URL, c.URLFile = u, ""
	return nil
}

// Notifier posts notifications to one Teams workflow.
type Notifier struct {
	cfg     Config
	client  *http.Client
	secrets []string // what to strip from error text: the URL and its secret parts
}

var _ receiver.Receiver = (*Notifier)(nil)

// New returns a Notifier for a prepared Config; a nil client means
// receiver.DefaultClient().
func New(c Config, client *http.Client) *Notifier {
	if client == nil {
		client = receiver.DefaultClient()
	}
	return &Notifier{cfg: c, client: client, secrets: urlSecrets(c.URL)}
}

// Send posts the card for note. The workflow answers 202 once it has queued the run;
// whether the post then reaches the channel is not reported back.
func (n *Notifier) Send(ctx context.Context, note receiver.Notification) error {
	c, err := build(note)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Bounce replies are full of <angle brackets>; the default \u003c escaping would
	// make them six times larger against Teams' size limit, for no benefit.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(message{
		Type: "message",
		Attachments: []attachment{{
			ContentType: "application/vnd.microsoft.card.adaptive",
			Content:     *c,
		}},
	}); err != nil {
		return &receiver.Error{Reason: "encode", Err: err}
	}
	return receiver.Redact(receiver.Post(ctx, n.client, n.cfg.URL, nil, buf.Bytes()), n.secrets...)
}

type message struct {
	Type        string       `json:"type"`
	Attachments []attachment `json:"attachments"`
}

type attachment struct {
	ContentType string `json:"contentType"`
	// ContentURL is always null; the workflow's sample payload has the key, and some
	// flow templates index it.
	ContentURL *string `json:"contentUrl"`
	Content    card    `json:"content"`
}

type card struct {
	Schema  string    `json:"$schema"`
	Type    string    `json:"type"`
	Version string    `json:"version"`
	Body    []element `json:"body"`
	Actions []action  `json:"actions,omitempty"`
	MSTeams msteams   `json:"msteams"`
}

// msteams widens the card to the full message width; the default narrow card wraps
// a summary line into a column.
type msteams struct {
	Width string `json:"width"`
}

// element is a TextBlock or a FactSet.
type element struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	Size     string `json:"size,omitempty"`
	Weight   string `json:"weight,omitempty"`
	Color    string `json:"color,omitempty"`
	FontType string `json:"fontType,omitempty"`
	Wrap     bool   `json:"wrap,omitempty"`
	Facts    []fact `json:"facts,omitempty"`
}

type fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

type action struct {
	Type  string `json:"type"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

func textBlock(s string) element {
	return element{Type: "TextBlock", Text: receiver.Truncate(s, maxText), Wrap: true}
}

// build makes the card. Acknowledge and resolve cards leave out the example and the
// fix: by then the responder has them, and a resolved card should read as closed.
func build(note receiver.Notification) (*card, error) {
	var lead string
	switch note.Kind {
	case receiver.KindTrigger:
	case receiver.KindReminder:
		lead = "Still open: "
	case receiver.KindAck:
		lead = "Acknowledged: "
		if note.AckedBy != "" {
			lead = "Acknowledged by " + note.AckedBy + ": "
		}
	case receiver.KindResolve:
		lead = "Resolved: "
		if note.ResolvedBy != "" {
			lead = "Resolved by " + note.ResolvedBy + ": "
		}
	default:
		// A kind this package does not know is a bug upstream; retrying cannot fix it.
		return nil, &receiver.Error{Reason: "encode", Err: fmt.Errorf("unknown notification kind %q", note.Kind)}
	}

	c := &card{
		Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
		Type:    "AdaptiveCard",
		Version: "1.2", // the newest version every Teams client renders
		MSTeams: msteams{Width: "Full"},
	}
	c.Body = append(c.Body,
		element{
			Type: "TextBlock", Text: receiver.Truncate(title(note), maxTitle),
			Size: "Large", Weight: "Bolder", Wrap: true, Color: color(note),
		},
		textBlock(lead+cmp.Or(note.Summary, "Rebound incident "+note.Class)),
	)
	if f := facts(note); len(f) > 0 {
		c.Body = append(c.Body, element{Type: "FactSet", Facts: f})
	}
	if note.Kind == receiver.KindTrigger || note.Kind == receiver.KindReminder {
		if len(note.Examples) > 0 && note.Examples[0] != "" {
			ex := textBlock(note.Examples[0])
			ex.FontType = "Monospace" // an SMTP reply reads as what it is
			c.Body = append(c.Body, ex)
		}
		if note.Meaning != "" {
			c.Body = append(c.Body, textBlock(note.Meaning))
		}
		if len(note.Fix) > 0 {
			// Adaptive Card markdown numbers a list whose items are separated by \r.
			steps := make([]string, len(note.Fix))
			for i, s := range note.Fix {
				steps[i] = strconv.Itoa(i+1) + ". " + s
			}
			c.Body = append(c.Body, textBlock(strings.Join(steps, "\r")))
		}
	}
	if note.RunbookURL != "" {
		c.Actions = append(c.Actions, action{Type: "Action.OpenUrl", Title: "Runbook", URL: note.RunbookURL})
	}
	if note.IncidentURL != "" {
		c.Actions = append(c.Actions, action{Type: "Action.OpenUrl", Title: "Incident", URL: note.IncidentURL})
	}
	return c, nil
}

// title is the card's first line, e.g. "[CRITICAL] auth_required — mail.example.com".
func title(note receiver.Notification) string {
	var tag string
	switch note.Kind {
	case receiver.KindResolve:
		tag = "RESOLVED"
	case receiver.KindAck:
		tag = "ACKNOWLEDGED"
	default:
		tag = strings.ToUpper(cmp.Or(note.Severity, "alert"))
		if note.Kind == receiver.KindReminder {
			tag += ", STILL OPEN"
		}
	}
	t := "[" + tag + "] " + cmp.Or(note.Class, "incident")
	if d := cmp.Or(note.SendingDomain, note.ReceivingDomain); d != "" {
		t += " — " + d
	}
	return t
}

// color makes the state visible before anything is read: red for what needs someone
// now, amber for a warning, green once resolved, the default colour otherwise.
func color(note receiver.Notification) string {
	if !note.Firing() {
		return "Good"
	}
	switch note.Severity {
	case "critical", "high":
		return "Attention"
	case "warning":
		return "Warning"
	}
	return ""
}

func facts(note receiver.Notification) []fact {
	var out []fact
	add := func(name, value string) {
		if value != "" {
			out = append(out, fact{Title: name, Value: receiver.Truncate(value, maxFact)})
		}
	}
	add("Class", note.Class)
	add("Severity", note.Severity)
	add("State", note.State)
	add("Tenant", note.Tenant)
	add("Code", strings.TrimSpace(note.Code+" "+note.CodeTitle))
	if note.Messages != 0 {
		add("Messages", strconv.FormatInt(note.Messages, 10))
	}
	if note.Recipients != 0 {
		add("Recipients", strconv.FormatInt(note.Recipients, 10))
	}
	add("First seen", when(note.FirstSeen))
	add("Last seen", when(note.LastSeen))
	return out
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// urlSecrets lists the parts of a workflow URL that grant posting: the whole URL, its
// query and the sig signature alone, and its path (the workflow's identity).
func urlSecrets(raw string) []string {
	out := []string{raw}
	if u, err := url.Parse(raw); err == nil {
		out = append(out, u.RawQuery, u.Query().Get("sig"), u.Path)
		// The signature as written in the URL too, in case it is percent-encoded.
		for _, kv := range strings.Split(u.RawQuery, "&") {
			if v, ok := strings.CutPrefix(kv, "sig="); ok {
				out = append(out, v)
			}
		}
	}
	return out
}
