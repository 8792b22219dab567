package alert_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/alert"
)

// Every secret in testdata's bad files contains this marker: no error may show it.
const secretMarker = "s3cr3t"

func TestGoodAllReceivers(t *testing.T) {
	t.Parallel()
	c, err := alert.LoadFile("testdata/conf.good-all-receivers.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Receivers) != 6 {
		t.Fatalf("%d receivers, want 6", len(c.Receivers))
	}
	r := c.Receivers
	kinds := []bool{r[0].PagerDuty != nil, r[1].Slack != nil, r[2].Teams != nil, r[3].Alertmanager != nil, r[4].Webhook != nil, r[5].Opsgenie != nil}
	if slices.Contains(kinds, false) {
		t.Errorf("receiver kinds = %v, want pagerduty, slack, teams, alertmanager, webhook, opsgenie in file order", kinds)
	}
	if r[0].PagerDuty.RoutingKey != "fake-pd-routing-key-0000" || r[4].Webhook.Secret != "fake-webhook-signing-secret" || r[5].Opsgenie.APIKey != "fake-opsgenie-api-key" {
		t.Errorf("inline secrets not kept: %+v %+v %+v", r[0].PagerDuty, r[4].Webhook, r[5].Opsgenie)
	}
	if len(c.Routes) != 3 || !slices.Equal(c.Routes[0].Match["class"], []string{"auth_required", "ip_blocklisted"}) ||
		!slices.Equal(c.Routes[0].Match["severity"], []string{"critical"}) || !slices.Equal(c.Routes[2].Receivers, []string{"teams", "hook", "genie"}) {
		t.Errorf("routes = %+v", c.Routes)
	}
	if !slices.Equal(c.DefaultReceivers, []string{"chat"}) || c.ControlSignalOn() {
		t.Errorf("default receivers %q, control signal %v, want [chat], off", c.DefaultReceivers, c.ControlSignalOn())
	}
	// The trailing slash goes, or the incident link would have two.
	if c.ExternalURL != "https://rebound.example.com" || c.RunbookURL != "https://runbooks.example.com/rebound/{class}" {
		t.Errorf("external URL %q, runbook %q", c.ExternalURL, c.RunbookURL)
	}
	d := c.Delivery
	if d.InitialBackoff.D != 10*time.Second || d.MaxBackoff.D != 10*time.Minute || d.GiveUpAfter.D != 48*time.Hour || d.Timeout.D != 5*time.Second {
		t.Errorf("delivery = %+v", d)
	}
	targets := c.Build(nil)
	var names []string
	for _, tg := range targets {
		names = append(names, tg.Name)
		if tg.Receiver == nil || tg.All {
			t.Errorf("target %s = %+v, want a receiver, routed", tg.Name, tg)
		}
	}
	if !slices.Equal(names, []string{"oncall", "chat", "teams", "am", "hook", "genie"}) {
		t.Errorf("targets = %q", names)
	}
}

// *_file secrets are read relative to the configuration file's folder, whatever the
// working directory, and end up in the value with the file setting cleared.
func TestFileSecretsAreRelativeToTheFile(t *testing.T) {
	t.Parallel()
	abs, err := filepath.Abs("testdata/conf.good-file-secrets.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"testdata/conf.good-file-secrets.yml", abs} {
		c, err := alert.LoadFile(path)
		if err != nil {
			t.Fatalf("LoadFile(%s): %v", path, err)
		}
		r := c.Receivers
		got := []string{r[0].PagerDuty.RoutingKey, r[0].PagerDuty.RoutingKeyFile, r[1].Slack.URL, r[1].Slack.URLFile,
			r[2].Webhook.Secret, r[2].Webhook.SecretFile, r[3].Opsgenie.APIKey, r[3].Opsgenie.APIKeyFile}
		want := []string{"fake-pd-key-from-file", "", "https://hooks.slack.example.com/services/T000/B000/fake-slack-token-from-file", "",
			"fake-webhook-secret-from-file", "", "fake-opsgenie-key-from-file", ""}
		if !slices.Equal(got, want) {
			t.Errorf("LoadFile(%s): secrets = %q, want %q", path, got, want)
		}
	}
	// Parse reads them from the folder it is given, not the working directory.
	b, err := os.ReadFile("testdata/conf.good-file-secrets.yml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alert.Parse(b, filepath.Dir(abs)); err != nil {
		t.Errorf("Parse with the file's folder: %v", err)
	}
	if _, err := alert.Parse(b, t.TempDir()); err == nil || !strings.Contains(err.Error(), "routing_key_file") {
		t.Errorf("Parse with another folder = %v, want the key file not found", err)
	}
}

func TestEmptyConfigHasNoReceivers(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"conf.good-empty.yml", "conf.good-comments-only.yml"} {
		c, err := alert.LoadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(c.Receivers) != 0 || len(c.Routes) != 0 || !c.ControlSignalOn() || len(c.Build(nil)) != 0 {
			t.Errorf("%s = %+v, want no receivers, the control signal on", name, c)
		}
		if c.Delivery != alert.Default().Delivery {
			t.Errorf("%s: delivery %+v, want the defaults %+v", name, c.Delivery, alert.Default().Delivery)
		}
	}
	d := alert.Default().Delivery
	if d.InitialBackoff.D != 5*time.Second || d.MaxBackoff.D != 5*time.Minute || d.GiveUpAfter.D != 24*time.Hour || d.Timeout.D != 10*time.Second {
		t.Errorf("default delivery = %+v", d)
	}
	if _, err := alert.LoadFile("testdata/conf.does-not-exist.yml"); err == nil {
		t.Error("LoadFile of a missing file succeeded")
	}
}

func TestBadConfigs(t *testing.T) {
	t.Parallel()
	// Each bad file with the line its error must name and what it must say.
	cases := map[string]struct {
		line int
		want string
	}{
		"conf.bad-unknown-key.yml":            {5, `unknown key "default_receiver"`},
		"conf.bad-unknown-receiver-key.yml":   {5, `unknown key "severity"`},
		"conf.bad-unknown-receiver-kind.yml":  {6, `unknown key "email"`},
		"conf.bad-opsgenie-responder.yml":     {7, `unknown key "team"`},
		"conf.bad-two-kinds.yml":              {5, "receivers[1] (both): want exactly one of pagerduty, slack, teams, alertmanager, webhook, opsgenie; found 2"},
		"conf.bad-no-kind.yml":                {2, "receivers[0] (nothing): want exactly one"},
		"conf.bad-route-unknown-receiver.yml": {8, `routes[1]: receivers: "pager" is not a receiver defined above`},
		"conf.bad-route-no-receivers.yml":     {6, "routes[0]: receivers: name at least one"},
		"conf.bad-reserved-name.yml":          {2, `name "log" is reserved`},
		"conf.bad-duplicate-name.yml":         {5, `receivers[1]: name "hook" is used twice`},
		"conf.bad-name.yml":                   {2, `name "on call": want letters`},
		"conf.bad-match-label.yml":            {6, `routes[0]: match: unknown label "sevrity"`},
		"conf.bad-match-value.yml":            {7, "cannot unmarshal !!map into []string"},
		"conf.bad-both-key-and-file.yml":      {2, "pagerduty: routing_key and routing_key_file are both set"},
		"conf.bad-missing-secret-file.yml":    {2, "opsgenie: api_key_file: open testdata/secrets/missing.key"},
		"conf.bad-empty-secret-file.yml":      {2, "webhook: secret_file: the file is empty"},
		"conf.bad-key-whitespace.yml":         {2, "pagerduty: routing_key: contains whitespace"},
		"conf.bad-slack-url.yml":              {2, "slack: url: not an http(s) URL"},
		"conf.bad-headers-not-a-map.yml":      {5, "cannot unmarshal !!str into map[string]string"},
		"conf.bad-receivers-not-a-list.yml":   {1, "cannot unmarshal !!str into"},
		"conf.bad-default-receiver.yml":       {5, `default_receivers: "pager" is not a defined receiver`},
		"conf.bad-duration.yml":               {3, `"soon" is not a positive duration`},
		"conf.bad-huge-duration.yml":          {2, `"500000d" is not a positive duration`},
		"conf.bad-backoff-order.yml":          {3, "delivery.max_backoff: 1m0s is shorter than initial_backoff 10m0s"},
		// max_backoff is the default here: the line is initial_backoff's.
		"conf.bad-initial-backoff-over-default.yml": {2, "delivery.max_backoff: 5m0s is shorter than initial_backoff 10m0s"},
		"conf.bad-external-url.yml":                 {2, "external_url: not an http(s) URL"},
		// yaml names the line of the sequence the stray item breaks (counted from 0).
		"conf.bad-yaml.yml": {1, "did not find expected '-' indicator"},
	}
	files, err := filepath.Glob("testdata/conf.bad-*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(cases) {
		t.Errorf("%d bad files in testdata, %d cases: every file needs its expectation", len(files), len(cases))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tc, ok := cases[name]
			if !ok {
				t.Fatalf("no expectation for %s", name)
			}
			_, err := alert.LoadFile(path)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if want := path + ": line " + strconv.Itoa(tc.line) + ": "; !strings.HasPrefix(msg, want) || !strings.Contains(msg, tc.want) {
				t.Errorf("error = %q\nwant it to start with %q and contain %q", msg, want, tc.want)
			}
			if strings.Contains(msg, secretMarker) {
				t.Errorf("error shows a secret: %q", msg)
			}
			if strings.Count(msg, "line ") != 1 || strings.Contains(msg, "\n") {
				t.Errorf("error = %q, want one line naming one line", msg)
			}
		})
	}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration // 0: refused
	}{
		{"30s", 30 * time.Second},
		{"5m", 5 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"1d", 24 * time.Hour},
		{"1.5d", 36 * time.Hour},
		{"7d", 7 * 24 * time.Hour},
		{"0s", 0},
		{"-1m", 0},
		{"0d", 0},
		{"d", 0},
		{"1w", 0},
		{"soon", 0},
		{"100000d", 100000 * 24 * time.Hour}, // 273 years: the largest whole-day order that fits
		{"500000d", 0},                       // overflows a Duration
		{"2562048h", 0},
	} {
		c, err := alert.Parse([]byte("delivery:\n  give_up_after: "+tc.in+"\n"), "")
		switch {
		case tc.want == 0 && err == nil:
			t.Errorf("give_up_after %q accepted as %s", tc.in, c.Delivery.GiveUpAfter.D)
		case tc.want != 0 && err != nil:
			t.Errorf("give_up_after %q: %v", tc.in, err)
		case tc.want != 0 && c.Delivery.GiveUpAfter.D != tc.want:
			t.Errorf("give_up_after %q = %s, want %s", tc.in, c.Delivery.GiveUpAfter.D, tc.want)
		case err != nil && !strings.HasPrefix(err.Error(), "line 2: "):
			t.Errorf("give_up_after %q: error %q does not name line 2", tc.in, err)
		}
	}
}

func TestAddWebhookShortcut(t *testing.T) {
	t.Parallel()
	inc := &alert.Incident{Class: "throttled", Severity: "warning"}

	// Alone, it is the one receiver and gets everything.
	c := alert.Default()
	if err := c.AddWebhookShortcut("https://hooks.example.com/rebound?token=fake\n", "fake-signing-secret"); err != nil {
		t.Fatal(err)
	}
	if len(c.Receivers) != 1 || c.Receivers[0].Name != "webhook" || c.Receivers[0].Webhook.URL != "https://hooks.example.com/rebound?token=fake" ||
		c.Receivers[0].Webhook.Secret != "fake-signing-secret" {
		t.Fatalf("receivers = %+v", c.Receivers)
	}
	if got := c.Route(inc); !slices.Equal(got, []string{"webhook"}) {
		t.Errorf("Route = %q, want [webhook]", got)
	}
	if ts := c.Build(nil); len(ts) != 1 || ts[0].Name != "webhook" || ts[0].Receiver == nil {
		t.Errorf("targets = %+v", ts)
	}

	// With a route table, every route and the default receivers name it too: the
	// shortcut is never silent.
	c = parse(t, `
receivers:
  - name: oncall
    pagerduty: {routing_key: fake-pd-key}
  - name: chat
    slack: {url: "https://hooks.slack.example.com/services/T0/B0/fake"}
routes:
  - match: {severity: critical}
    receivers: [oncall]
default_receivers: [chat]
`)
	if err := c.AddWebhookShortcut("https://hooks.example.com/rebound", ""); err != nil {
		t.Fatal(err)
	}
	if got := c.Route(&alert.Incident{Severity: "critical"}); !slices.Equal(got, []string{"oncall", "webhook"}) {
		t.Errorf("critical goes to %q, want [oncall webhook]", got)
	}
	if got := c.Route(inc); !slices.Equal(got, []string{"chat", "webhook"}) {
		t.Errorf("the rest goes to %q, want [chat webhook]", got)
	}

	// A second "webhook" and a URL that is no URL are refused, the config unchanged;
	// the error does not show the URL (it may carry a token).
	if err := c.AddWebhookShortcut("https://hooks.example.com/other", ""); err == nil || !strings.Contains(err.Error(), `named "webhook"`) {
		t.Errorf("second shortcut = %v, want refused", err)
	}
	c = alert.Default()
	for _, bad := range []string{"hooks.example.com/" + secretMarker, "ftp://hooks.example.com/" + secretMarker, ""} {
		err := c.AddWebhookShortcut(bad, "")
		if err == nil || !strings.HasPrefix(err.Error(), "REBOUND_ALERT_WEBHOOK_URL: ") || strings.Contains(err.Error(), secretMarker) {
			t.Errorf("AddWebhookShortcut(%q) = %v, want refused without the URL", bad, err)
		}
	}
	if len(c.Receivers) != 0 {
		t.Errorf("refused shortcuts left receivers: %+v", c.Receivers)
	}
}

func TestRoute(t *testing.T) {
	t.Parallel()
	const receivers = `
receivers:
  - name: pager
    webhook: {url: "https://pager.example.com/hook"}
  - name: chat
    webhook: {url: "https://chat.example.com/hook"}
  - name: acme
    webhook: {url: "https://acme.example.com/hook"}
`
	routed := parse(t, receivers+`
routes:
  - match:
      severity: critical
      class: [auth_required, ip_blocklisted]
    receivers: [pager, chat]
  - match: {class: auth_required}
    receivers: [chat]
  - match: {tenant: acme, sending_domain: [mail.acme.example, bulk.acme.example]}
    receivers: [acme]
  - match: {receiving_domain: example.net}
    receivers: [pager]
default_receivers: [chat]
`)
	noDefault := parse(t, receivers+`
routes:
  - match: {severity: critical}
    receivers: [pager]
`)
	catchAll := parse(t, receivers+`
routes:
  - match: {}
    receivers: [acme]
  - match: {severity: critical}
    receivers: [pager]
`)
	noRoutes := parse(t, receivers)
	for _, tc := range []struct {
		name string
		cfg  *alert.Config
		inc  alert.Incident
		want []string
	}{
		{"all labels of the first route", routed, alert.Incident{Severity: "critical", Class: "auth_required"}, []string{"pager", "chat"}},
		{"a value of a list", routed, alert.Incident{Severity: "critical", Class: "ip_blocklisted"}, []string{"pager", "chat"}},
		{"first match wins", routed, alert.Incident{Severity: "critical", Class: "auth_required", Tenant: "acme", SendingDomain: "mail.acme.example"}, []string{"pager", "chat"}},
		{"every label must match", routed, alert.Incident{Severity: "warning", Class: "auth_required"}, []string{"chat"}},
		{"tenant and sending domain", routed, alert.Incident{Severity: "warning", Class: "throttled", Tenant: "acme", SendingDomain: "bulk.acme.example"}, []string{"acme"}},
		{"tenant without its domain", routed, alert.Incident{Severity: "warning", Class: "throttled", Tenant: "acme", SendingDomain: "mail.example.com"}, []string{"chat"}},
		{"receiving domain", routed, alert.Incident{Class: alert.ClassMassBounce, ReceivingDomain: "example.net"}, []string{"pager"}},
		{"no match: default receivers", routed, alert.Incident{Severity: "info", Class: "throttled"}, []string{"chat"}},
		{"no match, no default: everyone", noDefault, alert.Incident{Severity: "info"}, []string{"pager", "chat", "acme"}},
		{"match with no default", noDefault, alert.Incident{Severity: "critical"}, []string{"pager"}},
		{"an empty match matches all", catchAll, alert.Incident{Severity: "critical"}, []string{"acme"}},
		{"no routes: everyone", noRoutes, alert.Incident{Severity: "critical"}, []string{"pager", "chat", "acme"}},
		{"no receivers: nobody configured", alert.Default(), alert.Incident{Severity: "critical"}, []string{}},
	} {
		if got := tc.cfg.Route(&tc.inc); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Route = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// FuzzParse: whatever the file holds, Parse returns a config or an error naming a
// problem, never a panic; a config it returns routes only to receivers it defines.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/conf.*.yml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("receivers: [&a {name: x, webhook: {url: 'https://x.example.com'}}, *a]"))
	f.Add([]byte("routes:\n  - match: {severity: [*x]}\n"))
	f.Add([]byte("delivery: {timeout: 1d, give_up_after: 9999999d}"))
	f.Add([]byte("---\n---\nreceivers: []\n"))
	dir, err := filepath.Abs("testdata")
	if err != nil {
		f.Fatal(err)
	}
	devices := regexp.MustCompile(`/(dev|proc|sys)\b`)
	f.Fuzz(func(t *testing.T, b []byte) {
		// A *_file naming a device would read forever: the operator's choice, not a
		// parsing problem.
		if devices.Match(b) || (bytes.Contains(b, []byte("_file")) && bytes.Contains(b, []byte(".."))) {
			t.Skip()
		}
		c, err := alert.Parse(b, dir)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		names := map[string]bool{}
		for _, r := range c.Receivers {
			names[r.Name] = true
		}
		for _, inc := range []alert.Incident{{}, {Severity: "critical", Class: "auth_required", Tenant: "acme"}} {
			for _, n := range c.Route(&inc) {
				if !names[n] {
					t.Fatalf("Route names %q, not a receiver", n)
				}
			}
		}
		if c.Delivery.InitialBackoff.D <= 0 || c.Delivery.MaxBackoff.D < c.Delivery.InitialBackoff.D || c.Delivery.GiveUpAfter.D <= 0 || c.Delivery.Timeout.D <= 0 {
			t.Fatalf("delivery = %+v", c.Delivery)
		}
	})
}
