// Package slack posts Rebound incidents to a Slack channel through an incoming
// webhook, for teams that watch a channel rather than carry a pager. A firing message
// carries what is needed to act without opening Rebound (the code, an example reply,
// what it means and how to fix it); acknowledge and resolve messages stay short.
package slack

import (
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

// Limits of Slack's Block Kit; a message that breaks one is refused with 400
// (invalid_blocks), which is not retried, so the alert would be lost.
const (
	maxHeader = 150  // header block plain_text
	maxText   = 3000 // section and context text
	maxField  = 2000 // one section field
	maxFields = 10   // fields in one section
)

// Config is the `slack` receiver's YAML settings.
type Config struct {
	// URL is the incoming webhook URL. Anyone holding it can post to the channel, so
	// it is a secret: URLFile reads it from a mounted file.
	URL     string `yaml:"url"`
	URLFile string `yaml:"url_file"`
	// Username and IconEmoji override the webhook's name and icon where the Slack app
	// still allows it; they are sent only when set.
	Username  string `yaml:"username"`
	IconEmoji string `yaml:"icon_emoji"`
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
	c.Username, c.IconEmoji = strings.TrimSpace(c.Username), strings.TrimSpace(c.IconEmoji)
	return nil
}

// Notifier posts notifications to one Slack webhook.
type Notifier struct {
	cfg     Config
	client  *http.Client
	secrets []string // what to strip from error text: the URL and its token parts
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

// Send posts the message for note.
func (n *Notifier) Send(ctx context.Context, note receiver.Notification) error {
	m, err := n.message(note)
	if err != nil {
		return err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return &receiver.Error{Reason: "encode", Err: err}
	}
	return receiver.Redact(receiver.Post(ctx, n.client, n.cfg.URL, nil, body), n.secrets...)
}

type message struct {
	Text      string  `json:"text"`
	Blocks    []block `json:"blocks"`
	Username  string  `json:"username,omitempty"`
	IconEmoji string  `json:"icon_emoji,omitempty"`
}

// block covers the three block types used here: header, section and context.
type block struct {
	Type     string `json:"type"`
	Text     *text  `json:"text,omitempty"`
	Fields   []text `json:"fields,omitempty"`
	Elements []text `json:"elements,omitempty"`
}

type text struct {
	Type  string `json:"type"` // plain_text | mrkdwn
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

func mrkdwn(s string) text { return text{Type: "mrkdwn", Text: s} }

func section(s string) block {
	t := mrkdwn(clip(s, maxText))
	return block{Type: "section", Text: &t}
}

// message builds the payload. The blocks are a fixed sequence of at most seven, far
// under Slack's limit of 50, so no count check is needed.
func (n *Notifier) message(note receiver.Notification) (*message, error) {
	var lead string // what the plain-text fallback and the first section open with
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
	default:
		// A kind this package does not know is a bug upstream; retrying cannot fix it.
		return nil, &receiver.Error{Reason: "encode", Err: fmt.Errorf("unknown notification kind %q", note.Kind)}
	}
	summary := cmp.Or(note.Summary, "Rebound incident "+note.Class)
	m := &message{
		// The fallback is what notifications and screen readers show; it is parsed
		// as mrkdwn too, so it needs the same escaping.
		Text:      clip(escape(lead+summary), maxText),
		Username:  n.cfg.Username,
		IconEmoji: n.cfg.IconEmoji,
	}
	header := text{Type: "plain_text", Text: receiver.Truncate(title(note), maxHeader), Emoji: true}
	m.Blocks = append(m.Blocks, block{Type: "header", Text: &header})

	first := escape(lead + summary)
	if note.Kind == receiver.KindResolve && note.ResolvedBy != "" {
		first += "\n_Resolved by " + escape(note.ResolvedBy) + "_"
	}
	m.Blocks = append(m.Blocks, section(first))

	if note.Firing() && note.Kind != receiver.KindAck {
		m.Blocks = append(m.Blocks, details(note)...)
	}
	if links := links(note); len(links) > 0 {
		m.Blocks = append(m.Blocks, block{Type: "context", Elements: links})
	}
	return m, nil
}

// title is the header line, e.g. "[CRITICAL] auth_required — mail.example.com".
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

// details are the blocks that let a responder act from the channel: the facts, the
// first example reply, what the code means and the fix steps.
func details(note receiver.Notification) []block {
	var out []block
	var fields []text
	add := func(name, value string) {
		if value != "" && len(fields) < maxFields {
			fields = append(fields, mrkdwn(clip("*"+name+"*\n"+escape(value), maxField)))
		}
	}
	add("Class", note.Class)
	add("Severity", note.Severity)
	add("Tenant", note.Tenant)
	add("Code", strings.TrimSpace(note.Code+" "+note.CodeTitle))
	add("Messages", count(note.Messages))
	add("Recipients", count(note.Recipients))
	add("First seen", when(note.FirstSeen))
	add("Last seen", when(note.LastSeen))
	if len(fields) > 0 {
		out = append(out, block{Type: "section", Fields: fields})
	}
	if len(note.Examples) > 0 && note.Examples[0] != "" {
		// A reply could itself contain a fence; breaking it would end the code
		// block early and format the rest.
		ex := strings.ReplaceAll(note.Examples[0], "```", "'''")
		const head, fence = "*Example reply*\n```", "```"
		t := mrkdwn(head + clip(escape(ex), maxText-len(head)-len(fence)) + fence)
		out = append(out, block{Type: "section", Text: &t})
	}
	if note.Meaning != "" {
		out = append(out, section("*What it means*\n"+escape(note.Meaning)))
	}
	if len(note.Fix) > 0 {
		var b strings.Builder
		b.WriteString("*How to fix*")
		for i, step := range note.Fix {
			fmt.Fprintf(&b, "\n%d. %s", i+1, escape(step))
		}
		out = append(out, section(b.String()))
	}
	return out
}

func links(note receiver.Notification) []text {
	var out []text
	if note.RunbookURL != "" {
		out = append(out, mrkdwn("<"+escape(note.RunbookURL)+"|Runbook>"))
	}
	if note.IncidentURL != "" {
		out = append(out, mrkdwn("<"+escape(note.IncidentURL)+"|Incident>"))
	}
	return out
}

func count(v int64) string {
	if v == 0 {
		return ""
	}
	return strconv.FormatInt(v, 10)
}

func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// escape replaces the three characters Slack treats as control characters in mrkdwn
// (links, mentions, entities), so text from a bounce cannot ping @channel or forge a
// link.
var escape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// clip truncates escaped text to n bytes without leaving half an entity ("&am…").
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	t := strings.TrimSuffix(receiver.Truncate(s, n), "…")
	if i := strings.LastIndexByte(t, '&'); i >= 0 && !strings.Contains(t[i:], ";") {
		t = t[:i]
	}
	return t + "…"
}

// urlSecrets lists the parts of a webhook URL that grant posting: the whole URL, its
// path (/services/T…/B…/token) and the token alone.
func urlSecrets(raw string) []string {
	out := []string{raw}
	if u, err := url.Parse(raw); err == nil {
		out = append(out, u.Path, u.RawQuery)
		if i := strings.LastIndexByte(u.Path, '/'); i >= 0 && len(u.Path)-i > 8 {
			out = append(out, u.Path[i+1:])
		}
	}
	return out
}
