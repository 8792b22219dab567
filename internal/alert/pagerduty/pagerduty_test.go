package pagerduty_test

import (
	"context"
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

	"github.com/reboundhq/rebound/internal/alert/pagerduty"
	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/alert/receiver/receivertest"
)

const key = "R0UTINGKEYSECRET0123456789abcdef"

func notifier(url, source string) *pagerduty.Notifier {
	return pagerduty.New(pagerduty.Config{URL: url, RoutingKey: key, Source: source}, nil)
}

// send delivers note to a recording server and returns the decoded body, after
// checking what every request must look like.
func send(t *testing.T, note receiver.Notification, source string) map[string]any {
	t.Helper()
	srv := receivertest.NewServer(t)
	srv.SetAnswer(http.StatusAccepted, `{"status":"success","message":"Event processed"}`, nil)
	if err := notifier(srv.URL+"/v2/enqueue", source).Send(t.Context(), note); err != nil {
		t.Fatalf("Send: %v", err)
	}
	req := srv.Last(t)
	if req.Method != http.MethodPost {
		t.Errorf("method = %s, want POST", req.Method)
	}
	if req.Path != "/v2/enqueue" {
		t.Errorf("path = %s, want /v2/enqueue", req.Path)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, req.Body)
	}
	return body
}

func TestSendEvent(t *testing.T) {
	t.Parallel()
	reminder := receivertest.Sample()
	reminder.Kind, reminder.Seq, reminder.State = receiver.KindReminder, 2, "notified"
	ack := receivertest.Sample()
	ack.Kind, ack.AckedBy = receiver.KindAck, "ops@example.com"

	cases := []struct {
		name   string
		note   receiver.Notification
		action string
		state  string // payload expected when non-empty
	}{
		{"trigger", receivertest.Sample(), "trigger", "open"},
		{"reminder", reminder, "trigger", "notified"},
		{"ack", ack, "acknowledge", ""},
		{"resolve", receivertest.Resolved(), "resolve", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			body := send(t, c.note, "")
			if body["routing_key"] != key {
				t.Errorf("routing_key = %v", body["routing_key"])
			}
			if body["dedup_key"] != "rebound-3f2a9c0d1e4b5a6978c1d2e3" {
				t.Errorf("dedup_key = %v", body["dedup_key"])
			}
			if body["event_action"] != c.action {
				t.Errorf("event_action = %v, want %s", body["event_action"], c.action)
			}
			if c.state == "" {
				// Acknowledge and resolve carry the three identifying fields only.
				if len(body) != 3 {
					t.Errorf("%s event has extra fields: %v", c.name, body)
				}
				return
			}
			checkTrigger(t, body, c.state)
		})
	}
}

func checkTrigger(t *testing.T, body map[string]any, state string) {
	t.Helper()
	s := receivertest.Sample()
	if body["client"] != "Rebound" {
		t.Errorf("client = %v", body["client"])
	}
	if body["client_url"] != s.IncidentURL {
		t.Errorf("client_url = %v", body["client_url"])
	}
	wantLinks := []any{
		map[string]any{"href": s.RunbookURL, "text": "Runbook"},
		map[string]any{"href": s.IncidentURL, "text": "Incident in Rebound"},
	}
	if !reflect.DeepEqual(body["links"], wantLinks) {
		t.Errorf("links = %v", body["links"])
	}
	p, ok := body["payload"].(map[string]any)
	if !ok {
		t.Fatalf("payload = %v", body["payload"])
	}
	want := map[string]any{
		"summary":   s.Summary,
		"source":    "mail.example.com",
		"severity":  "critical",
		"timestamp": "2026-11-30T09:00:00Z",
		"component": "mail.example.com",
		"group":     "acme",
		"class":     "auth_required",
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("payload.%s = %v, want %v", k, p[k], v)
		}
	}
	d, ok := p["custom_details"].(map[string]any)
	if !ok {
		t.Fatalf("custom_details = %v", p["custom_details"])
	}
	wantDetails := map[string]any{
		"code":              "530",
		"code_title":        "Authentication required",
		"messages":          float64(1243),
		"recipients":        float64(1201),
		"first_seen":        "2026-11-30T09:00:00Z",
		"last_seen":         "2026-11-30T09:05:00Z",
		"examples":          []any{s.Examples[0], s.Examples[1]},
		"receiving_domains": []any{"gmail.com", "outlook.com"},
		"meaning":           s.Meaning,
		"fix":               []any{s.Fix[0], s.Fix[1]},
		"runbook_url":       s.RunbookURL,
		"state":             state,
		"reopened":          float64(0),
	}
	if !reflect.DeepEqual(d, wantDetails) {
		t.Errorf("custom_details =\n%v\nwant\n%v", d, wantDetails)
	}
}

func TestSendOptionalFields(t *testing.T) {
	t.Parallel()
	bare := receivertest.Sample()
	bare.Tenant, bare.SendingDomain, bare.ReceivingDomain = "", "", ""
	bare.RunbookURL, bare.IncidentURL = "", ""
	massBounce := bare
	massBounce.ReceivingDomain = "gmail.com"

	cases := []struct {
		name, source, severity string
		note                   receiver.Notification
		wantSource, wantComp   string
		wantSeverity           string
	}{
		{"configured source wins", "rebound-prod", "high", receivertest.Sample(), "rebound-prod", "mail.example.com", "error"},
		{"receiving domain", "", "warning", massBounce, "gmail.com", "gmail.com", "warning"},
		{"nothing to name it by", "", "info", bare, "rebound", "", "info"},
		{"unknown severity", "", "sev0", bare, "rebound", "", "info"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			note := c.note
			note.Severity = c.severity
			body := send(t, note, c.source)
			p := body["payload"].(map[string]any)
			if p["source"] != c.wantSource {
				t.Errorf("source = %v, want %s", p["source"], c.wantSource)
			}
			if got, _ := p["component"].(string); got != c.wantComp {
				t.Errorf("component = %q, want %q", got, c.wantComp)
			}
			if p["severity"] != c.wantSeverity {
				t.Errorf("severity = %v, want %s", p["severity"], c.wantSeverity)
			}
			if note.Tenant == "" {
				if _, ok := p["group"]; ok {
					t.Errorf("group sent for an empty tenant: %v", p["group"])
				}
			}
			if note.IncidentURL == "" {
				for _, k := range []string{"client_url", "links"} {
					if _, ok := body[k]; ok {
						t.Errorf("%s sent without URLs: %v", k, body[k])
					}
				}
			}
		})
	}
}

func TestSummaryTruncated(t *testing.T) {
	t.Parallel()
	note := receivertest.Sample()
	note.Summary = strings.Repeat("é", 2000) // 4000 bytes, two per rune
	p := send(t, note, "")["payload"].(map[string]any)
	got := p["summary"].(string)
	if len(got) > 1024 {
		t.Errorf("summary is %d bytes, want at most 1024", len(got))
	}
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("summary not cut cleanly: %q", got[len(got)-10:])
	}
}

func TestLongIDBoundedDedupKey(t *testing.T) {
	t.Parallel()
	note := receivertest.Resolved()
	note.ID = strings.Repeat("a", 400)
	got := send(t, note, "")["dedup_key"].(string)
	if len(got) > 255 {
		t.Errorf("dedup_key is %d bytes, want at most 255", len(got))
	}
}

func TestUnknownKind(t *testing.T) {
	t.Parallel()
	srv := receivertest.NewServer(t)
	note := receivertest.Sample()
	note.Kind = "escalate"
	err := notifier(srv.URL, "").Send(t.Context(), note)
	if err == nil || receiver.Retryable(err) {
		t.Fatalf("err = %v, want a final error", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("sent %d requests for an unknown kind", n)
	}
}

func TestRetry(t *testing.T) {
	t.Parallel()
	receivertest.RetryCases(t, func(url string) receiver.Receiver { return notifier(url, "") })
}

func TestNoSecretInErrors(t *testing.T) {
	t.Parallel()
	receivertest.NoSecretInErrors(t, func(url string) receiver.Receiver { return notifier(url, "") }, key)
}

// An endpoint (or a proxy in front of it) that echoes the request back must not get
// the routing key into the error, which ends up in logs.
func TestEchoedKeyRedacted(t *testing.T) {
	t.Parallel()
	srv := receivertest.NewServer(t)
	srv.SetAnswer(http.StatusBadRequest, `{"errors":["bad routing_key `+key+`"]}`, nil)
	err := notifier(srv.URL, "").Send(context.Background(), receivertest.Sample())
	if err == nil {
		t.Fatal("Send succeeded on 400")
	}
	if strings.Contains(err.Error(), key) {
		t.Errorf("error leaks the key: %v", err)
	}
	var e *receiver.Error
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Retry {
		t.Errorf("err = %#v, want a final HTTP 400 *receiver.Error", err)
	}
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pd.key"), []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(t.TempDir(), "abs.key")
	if err := os.WriteFile(abs, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	const badURL = "ftp://events.example.com/v2/enqueue"

	cases := []struct {
		name    string
		cfg     pagerduty.Config
		wantErr string // substring; "" means success
		wantURL string
	}{
		{"defaults", pagerduty.Config{RoutingKey: key}, "", pagerduty.DefaultURL},
		{"custom url", pagerduty.Config{RoutingKey: key, URL: "https://events.eu.pagerduty.com/v2/enqueue"}, "", "https://events.eu.pagerduty.com/v2/enqueue"},
		{"key file relative to baseDir", pagerduty.Config{RoutingKeyFile: "pd.key"}, "", pagerduty.DefaultURL},
		{"absolute key file", pagerduty.Config{RoutingKeyFile: abs}, "", pagerduty.DefaultURL},
		{"missing key", pagerduty.Config{}, "routing_key", ""},
		{"both key and file", pagerduty.Config{RoutingKey: key, RoutingKeyFile: "pd.key"}, "routing_key", ""},
		{"missing key file", pagerduty.Config{RoutingKeyFile: "nope.key"}, "routing_key_file", ""},
		{"key with a line break", pagerduty.Config{RoutingKey: "abc\ndef"}, "routing_key", ""},
		{"bad url", pagerduty.Config{RoutingKey: key, URL: badURL}, "url", ""},
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
				for _, secret := range []string{key, badURL, "abc\ndef"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error %q contains %q", err, secret)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if cfg.URL != c.wantURL || cfg.RoutingKey != key || cfg.RoutingKeyFile != "" {
				t.Errorf("prepared = %+v", cfg)
			}
			// Preparing twice (a reload of an already prepared config) must still work.
			if err := cfg.Prepare(dir); err != nil {
				t.Errorf("second Prepare: %v", err)
			}
		})
	}
}

// The loader decodes strictly, so the YAML keys are part of the API.
func TestYAMLKeys(t *testing.T) {
	t.Parallel()
	const doc = "url: https://events.eu.pagerduty.com/v2/enqueue\nrouting_key: k\nrouting_key_file: f\nsource: s\n"
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	var got pagerduty.Config
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := pagerduty.Config{URL: "https://events.eu.pagerduty.com/v2/enqueue", RoutingKey: "k", RoutingKeyFile: "f", Source: "s"}
	if got != want {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
}
