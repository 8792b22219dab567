package slack_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/alert/receiver/receivertest"
	"github.com/reboundhq/rebound/internal/alert/slack"
)

const (
	token    = "SECRETTOKEN123"
	hookPath = "/services/T000/B000/" + token
)

// The payload as the test reads it back.
type text struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji"`
}

type block struct {
	Type     string `json:"type"`
	Text     *text  `json:"text"`
	Fields   []text `json:"fields"`
	Elements []text `json:"elements"`
}

type message struct {
	Text   string  `json:"text"`
	Blocks []block `json:"blocks"`
}

func notifier(base string, cfg slack.Config) *slack.Notifier {
	cfg.URL = base + hookPath
	return slack.New(cfg, nil)
}

// send delivers note to a recording server and returns the decoded message and its
// top-level keys, after checking the request and Slack's limits.
func send(t *testing.T, cfg slack.Config, note receiver.Notification) (message, map[string]any) {
	t.Helper()
	srv := receivertest.NewServer(t)
	if err := notifier(srv.URL, cfg).Send(t.Context(), note); err != nil {
		t.Fatalf("Send: %v", err)
	}
	req := srv.Last(t)
	if req.Method != http.MethodPost {
		t.Errorf("method = %s, want POST", req.Method)
	}
	if req.Path != hookPath {
		t.Errorf("path = %s, want %s", req.Path, hookPath)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var m message
	var top map[string]any
	if err := json.Unmarshal(req.Body, &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, req.Body)
	}
	if err := json.Unmarshal(req.Body, &top); err != nil {
		t.Fatal(err)
	}
	checkLimits(t, m)
	return m, top
}

func checkLimits(t *testing.T, m message) {
	t.Helper()
	if len(m.Blocks) == 0 || len(m.Blocks) > 50 {
		t.Errorf("%d blocks, want 1..50", len(m.Blocks))
	}
	if len(m.Text) > 3000 {
		t.Errorf("fallback text is %d bytes", len(m.Text))
	}
	for i, b := range m.Blocks {
		if b.Type == "header" && (b.Text == nil || b.Text.Type != "plain_text" || utf8.RuneCountInString(b.Text.Text) > 150) {
			t.Errorf("block %d: bad header %+v", i, b.Text)
		}
		if b.Type == "section" && b.Text != nil && len(b.Text.Text) > 3000 {
			t.Errorf("block %d: section text is %d bytes", i, len(b.Text.Text))
		}
		if len(b.Fields) > 10 {
			t.Errorf("block %d: %d fields", i, len(b.Fields))
		}
		for _, f := range b.Fields {
			if len(f.Text) > 2000 {
				t.Errorf("block %d: field is %d bytes", i, len(f.Text))
			}
		}
	}
}

func mrkdwnSection(s string) block {
	return block{Type: "section", Text: &text{Type: "mrkdwn", Text: s}}
}

func TestSendMessage(t *testing.T) {
	t.Parallel()
	s := receivertest.Sample()
	reminder := receivertest.Sample()
	reminder.Kind, reminder.State = receiver.KindReminder, "notified"
	ack := receivertest.Sample()
	ack.Kind, ack.AckedBy = receiver.KindAck, "ops@example.com"

	links := block{Type: "context", Elements: []text{
		{Type: "mrkdwn", Text: "<" + s.RunbookURL + "|Runbook>"},
		{Type: "mrkdwn", Text: "<" + s.IncidentURL + "|Incident>"},
	}}
	details := []block{
		{Type: "section", Fields: []text{
			{Type: "mrkdwn", Text: "*Class*\nauth_required"},
			{Type: "mrkdwn", Text: "*Severity*\ncritical"},
			{Type: "mrkdwn", Text: "*Tenant*\nacme"},
			{Type: "mrkdwn", Text: "*Code*\n530 Authentication required"},
			{Type: "mrkdwn", Text: "*Messages*\n1243"},
			{Type: "mrkdwn", Text: "*Recipients*\n1201"},
			{Type: "mrkdwn", Text: "*First seen*\n2026-11-30 09:00:00 UTC"},
			{Type: "mrkdwn", Text: "*Last seen*\n2026-11-30 09:05:00 UTC"},
		}},
		mrkdwnSection("*Example reply*\n```530 5.7.0 Authentication required```"),
		mrkdwnSection("*What it means*\n" + s.Meaning),
		mrkdwnSection("*How to fix*\n1. " + s.Fix[0] + "\n2. " + s.Fix[1]),
	}
	header := func(s string) block {
		return block{Type: "header", Text: &text{Type: "plain_text", Text: s, Emoji: true}}
	}
	full := func(h, lead string) []block {
		return append(append([]block{header(h), mrkdwnSection(lead + s.Summary)}, details...), links)
	}

	cases := []struct {
		name     string
		note     receiver.Notification
		fallback string
		blocks   []block
	}{
		{"trigger", s, s.Summary, full("[CRITICAL] auth_required — mail.example.com", "")},
		{"reminder", reminder, "Still open: " + s.Summary, full("[CRITICAL, STILL OPEN] auth_required — mail.example.com", "Still open: ")},
		{"ack", ack, "Acknowledged by ops@example.com: " + s.Summary, []block{
			header("[ACKNOWLEDGED] auth_required — mail.example.com"),
			mrkdwnSection("Acknowledged by ops@example.com: " + s.Summary),
			links,
		}},
		{"resolve", receivertest.Resolved(), "Resolved: " + s.Summary, []block{
			header("[RESOLVED] auth_required — mail.example.com"),
			mrkdwnSection("Resolved: " + s.Summary),
			links,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, top := send(t, slack.Config{}, c.note)
			if m.Text != c.fallback {
				t.Errorf("text = %q, want %q", m.Text, c.fallback)
			}
			if len(m.Blocks) != len(c.blocks) {
				t.Fatalf("%d blocks, want %d: %+v", len(m.Blocks), len(c.blocks), m.Blocks)
			}
			for i := range c.blocks {
				if !reflect.DeepEqual(m.Blocks[i], c.blocks[i]) {
					got, _ := json.Marshal(m.Blocks[i])
					want, _ := json.Marshal(c.blocks[i])
					t.Errorf("block %d =\n%s\nwant\n%s", i, got, want)
				}
			}
			for _, k := range []string{"username", "icon_emoji"} {
				if _, ok := top[k]; ok {
					t.Errorf("%s sent without being configured", k)
				}
			}
		})
	}
}

func TestUsernameAndIcon(t *testing.T) {
	t.Parallel()
	_, top := send(t, slack.Config{Username: "Rebound", IconEmoji: ":rotating_light:"}, receivertest.Sample())
	if top["username"] != "Rebound" || top["icon_emoji"] != ":rotating_light:" {
		t.Errorf("username = %v, icon_emoji = %v", top["username"], top["icon_emoji"])
	}
}

// Text from bounces is untrusted: it must not be able to mention @channel or forge
// links, and the fields with nothing to say are left out.
func TestEscapingAndSparseNote(t *testing.T) {
	t.Parallel()
	note := receivertest.Sample()
	note.Summary = "530 from <mx.example.com> & co"
	note.Examples = []string{"530 <!channel> ```x``` & more"}
	note.Tenant, note.Code, note.CodeTitle, note.Messages = "", "", "", 0
	note.Meaning, note.Fix = "", nil
	note.RunbookURL = ""
	note.IncidentURL = "https://rebound.example.com/v1/alerts/x?a=1&b=2"

	m, _ := send(t, slack.Config{}, note)
	if want := "530 from &lt;mx.example.com&gt; &amp; co"; m.Text != want || m.Blocks[1].Text.Text != want {
		t.Errorf("text = %q, summary section = %q, want %q", m.Text, m.Blocks[1].Text.Text, want)
	}
	// header, summary, fields, example, context
	if len(m.Blocks) != 5 {
		t.Fatalf("%d blocks, want 5: %+v", len(m.Blocks), m.Blocks)
	}
	var names []string
	for _, f := range m.Blocks[2].Fields {
		names = append(names, strings.SplitN(f.Text, "\n", 2)[0])
	}
	if want := []string{"*Class*", "*Severity*", "*Recipients*", "*First seen*", "*Last seen*"}; !reflect.DeepEqual(names, want) {
		t.Errorf("fields = %v, want %v", names, want)
	}
	if got, want := m.Blocks[3].Text.Text, "*Example reply*\n```530 &lt;!channel&gt; '''x''' &amp; more```"; got != want {
		t.Errorf("example = %q, want %q", got, want)
	}
	ctx := m.Blocks[4]
	if ctx.Type != "context" || len(ctx.Elements) != 1 || ctx.Elements[0].Text != "<https://rebound.example.com/v1/alerts/x?a=1&amp;b=2|Incident>" {
		t.Errorf("context = %+v", ctx)
	}
}

func TestLongTextTruncated(t *testing.T) {
	t.Parallel()
	note := receivertest.Sample()
	note.Summary = strings.Repeat("a&", 3000) // 6000 bytes, 12000 once escaped
	note.Class = strings.Repeat("c", 300)
	note.Examples = []string{strings.Repeat("<", 2000)}
	note.Fix = []string{strings.Repeat("step ", 1000)}

	m, _ := send(t, slack.Config{}, note) // send checks every limit
	for _, s := range []string{m.Text, m.Blocks[1].Text.Text, m.Blocks[0].Text.Text} {
		if !strings.HasSuffix(s, "…") {
			t.Errorf("not marked as cut: …%q", s[max(0, len(s)-20):])
		}
		if i := strings.LastIndexByte(s, '&'); i >= 0 && !strings.Contains(s[i:], ";") {
			t.Errorf("half an entity left: …%q", s[max(0, len(s)-20):])
		}
	}
	if ex := m.Blocks[3].Text.Text; !strings.HasSuffix(ex, "…```") {
		t.Errorf("example lost its closing fence: …%q", ex[len(ex)-20:])
	}
}

func TestUnknownKind(t *testing.T) {
	t.Parallel()
	srv := receivertest.NewServer(t)
	note := receivertest.Sample()
	note.Kind = "escalate"
	err := notifier(srv.URL, slack.Config{}).Send(t.Context(), note)
	if err == nil || receiver.Retryable(err) {
		t.Fatalf("err = %v, want a final error", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("sent %d requests for an unknown kind", n)
	}
}

func build(base string) receiver.Receiver { return notifier(base, slack.Config{}) }

func TestRetry(t *testing.T) {
	t.Parallel()
	receivertest.RetryCases(t, build)
}

func TestNoSecretInErrors(t *testing.T) {
	t.Parallel()
	receivertest.NoSecretInErrors(t, build, token, hookPath)
}

// A proxy's error page that quotes the URL it could not reach must not carry the
// webhook token into the error, which ends up in logs.
func TestEchoedURLRedacted(t *testing.T) {
	t.Parallel()
	srv := receivertest.NewServer(t)
	for _, echo := range []string{srv.URL + hookPath, hookPath, token} {
		srv.SetAnswer(http.StatusBadGateway, "could not reach "+echo, nil)
		err := build(srv.URL).Send(t.Context(), receivertest.Sample())
		if err == nil {
			t.Fatal("Send succeeded on 502")
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("error leaks the token: %v", err)
		}
		var e *receiver.Error
		if !errors.As(err, &e) || e.Status != http.StatusBadGateway || !e.Retry {
			t.Errorf("err = %#v, want a retryable HTTP 502 *receiver.Error", err)
		}
	}
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	const hook = "https://hooks.slack.com" + hookPath
	dir := t.TempDir()
	for name, content := range map[string]string{"hook.url": hook + "\n", "bad.url": "hooks.slack.com" + hookPath} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		cfg     slack.Config
		wantErr string // substring; "" means success
	}{
		{"inline url", slack.Config{URL: hook, Username: " Rebound "}, ""},
		{"url file relative to baseDir", slack.Config{URLFile: "hook.url"}, ""},
		{"missing url", slack.Config{Username: "Rebound"}, "url"},
		{"both url and file", slack.Config{URL: hook, URLFile: "hook.url"}, "url_file"},
		{"missing url file", slack.Config{URLFile: "nope.url"}, "url_file"},
		{"bad url", slack.Config{URL: "hooks.slack.com" + hookPath}, "url"},
		{"bad url in file", slack.Config{URLFile: "bad.url"}, "url_file"},
		{"unparsable url", slack.Config{URL: "https://hooks slack.com" + hookPath}, "url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := c.cfg
			err := cfg.Prepare(dir)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, c.wantErr)
				}
				if strings.Contains(err.Error(), token) {
					t.Errorf("error %q contains the webhook token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if cfg.URL != hook || cfg.URLFile != "" {
				t.Errorf("prepared url = %q, url_file = %q", cfg.URL, cfg.URLFile)
			}
			if cfg.Username != strings.TrimSpace(c.cfg.Username) {
				t.Errorf("username = %q", cfg.Username)
			}
			if err := cfg.Prepare(dir); err != nil {
				t.Errorf("second Prepare: %v", err)
			}
		})
	}
}

// The loader decodes strictly, so the YAML keys are part of the API.
func TestYAMLKeys(t *testing.T) {
	t.Parallel()
	const doc = "url: u\nurl_file: f\nusername: n\nicon_emoji: ':bell:'\n"
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	var got slack.Config
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if want := (slack.Config{URL: "u", URLFile: "f", Username: "n", IconEmoji: ":bell:"}); got != want {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
}
