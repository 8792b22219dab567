package alertmanager

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/alert/receiver/receivertest"
)

// wire is a posted alert as Alertmanager's API reads it.
type wire struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
}

func prepared(t *testing.T, c Config) *Notifier {
	t.Helper()
	if err := c.Prepare(t.TempDir()); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return New(c, nil)
}

// sent sends note to a fresh server and returns the request and its one alert.
func sent(t *testing.T, c Config, note receiver.Notification) (receivertest.Request, wire) {
	t.Helper()
	srv := receivertest.NewServer(t)
	c.URL = srv.URL
	if err := prepared(t, c).Send(context.Background(), note); err != nil {
		t.Fatalf("Send: %v", err)
	}
	req := srv.Last(t)
	var body []wire
	if err := json.Unmarshal(req.Body, &body); err != nil {
		t.Fatalf("body is not a JSON array of alerts: %v\n%s", err, req.Body)
	}
	if len(body) != 1 {
		t.Fatalf("posted %d alerts, want 1", len(body))
	}
	return req, body[0]
}

func sampleLabels() map[string]string {
	return map[string]string{
		"alertname":      "ReboundSenderIncident",
		"severity":       "critical",
		"class":          "auth_required",
		"incident":       "3f2a9c0d1e4b5a6978c1d2e3",
		"tenant":         "acme",
		"sending_domain": "mail.example.com",
		"sending_ip":     "192.0.2.10",
	}
}

func TestAlertmanagerSendTrigger(t *testing.T) {
	note := receivertest.Sample()
	req, a := sent(t, Config{}, note)

	if req.Method != http.MethodPost || req.Path != "/api/v2/alerts" {
		t.Errorf("request = %s %s, want POST /api/v2/alerts", req.Method, req.Path)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if h := req.Header.Get("Authorization"); h != "" {
		t.Errorf("Authorization = %q without any configured", h)
	}
	if !maps.Equal(a.Labels, sampleLabels()) {
		t.Errorf("labels = %v\nwant     %v", a.Labels, sampleLabels())
	}
	wantAnn := map[string]string{
		"summary": note.Summary,
		"description": "The server requires the client to authenticate before it accepts mail.\n\nFix:\n" +
			"1. Check the SMTP username and password (or API key) configured for this sender.\n" +
			"2. Rotate the key if it was revoked.",
		"example":      "530 5.7.0 Authentication required",
		"runbook_url":  "https://runbooks.example.com/rebound/auth_required",
		"incident_url": "https://rebound.example.com/v1/alerts/3f2a9c0d1e4b5a6978c1d2e3",
		"messages":     "1243",
		"recipients":   "1201",
	}
	if !maps.Equal(a.Annotations, wantAnn) {
		t.Errorf("annotations = %#v\nwant          %#v", a.Annotations, wantAnn)
	}
	if !a.StartsAt.Equal(note.FirstSeen) {
		t.Errorf("startsAt = %v, want first seen %v", a.StartsAt, note.FirstSeen)
	}
	if want := note.At.Add(24 * time.Hour); !a.EndsAt.Equal(want) {
		t.Errorf("endsAt = %v, want At + 24h = %v", a.EndsAt, want)
	}
	if a.GeneratorURL != note.IncidentURL {
		t.Errorf("generatorURL = %q, want %q", a.GeneratorURL, note.IncidentURL)
	}
}

func TestAlertmanagerSendReminderRefreshesEndsAt(t *testing.T) {
	note := receivertest.Sample()
	note.Kind, note.Seq, note.State = receiver.KindReminder, 2, "notified"
	note.At = note.FirstSeen.Add(time.Hour)
	_, a := sent(t, Config{FiringTTL: "2h"}, note)

	if !maps.Equal(a.Labels, sampleLabels()) {
		t.Errorf("labels = %v, want the trigger's %v", a.Labels, sampleLabels())
	}
	if !a.StartsAt.Equal(note.FirstSeen) {
		t.Errorf("startsAt = %v, want first seen %v (a reminder must not move it)", a.StartsAt, note.FirstSeen)
	}
	if want := note.At.Add(2 * time.Hour); !a.EndsAt.Equal(want) {
		t.Errorf("endsAt = %v, want reminder time + firing_ttl = %v", a.EndsAt, want)
	}
	if a.Annotations["summary"] != note.Summary {
		t.Errorf("summary = %q", a.Annotations["summary"])
	}
}

func TestAlertmanagerSendResolve(t *testing.T) {
	note := receivertest.Resolved()
	_, a := sent(t, Config{}, note)
	if !maps.Equal(a.Labels, sampleLabels()) {
		t.Errorf("labels = %v, want the trigger's %v (else Alertmanager sees another alert)", a.Labels, sampleLabels())
	}
	if !a.StartsAt.Equal(note.FirstSeen) {
		t.Errorf("startsAt = %v, want %v", a.StartsAt, note.FirstSeen)
	}
	if !a.EndsAt.Equal(note.ResolvedAt) {
		t.Errorf("endsAt = %v, want resolved at %v", a.EndsAt, note.ResolvedAt)
	}
	if a.GeneratorURL != note.IncidentURL {
		t.Errorf("generatorURL = %q", a.GeneratorURL)
	}

	// Without ResolvedAt the transition's time ends the alert.
	note.ResolvedAt = time.Time{}
	note.At = note.FirstSeen.Add(time.Hour)
	if _, a := sent(t, Config{}, note); !a.EndsAt.Equal(note.At) {
		t.Errorf("endsAt without ResolvedAt = %v, want At %v", a.EndsAt, note.At)
	}

	// A resolve stamped before the first sighting (clock skew) must still be accepted:
	// Alertmanager refuses endsAt < startsAt.
	note.At = note.FirstSeen.Add(-time.Minute)
	if _, a := sent(t, Config{}, note); a.EndsAt.Before(a.StartsAt) {
		t.Errorf("endsAt %v before startsAt %v", a.EndsAt, a.StartsAt)
	}
}

func TestAlertmanagerAckSendsNothing(t *testing.T) {
	srv := receivertest.NewServer(t)
	note := receivertest.Sample()
	note.Kind, note.AckedBy = receiver.KindAck, "oncall@example.com"
	if err := prepared(t, Config{URL: srv.URL}).Send(context.Background(), note); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if r := srv.Requests(); len(r) != 0 {
		t.Errorf("ack sent %d requests, want none", len(r))
	}
}

func TestAlertmanagerUnknownKindIsNotRetried(t *testing.T) {
	srv := receivertest.NewServer(t)
	note := receivertest.Sample()
	note.Kind = "escalate"
	err := prepared(t, Config{URL: srv.URL}).Send(context.Background(), note)
	if err == nil || receiver.Retryable(err) {
		t.Fatalf("err = %v, want a final error", err)
	}
	if len(srv.Requests()) != 0 {
		t.Error("an unknown kind was sent")
	}
}

func TestAlertmanagerMassBounceAndOptionalLabels(t *testing.T) {
	note := receivertest.Sample()
	note.Class, note.Severity = "mass_bounce", "high"
	note.Tenant, note.SendingDomain, note.SendingIP = "", "", ""
	note.ReceivingDomain = "gmail.com"
	note.Examples, note.Meaning, note.Fix, note.Messages, note.Recipients = nil, "", nil, 0, 0
	note.RunbookURL, note.IncidentURL = "", ""
	_, a := sent(t, Config{}, note)
	want := map[string]string{
		"alertname": "ReboundMassBounce", "severity": "high", "class": "mass_bounce",
		"incident": note.ID, "receiving_domain": "gmail.com",
	}
	if !maps.Equal(a.Labels, want) {
		t.Errorf("labels = %v, want %v", a.Labels, want)
	}
	if want := map[string]string{"summary": note.Summary}; !maps.Equal(a.Annotations, want) {
		t.Errorf("annotations = %v, want only %v (empty ones left out)", a.Annotations, want)
	}
	if a.GeneratorURL != "" {
		t.Errorf("generatorURL = %q, want none", a.GeneratorURL)
	}
}

func TestAlertmanagerConfiguredLabelsNeverOverride(t *testing.T) {
	c := Config{Labels: map[string]string{"team": "mail", "tenant": "default-tenant"}}
	_, a := sent(t, c, receivertest.Sample())
	if a.Labels["team"] != "mail" {
		t.Errorf("team = %q, want the configured mail", a.Labels["team"])
	}
	if a.Labels["tenant"] != "acme" {
		t.Errorf("tenant = %q, want the incident's acme over the configured one", a.Labels["tenant"])
	}
	note := receivertest.Sample()
	note.Tenant = ""
	if _, a := sent(t, c, note); a.Labels["tenant"] != "default-tenant" {
		t.Errorf("tenant = %q, want the configured one when the incident has none", a.Labels["tenant"])
	}
}

func TestAlertmanagerLongAnnotationsAreCut(t *testing.T) {
	note := receivertest.Sample()
	note.Summary = strings.Repeat("é", 2000)
	note.Examples = []string{strings.Repeat("x", 5000)}
	_, a := sent(t, Config{}, note)
	if len(a.Annotations["summary"]) > maxSummary || len(a.Annotations["example"]) > maxExample {
		t.Errorf("summary %d bytes, example %d bytes: not cut", len(a.Annotations["summary"]), len(a.Annotations["example"]))
	}
}

func TestAlertmanagerEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"http://am:9093":                             "http://am:9093/api/v2/alerts",
		"http://am:9093/":                            "http://am:9093/api/v2/alerts",
		"https://am.example.com/alertmanager":        "https://am.example.com/alertmanager/api/v2/alerts",
		"http://am:9093/api/v2/alerts":               "http://am:9093/api/v2/alerts",
		"http://am:9093/api/v2/alerts/":              "http://am:9093/api/v2/alerts",
		"http://am:9093/prefix/api/v2/alerts?x=1":    "http://am:9093/prefix/api/v2/alerts?x=1",
		"http://am:9093/prefix?tenant=a":             "http://am:9093/prefix/api/v2/alerts?tenant=a",
		"http://[::1]:9093":                          "http://[::1]:9093/api/v2/alerts",
		"http://user:pw@am:9093/am/":                 "http://user:pw@am:9093/am/api/v2/alerts",
		"http://am:9093/a%2Fb":                       "http://am:9093/a%2Fb/api/v2/alerts",
		"http://am:9093/api/v2/alerts/api/v2/alerts": "http://am:9093/api/v2/alerts/api/v2/alerts",
	} {
		if got := endpoint(in); got != want {
			t.Errorf("endpoint(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAlertmanagerAuthHeaders(t *testing.T) {
	req, _ := sent(t, Config{BearerToken: "tok-123"}, receivertest.Sample())
	if h := req.Header.Get("Authorization"); h != "Bearer tok-123" {
		t.Errorf("bearer: Authorization = %q", h)
	}
	req, _ = sent(t, Config{Username: "rebound", Password: "s3cret"}, receivertest.Sample())
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("rebound:s3cret"))
	if h := req.Header.Get("Authorization"); h != want {
		t.Errorf("basic: Authorization = %q, want %q", h, want)
	}
}

func TestAlertmanagerRetryCases(t *testing.T) {
	receivertest.RetryCases(t, func(url string) receiver.Receiver {
		return prepared(t, Config{URL: url})
	})
}

func TestAlertmanagerNoSecretInErrors(t *testing.T) {
	const token = "bearer-9f8e7d6c5b4a"
	receivertest.NoSecretInErrors(t, func(url string) receiver.Receiver {
		return prepared(t, Config{URL: url, BearerToken: token})
	}, token)

	const password = "pw-1a2b3c4d5e6f"
	receivertest.NoSecretInErrors(t, func(url string) receiver.Receiver {
		return prepared(t, Config{URL: url, Username: "rebound", Password: password})
	}, password, base64.StdEncoding.EncodeToString([]byte("rebound:"+password)))
}

// An endpoint (or proxy) that echoes the request headers in its error answer must not
// get the credentials into Rebound's logs.
func TestAlertmanagerEchoedCredentialsAreRedacted(t *testing.T) {
	for _, c := range []Config{
		{BearerToken: "bearer-echo-1234567"},
		{Username: "rebound", Password: "pw-echo-7654321"},
	} {
		srv := receivertest.NewServer(t)
		c.URL = srv.URL
		n := prepared(t, c)
		srv.SetAnswer(http.StatusBadRequest, "bad request; you sent Authorization: "+n.header.Get("Authorization"), nil)
		err := n.Send(context.Background(), receivertest.Sample())
		if err == nil {
			t.Fatal("Send succeeded against a 400")
		}
		for _, s := range n.secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains a secret", err)
			}
		}
		if !strings.Contains(err.Error(), "[redacted]") {
			t.Errorf("error %q: want the echo kept, redacted", err)
		}
	}
}

func TestAlertmanagerPrepare(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("token", "file-token-abc\n")
	write("password", "file-password-xyz\n")

	t.Run("defaults", func(t *testing.T) {
		c := Config{URL: " http://am:9093 "}
		if err := c.Prepare(dir); err != nil {
			t.Fatal(err)
		}
		if c.URL != "http://am:9093" || c.FiringTTL != "24h" || c.ttl != 24*time.Hour {
			t.Errorf("after Prepare: url %q firing_ttl %q ttl %v", c.URL, c.FiringTTL, c.ttl)
		}
		if n := New(c, nil); n.endpoint != "http://am:9093/api/v2/alerts" || n.ttl != 24*time.Hour || n.header.Get("Authorization") != "" {
			t.Errorf("notifier: endpoint %q ttl %v auth %q", n.endpoint, n.ttl, n.header.Get("Authorization"))
		}
	})
	t.Run("files relative to baseDir", func(t *testing.T) {
		c := Config{URL: "http://am:9093", BearerTokenFile: "token"}
		if err := c.Prepare(dir); err != nil {
			t.Fatal(err)
		}
		if c.BearerToken != "file-token-abc" || c.BearerTokenFile != "" {
			t.Errorf("bearer_token %q, bearer_token_file %q", c.BearerToken, c.BearerTokenFile)
		}
		if err := c.Prepare(dir); err != nil {
			t.Errorf("second Prepare: %v", err)
		}
		c = Config{URL: "http://am:9093", Username: "rebound", PasswordFile: "password"}
		if err := c.Prepare(dir); err != nil {
			t.Fatal(err)
		}
		if c.Password != "file-password-xyz" || c.PasswordFile != "" {
			t.Errorf("password %q, password_file %q", c.Password, c.PasswordFile)
		}
	})
	t.Run("New without Prepare", func(t *testing.T) {
		if n := New(Config{URL: "http://am:9093", FiringTTL: "3h"}, nil); n.ttl != 3*time.Hour {
			t.Errorf("ttl = %v, want 3h", n.ttl)
		}
		if n := New(Config{URL: "http://am:9093"}, nil); n.ttl != 24*time.Hour {
			t.Errorf("ttl = %v, want the 24h default", n.ttl)
		}
	})

	const secretURL = "https://am.example.com:notaport/?token=url-secret-42"
	bad := []struct {
		name    string
		c       Config
		wantKey string
		secrets []string
	}{
		{"missing url", Config{}, "url", nil},
		{"blank url", Config{URL: "  "}, "url", nil},
		{"bad url", Config{URL: secretURL}, "url", []string{secretURL, "url-secret-42"}},
		{"not http", Config{URL: "ftp://am:9093"}, "url", []string{"ftp://am:9093"}},
		{"firing_ttl", Config{URL: "http://am:9093", FiringTTL: "one day"}, "firing_ttl", nil},
		{"firing_ttl too short", Config{URL: "http://am:9093", FiringTTL: "30s"}, "firing_ttl", nil},
		{"both bearer_token and file", Config{URL: "http://am:9093", BearerToken: "inline-tok-1", BearerTokenFile: "token"}, "bearer_token", []string{"inline-tok-1", "file-token-abc"}},
		{"both password and file", Config{URL: "http://am:9093", Username: "u", Password: "inline-pw-1", PasswordFile: "password"}, "password", []string{"inline-pw-1", "file-password-xyz"}},
		{"missing file", Config{URL: "http://am:9093", BearerTokenFile: "nope"}, "bearer_token_file", nil},
		{"basic and bearer", Config{URL: "http://am:9093", Username: "u", Password: "pw-both-1", BearerToken: "tok-both-1"}, "bearer_token", []string{"pw-both-1", "tok-both-1"}},
		{"basic file and bearer file", Config{URL: "http://am:9093", Username: "u", PasswordFile: "password", BearerTokenFile: "token"}, "bearer_token", []string{"file-password-xyz", "file-token-abc"}},
		{"username without password", Config{URL: "http://am:9093", Username: "u"}, "password", nil},
		{"password without username", Config{URL: "http://am:9093", Password: "lonely-pw-1"}, "username", []string{"lonely-pw-1"}},
		{"token with newline", Config{URL: "http://am:9093", BearerToken: "tok\nen-1"}, "bearer_token", []string{"tok\nen-1"}},
		{"bad label name", Config{URL: "http://am:9093", Labels: map[string]string{"team-name": "mail"}}, "labels", nil},
		{"reserved label", Config{URL: "http://am:9093", Labels: map[string]string{"__name__": "x"}}, "labels", nil},
		{"built-in label", Config{URL: "http://am:9093", Labels: map[string]string{"severity": "page"}}, "labels", nil},
		{"empty label value", Config{URL: "http://am:9093", Labels: map[string]string{"team": ""}}, "labels", nil},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			c := b.c
			err := c.Prepare(dir)
			if err == nil {
				t.Fatalf("Prepare accepted %+v", b.c)
			}
			if !strings.Contains(err.Error(), b.wantKey) {
				t.Errorf("error %q does not name %s", err, b.wantKey)
			}
			for _, s := range b.secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains %q", err, s)
				}
			}
		})
	}
}
