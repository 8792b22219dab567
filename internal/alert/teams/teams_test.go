package teams_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/alert/receiver/receivertest"
	"github.com/reboundhq/rebound/internal/alert/teams"
)

const (
	sig      = "SECRETSIG123abcDEF"
	flowPath = "/workflows/0a1b2c/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=" + sig
)

func notifier(base string) *teams.Notifier {
	return teams.New(teams.Config{URL: base + flowPath}, nil)
}

// send delivers note to a recording server and returns the decoded body, after
// checking the request itself.
func send(t *testing.T, note receiver.Notification) map[string]any {
	t.Helper()
	srv := receivertest.NewServer(t)
	srv.SetAnswer(http.StatusAccepted, "", nil)
	if err := notifier(srv.URL).Send(t.Context(), note); err != nil {
		t.Fatalf("Send: %v", err)
	}
	req := srv.Last(t)
	if req.Method != http.MethodPost {
		t.Errorf("method = %s, want POST", req.Method)
	}
	if req.Path != flowPath {
		t.Errorf("path = %s, want %s", req.Path, flowPath)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if len(req.Body) > 28<<10 {
		t.Errorf("body is %d bytes, above Teams' 28 KB", len(req.Body))
	}
	var body map[string]any
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, req.Body)
	}
	return body
}

// content checks the envelope around the card and returns the card.
func content(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	atts, _ := body["attachments"].([]any)
	if body["type"] != "message" || len(body) != 2 || len(atts) != 1 {
		t.Fatalf("envelope = %v", body)
	}
	att := atts[0].(map[string]any)
	if ct := att["contentType"]; ct != "application/vnd.microsoft.card.adaptive" {
		t.Errorf("contentType = %v", ct)
	}
	if v, ok := att["contentUrl"]; !ok || v != nil {
		t.Errorf("contentUrl = %v (present %v), want null", v, ok)
	}
	c := att["content"].(map[string]any)
	want := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.2",
		"msteams": map[string]any{"width": "Full"},
	}
	for k, v := range want {
		if !reflect.DeepEqual(c[k], v) {
			t.Errorf("content.%s = %v, want %v", k, c[k], v)
		}
	}
	return c
}

func tb(text string, extra ...any) map[string]any {
	m := map[string]any{"type": "TextBlock", "text": text, "wrap": true}
	for i := 0; i < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

func factSet(kv ...string) map[string]any {
	var facts []any
	for i := 0; i < len(kv); i += 2 {
		facts = append(facts, map[string]any{"title": kv[i], "value": kv[i+1]})
	}
	return map[string]any{"type": "FactSet", "facts": facts}
}

func TestSendCard(t *testing.T) {
	t.Parallel()
	s := receivertest.Sample()
	reminder := receivertest.Sample()
	reminder.Kind, reminder.State = receiver.KindReminder, "notified"
	ack := receivertest.Sample()
	ack.Kind, ack.AckedBy = receiver.KindAck, "ops@example.com"

	title := func(text, color string) map[string]any {
		return tb(text, "size", "Large", "weight", "Bolder", "color", color)
	}
	facts := func(state string) map[string]any {
		return factSet(
			"Class", "auth_required", "Severity", "critical", "State", state, "Tenant", "acme",
			"Code", "530 Authentication required", "Messages", "1243", "Recipients", "1201",
			"First seen", "2026-11-30 09:00:00 UTC", "Last seen", "2026-11-30 09:05:00 UTC")
	}
	details := []any{
		tb(s.Examples[0], "fontType", "Monospace"),
		tb(s.Meaning),
		tb("1. " + s.Fix[0] + "\r2. " + s.Fix[1]),
	}
	actions := []any{
		map[string]any{"type": "Action.OpenUrl", "title": "Runbook", "url": s.RunbookURL},
		map[string]any{"type": "Action.OpenUrl", "title": "Incident", "url": s.IncidentURL},
	}

	cases := []struct {
		name string
		note receiver.Notification
		body []any
	}{
		{"trigger", s, append([]any{
			title("[CRITICAL] auth_required — mail.example.com", "Attention"), tb(s.Summary), facts("open"),
		}, details...)},
		{"reminder", reminder, append([]any{
			title("[CRITICAL, STILL OPEN] auth_required — mail.example.com", "Attention"),
			tb("Still open: " + s.Summary), facts("notified"),
		}, details...)},
		{"ack", ack, []any{
			title("[ACKNOWLEDGED] auth_required — mail.example.com", "Attention"),
			tb("Acknowledged by ops@example.com: " + s.Summary), facts("open"),
		}},
		{"resolve", receivertest.Resolved(), []any{
			title("[RESOLVED] auth_required — mail.example.com", "Good"),
			tb("Resolved: " + s.Summary), facts("resolved"),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			card := content(t, send(t, c.note))
			got, _ := card["body"].([]any)
			if len(got) != len(c.body) {
				t.Fatalf("%d body elements, want %d: %v", len(got), len(c.body), got)
			}
			for i := range c.body {
				if !reflect.DeepEqual(got[i], c.body[i]) {
					t.Errorf("body[%d] =\n%v\nwant\n%v", i, got[i], c.body[i])
				}
			}
			if !reflect.DeepEqual(card["actions"], actions) {
				t.Errorf("actions = %v", card["actions"])
			}
		})
	}
}

func TestTitleColor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		severity string
		kind     receiver.Kind
		want     any // nil: no color key, the card's default
	}{
		{"critical", receiver.KindTrigger, "Attention"},
		{"high", receiver.KindReminder, "Attention"},
		{"warning", receiver.KindTrigger, "Warning"},
		{"info", receiver.KindTrigger, nil},
		{"warning", receiver.KindResolve, "Good"},
	}
	for _, c := range cases {
		t.Run(c.severity+"/"+string(c.kind), func(t *testing.T) {
			t.Parallel()
			note := receivertest.Sample()
			note.Severity, note.Kind = c.severity, c.kind
			head := content(t, send(t, note))["body"].([]any)[0].(map[string]any)
			if head["color"] != c.want {
				t.Errorf("color = %v, want %v", head["color"], c.want)
			}
		})
	}
}

func TestSparseNote(t *testing.T) {
	t.Parallel()
	note := receivertest.Sample()
	note.Tenant, note.Code, note.CodeTitle, note.Messages = "", "", "", 0
	note.Examples, note.Meaning, note.Fix = nil, "", nil
	note.RunbookURL, note.IncidentURL = "", ""
	card := content(t, send(t, note))
	if _, ok := card["actions"]; ok {
		t.Errorf("actions sent without URLs: %v", card["actions"])
	}
	body := card["body"].([]any)
	if len(body) != 3 { // title, summary, facts
		t.Fatalf("%d body elements, want 3: %v", len(body), body)
	}
	want := factSet("Class", "auth_required", "Severity", "critical", "State", "open", "Recipients", "1201",
		"First seen", "2026-11-30 09:00:00 UTC", "Last seen", "2026-11-30 09:05:00 UTC")
	if !reflect.DeepEqual(body[2], want) {
		t.Errorf("facts = %v", body[2])
	}
}

func TestLongTextTruncated(t *testing.T) {
	t.Parallel()
	note := receivertest.Sample()
	note.Summary = strings.Repeat("Ω", 5000) // 10000 bytes
	note.Examples = []string{strings.Repeat("<", 20000)}
	note.Meaning = strings.Repeat("m", 20000)
	note.Fix = []string{strings.Repeat("f", 20000)}
	body := content(t, send(t, note))["body"].([]any) // send checks the 28 KB bound
	summary := body[1].(map[string]any)["text"].(string)
	if len(summary) > 2000 || !strings.HasSuffix(summary, "…") {
		t.Errorf("summary is %d bytes, ends %q", len(summary), summary[len(summary)-6:])
	}
}

func TestUnknownKind(t *testing.T) {
	t.Parallel()
	srv := receivertest.NewServer(t)
	note := receivertest.Sample()
	note.Kind = "escalate"
	err := notifier(srv.URL).Send(t.Context(), note)
	if err == nil || receiver.Retryable(err) {
		t.Fatalf("err = %v, want a final error", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("sent %d requests for an unknown kind", n)
	}
}

func build(base string) receiver.Receiver { return notifier(base) }

func TestRetry(t *testing.T) {
	t.Parallel()
	receivertest.RetryCases(t, build)
}

func TestNoSecretInErrors(t *testing.T) {
	t.Parallel()
	receivertest.NoSecretInErrors(t, build, sig, flowPath)
}

// A proxy's error page that quotes the URL it could not reach must not carry the
// signature into the error, which ends up in logs.
func TestEchoedURLRedacted(t *testing.T) {
	t.Parallel()
	srv := receivertest.NewServer(t)
	for _, echo := range []string{srv.URL + flowPath, flowPath, "sig=" + sig} {
		srv.SetAnswer(http.StatusBadGateway, "could not reach "+echo, nil)
		err := build(srv.URL).Send(t.Context(), receivertest.Sample())
		if err == nil {
			t.Fatal("Send succeeded on 502")
		}
		if strings.Contains(err.Error(), sig) {
			t.Errorf("error leaks the signature: %v", err)
		}
		var e *receiver.Error
		if !errors.As(err, &e) || e.Status != http.StatusBadGateway || !e.Retry {
			t.Errorf("err = %#v, want a retryable HTTP 502 *receiver.Error", err)
		}
	}
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	const flow = "https://prod-00.westeurope.logic.azure.com:443" + flowPath
	dir := t.TempDir()
	for name, content := range map[string]string{"flow.url": flow + "\n", "bad.url": "prod-00.westeurope.logic.azure.com" + flowPath} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		cfg     teams.Config
		wantErr string // substring; "" means success
	}{
		{"inline url", teams.Config{URL: " " + flow + " "}, ""},
		{"url file relative to baseDir", teams.Config{URLFile: "flow.url"}, ""},
		{"missing url", teams.Config{}, "url"},
		{"both url and file", teams.Config{URL: flow, URLFile: "flow.url"}, "url_file"},
		{"missing url file", teams.Config{URLFile: "nope.url"}, "url_file"},
		{"bad url", teams.Config{URL: "ftp://prod-00.westeurope.logic.azure.com" + flowPath}, "url"},
		{"bad url in file", teams.Config{URLFile: "bad.url"}, "url_file"},
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
				if strings.Contains(err.Error(), sig) || strings.Contains(err.Error(), "logic.azure.com") {
					t.Errorf("error %q contains the URL", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if cfg.URL != flow || cfg.URLFile != "" {
				t.Errorf("prepared url = %q, url_file = %q", cfg.URL, cfg.URLFile)
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
	dec := yaml.NewDecoder(strings.NewReader("url: u\nurl_file: f\n"))
	dec.KnownFields(true)
	var got teams.Config
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if want := (teams.Config{URL: "u", URLFile: "f"}); got != want {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
}
