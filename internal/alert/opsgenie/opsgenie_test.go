package opsgenie

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/alert/receiver/receivertest"
)

const (
	apiKey    = "0b5e8c1a-7d2f-4e6a-9c3b-SECRETAPIKEY"
	pathToken = "PATHTOKEN789"
	alias3f   = "rebound-3f2a9c0d1e4b5a6978c1d2e3"
)

var responders = []Responder{
	{Type: "team", Name: "mail-platform"},
	{Type: "user", Username: "oncall@example.com"},
	{Type: "escalation", ID: "4513b7ea-3b91-438f-b7e4-e3e54af9147c"},
	{Type: "schedule", Name: "mail-primary"},
}

// wantDescription is the Sample's description, spelled out so a change in what the
// responder reads is a deliberate one.
const wantDescription = `SMTP 530 Authentication required for mail.example.com via 192.0.2.10 — 1,243 messages to 1,201 recipients in 5 min

Example replies:
- 530 5.7.0 Authentication required
- 530 5.7.1 Client was not authenticated

What it means: The server requires the client to authenticate before it accepts mail.

How to fix:
1. Check the SMTP username and password (or API key) configured for this sender.
2. Rotate the key if it was revoked.

Runbook: https://runbooks.example.com/rebound/auth_required
Incident: https://rebound.example.com/v1/alerts/3f2a9c0d1e4b5a6978c1d2e3`

var wantDetails = map[string]string{
	"class":          "auth_required",
	"code":           "530",
	"code_title":     "Authentication required",
	"tenant":         "acme",
	"sending_domain": "mail.example.com",
	"sending_ip":     "192.0.2.10",
	"messages":       "1243",
	"recipients":     "1201",
	"first_seen":     "2026-11-30T09:00:00Z",
	"last_seen":      "2026-11-30T09:05:00Z",
	"runbook_url":    "https://runbooks.example.com/rebound/auth_required",
	"incident_url":   "https://rebound.example.com/v1/alerts/3f2a9c0d1e4b5a6978c1d2e3",
}

// createBody is the create-alert body as Opsgenie reads it.
type createBody struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias"`
	Description string            `json:"description"`
	Priority    string            `json:"priority"`
	Source      string            `json:"source"`
	Entity      string            `json:"entity"`
	Tags        []string          `json:"tags"`
	Details     map[string]string `json:"details"`
	Responders  []Responder       `json:"responders"`
}

func newNotifier(u string) *Notifier {
	return New(Config{URL: u, APIKey: apiKey, Responders: responders, Tags: []string{"team-mail"}}, nil)
}

// send sends note to a fresh server and returns what the server received.
func send(t *testing.T, n func(url string) *Notifier, note receiver.Notification) receivertest.Request {
	t.Helper()
	srv := receivertest.NewServer(t)
	srv.SetAnswer(http.StatusAccepted, `{"result":"Request will be processed","took":0.01,"requestId":"43a29c5c"}`, nil)
	if err := n(srv.URL).Send(context.Background(), note); err != nil {
		t.Fatalf("Send: %v", err)
	}
	return srv.Last(t)
}

// decode decodes body into v, and returns its key set so a test sees a field that
// should not be there.
func decode(t *testing.T, body []byte, v any) []string {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("body: %v\n%s", err, body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(raw))
}

func TestSendRequests(t *testing.T) {
	t.Parallel()
	reminder := receivertest.Sample()
	reminder.Kind, reminder.Seq, reminder.State = receiver.KindReminder, 2, "notified"
	ack := receivertest.Sample()
	ack.Kind, ack.Seq, ack.AckedBy = receiver.KindAck, 2, "alice@example.com"

	wantCreate := createBody{
		Message:     receivertest.Sample().Summary,
		Alias:       alias3f,
		Description: wantDescription,
		Priority:    "P1",
		Source:      "rebound",
		Entity:      "mail.example.com",
		Tags:        []string{"auth_required", "critical", "tenant:acme", "team-mail"},
		Details:     wantDetails,
		Responders:  responders,
	}
	createKeys := []string{"alias", "description", "details", "entity", "message", "priority", "responders", "source", "tags"}

	cases := []struct {
		name     string
		note     receiver.Notification
		wantPath string
		check    func(t *testing.T, body []byte)
	}{
		{"trigger", receivertest.Sample(), "/v2/alerts", func(t *testing.T, body []byte) {
			var got createBody
			if keys := decode(t, body, &got); !slices.Equal(keys, createKeys) {
				t.Errorf("keys = %v, want %v", keys, createKeys)
			}
			compareCreate(t, got, wantCreate)
		}},
		{"reminder", reminder, "/v2/alerts", func(t *testing.T, body []byte) {
			var got createBody
			decode(t, body, &got)
			compareCreate(t, got, wantCreate) // the same alert again: Opsgenie dedups on the alias
		}},
		{"ack", ack, "/v2/alerts/" + alias3f + "/acknowledge?identifierType=alias", func(t *testing.T, body []byte) {
			var got map[string]string
			if keys := decode(t, body, &got); !slices.Equal(keys, []string{"note", "source", "user"}) {
				t.Errorf("keys = %v", keys)
			}
			want := map[string]string{"source": "rebound", "user": "alice@example.com", "note": "Acknowledged in Rebound by alice@example.com."}
			if !maps.Equal(got, want) {
				t.Errorf("body = %v, want %v", got, want)
			}
		}},
		{"resolve", receivertest.Resolved(), "/v2/alerts/" + alias3f + "/close?identifierType=alias", func(t *testing.T, body []byte) {
			var got map[string]string
			if keys := decode(t, body, &got); !slices.Equal(keys, []string{"note", "source"}) {
				t.Errorf("keys = %v", keys)
			}
			want := map[string]string{"source": "rebound", "note": "Resolved: no new bounces since 2026-11-30T09:05:00Z (at 2026-11-30T09:35:00Z)."}
			if !maps.Equal(got, want) {
				t.Errorf("body = %v, want %v", got, want)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := send(t, newNotifier, c.note)
			if r.Method != http.MethodPost {
				t.Errorf("method = %s, want POST", r.Method)
			}
			if r.Path != c.wantPath {
				t.Errorf("path = %q, want %q", r.Path, c.wantPath)
			}
			if got := r.Header.Get("Authorization"); got != "GenieKey "+apiKey {
				t.Errorf("Authorization = %q", got)
			}
			if got := r.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			c.check(t, r.Body)
		})
	}
}

func compareCreate(t *testing.T, got, want createBody) {
	t.Helper()
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("%s =\n%#v\nwant\n%#v", g.Type().Field(i).Name, g.Field(i).Interface(), w.Field(i).Interface())
		}
	}
}

// The fields that depend on the notification, one variation at a time.
func TestCreateFields(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 100) // 200 bytes, two per rune
	cases := []struct {
		name  string
		edit  func(n *receiver.Notification)
		check func(t *testing.T, b createBody)
	}{
		{"high is P2", func(n *receiver.Notification) { n.Severity = "high" }, func(t *testing.T, b createBody) {
			if b.Priority != "P2" {
				t.Errorf("priority = %s", b.Priority)
			}
		}},
		{"warning is P3", func(n *receiver.Notification) { n.Severity = "warning" }, func(t *testing.T, b createBody) {
			if b.Priority != "P3" {
				t.Errorf("priority = %s", b.Priority)
			}
		}},
		{"info is P5", func(n *receiver.Notification) { n.Severity = "info" }, func(t *testing.T, b createBody) {
			if b.Priority != "P5" {
				t.Errorf("priority = %s", b.Priority)
			}
		}},
		{"unknown severity is P5", func(n *receiver.Notification) { n.Severity = "" }, func(t *testing.T, b createBody) {
			if b.Priority != "P5" || !slices.Equal(b.Tags, []string{"auth_required", "tenant:acme", "team-mail"}) {
				t.Errorf("priority = %s, tags = %v", b.Priority, b.Tags)
			}
		}},
		{"mass bounce: entity is the receiving domain", func(n *receiver.Notification) {
			n.SendingDomain, n.SendingIP, n.ReceivingDomain = "", "", "gmail.com"
		}, func(t *testing.T, b createBody) {
			if b.Entity != "gmail.com" {
				t.Errorf("entity = %q", b.Entity)
			}
			if _, ok := b.Details["sending_domain"]; ok {
				t.Errorf("details carry an empty sending_domain: %v", b.Details)
			}
		}},
		{"empty details omitted", func(n *receiver.Notification) {
			*n = receiver.Notification{Kind: receiver.KindTrigger, ID: "x", Class: "unknown", Summary: "s"}
		}, func(t *testing.T, b createBody) {
			if want := map[string]string{"class": "unknown"}; !maps.Equal(b.Details, want) {
				t.Errorf("details = %v, want %v", b.Details, want)
			}
			if b.Description != "s" || b.Entity != "" {
				t.Errorf("description = %q, entity = %q", b.Description, b.Entity)
			}
		}},
		{"no tenant, no tenant tag", func(n *receiver.Notification) { n.Tenant = "" }, func(t *testing.T, b createBody) {
			if !slices.Equal(b.Tags, []string{"auth_required", "critical", "team-mail"}) {
				t.Errorf("tags = %v", b.Tags)
			}
		}},
		{"long summary cut to 130 bytes on a rune", func(n *receiver.Notification) { n.Summary = long }, func(t *testing.T, b createBody) {
			if len(b.Message) > 130 || !utf8.ValidString(b.Message) || !strings.HasSuffix(b.Message, "…") {
				t.Errorf("message = %q (%d bytes)", b.Message, len(b.Message))
			}
		}},
		{"empty summary still has a message", func(n *receiver.Notification) { n.Summary = "" }, func(t *testing.T, b createBody) {
			if b.Message != "Rebound incident auth_required mail.example.com" {
				t.Errorf("message = %q", b.Message)
			}
		}},
		{"huge description cut to 15000 bytes", func(n *receiver.Notification) {
			n.Examples = []string{strings.Repeat("é", 10000)}
		}, func(t *testing.T, b createBody) {
			if len(b.Description) > 15000 || !utf8.ValidString(b.Description) || !strings.HasPrefix(b.Description, receivertest.Sample().Summary) {
				t.Errorf("description: %d bytes", len(b.Description))
			}
		}},
		{"long tenant tag cut to 50 bytes", func(n *receiver.Notification) { n.Tenant = long }, func(t *testing.T, b createBody) {
			for _, tag := range b.Tags {
				if len(tag) > 50 {
					t.Errorf("tag %q: %d bytes", tag, len(tag))
				}
			}
		}},
		{"long ID hashed into the alias", func(n *receiver.Notification) { n.ID = strings.Repeat("a", 600) }, func(t *testing.T, b createBody) {
			if len(b.Alias) > 512 || !strings.HasPrefix(b.Alias, "rebound-") || b.Alias != alias(strings.Repeat("a", 600)) {
				t.Errorf("alias = %q", b.Alias)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			note := receivertest.Sample()
			c.edit(&note)
			var b createBody
			decode(t, send(t, newNotifier, note).Body, &b)
			c.check(t, b)
		})
	}
}

func TestActionRequests(t *testing.T) {
	t.Parallel()
	bare := func(u string) *Notifier { return New(Config{URL: u + "/", APIKey: apiKey}, nil) }
	byHand := receivertest.Resolved()
	byHand.ResolvedBy = "bob"
	oddID := receivertest.Resolved()
	oddID.ID = "a/b c?d"
	anonAck := receivertest.Sample()
	anonAck.Kind = receiver.KindAck

	cases := []struct {
		name     string
		note     receiver.Notification
		wantPath string
		wantBody string
	}{
		{"resolved by hand", byHand, "/v2/alerts/" + alias3f + "/close?identifierType=alias",
			`{"source":"rebound","note":"Resolved: by bob in Rebound (at 2026-11-30T09:35:00Z)."}`},
		{"alias escaped in the path", oddID, "/v2/alerts/rebound-a%2Fb%20c%3Fd/close?identifierType=alias",
			`{"source":"rebound","note":"Resolved: no new bounces since 2026-11-30T09:05:00Z (at 2026-11-30T09:35:00Z)."}`},
		{"ack without a name", anonAck, "/v2/alerts/" + alias3f + "/acknowledge?identifierType=alias",
			`{"source":"rebound","note":"Acknowledged in Rebound."}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := send(t, bare, c.note)
			if r.Path != c.wantPath {
				t.Errorf("path = %q, want %q", r.Path, c.wantPath)
			}
			if string(r.Body) != c.wantBody {
				t.Errorf("body = %s, want %s", r.Body, c.wantBody)
			}
		})
	}
}

// A notification the receiver cannot map is refused before any request, and not retried.
func TestRefused(t *testing.T) {
	t.Parallel()
	noID := receivertest.Sample()
	noID.ID = ""
	unknown := receivertest.Sample()
	unknown.Kind = "escalate"
	for _, note := range []receiver.Notification{noID, unknown} {
		srv := receivertest.NewServer(t)
		err := newNotifier(srv.URL).Send(context.Background(), note)
		if err == nil || receiver.Retryable(err) || receiver.ReasonOf(err) != "encode" {
			t.Errorf("%+v: err = %v, want a non-retryable encode error", note.Kind, err)
		}
		if len(srv.Requests()) != 0 {
			t.Errorf("%s: a request was sent", note.Kind)
		}
	}
}

func build(u string) receiver.Receiver {
	// A path prefix with a token stands for a proxy in front of Opsgenie.
	return New(Config{URL: u + "/proxy/" + pathToken, APIKey: apiKey}, nil)
}

func TestRetryCases(t *testing.T) {
	t.Parallel()
	receivertest.RetryCases(t, build)
}

func TestNoSecretInErrors(t *testing.T) {
	t.Parallel()
	receivertest.NoSecretInErrors(t, build, apiKey, pathToken)
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte(apiKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tags := func(n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = "t" + string(rune('a'+i))
		}
		return s
	}
	cases := []struct {
		name    string
		in      Config
		want    Config
		wantErr string
	}{
		{name: "defaults", in: Config{APIKey: apiKey}, want: Config{URL: DefaultURL, APIKey: apiKey}},
		{name: "EU, trailing slash", in: Config{URL: "https://api.eu.opsgenie.com/", APIKey: apiKey}, want: Config{URL: "https://api.eu.opsgenie.com", APIKey: apiKey}},
		{name: "key file relative to baseDir", in: Config{APIKeyFile: "key"}, want: Config{URL: DefaultURL, APIKey: apiKey}},
		{name: "responders and tags", in: Config{APIKey: apiKey, Responders: responders, Tags: tags(17)}, want: Config{URL: DefaultURL, APIKey: apiKey, Responders: responders, Tags: tags(17)}},
		{name: "key missing", in: Config{}, wantErr: "api_key (or api_key_file): required"},
		{name: "key and key file", in: Config{APIKey: apiKey, APIKeyFile: "key"}, wantErr: "api_key and api_key_file are both set"},
		{name: "key file missing", in: Config{APIKeyFile: "nope"}, wantErr: "api_key_file:"},
		{name: "key with a space", in: Config{APIKey: "GenieKey " + apiKey}, wantErr: "api_key: contains whitespace"},
		{name: "bad URL", in: Config{URL: "api.opsgenie.com/" + pathToken, APIKey: apiKey}, wantErr: "url: not an http(s) URL"},
		{name: "URL with a query", in: Config{URL: "https://proxy.example.com/?token=" + pathToken, APIKey: apiKey}, wantErr: "url: must not have a query"},
		{name: "bad responder type", in: Config{APIKey: apiKey, Responders: []Responder{responders[0], {Type: "group", Name: "x"}}}, wantErr: `responders[1].type: "group" is not one of team, user, escalation, schedule`},
		{name: "responder type missing", in: Config{APIKey: apiKey, Responders: []Responder{{Name: "x"}}}, wantErr: "responders[0].type: required"},
		{name: "team without id or name", in: Config{APIKey: apiKey, Responders: []Responder{{Type: "team"}}}, wantErr: "responders[0]: a team needs id or name"},
		{name: "user by name", in: Config{APIKey: apiKey, Responders: []Responder{{Type: "user", Name: "alice"}}}, wantErr: "responders[0].name: a user is named by id or username"},
		{name: "schedule by username", in: Config{APIKey: apiKey, Responders: []Responder{{Type: "schedule", Username: "alice"}}}, wantErr: "responders[0].username"},
		{name: "too many tags", in: Config{APIKey: apiKey, Tags: tags(18)}, wantErr: "tags: at most 17"},
		{name: "long tag", in: Config{APIKey: apiKey, Tags: []string{strings.Repeat("x", 51)}}, wantErr: "tags[0]: longer than 50 bytes"},
		{name: "empty tag", in: Config{APIKey: apiKey, Tags: []string{"ok", " "}}, wantErr: "tags[1]: empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := c.in
			err := got.Prepare(dir)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				for _, s := range []string{apiKey, pathToken, "opsgenie.com", "proxy.example.com"} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q leaks %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("prepared = %+v, want %+v", got, c.want)
			}
			again := got
			if err := again.Prepare(dir); err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("second Prepare = %+v, %v", again, err)
			}
		})
	}
}

// The keys are the documented ones: the loader decodes strictly, so a renamed tag
// would break every configuration that uses it.
func TestYAMLKeys(t *testing.T) {
	t.Parallel()
	const doc = `
url: https://api.eu.opsgenie.com
api_key: k
api_key_file: ""
responders:
  - {type: team, name: mail-platform}
  - {type: user, username: oncall@example.com}
  - {type: escalation, id: e1}
  - {type: schedule, id: s1, name: primary}
tags: [team-mail]
`
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := Config{
		URL: "https://api.eu.opsgenie.com", APIKey: "k",
		Responders: []Responder{
			{Type: "team", Name: "mail-platform"},
			{Type: "user", Username: "oncall@example.com"},
			{Type: "escalation", ID: "e1"},
			{Type: "schedule", ID: "s1", Name: "primary"},
		},
		Tags: []string{"team-mail"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("decoded %+v, want %+v", c, want)
	}
}
