package alert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/reboundhq/rebound/internal/alert/alertmanager"
	"github.com/reboundhq/rebound/internal/alert/opsgenie"
	"github.com/reboundhq/rebound/internal/alert/pagerduty"
	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/alert/slack"
	"github.com/reboundhq/rebound/internal/alert/teams"
	"github.com/reboundhq/rebound/internal/alert/webhook"
)

// Config is the alerting configuration (REBOUND_ALERT_CONFIG): who is told about
// incidents, which incidents reach whom, and how delivery retries.
type Config struct {
	Receivers []ReceiverConfig `yaml:"receivers"`
	// Routes are tried in order; the first whose match fits the incident names its
	// receivers. With no routes every receiver gets every incident; when routes exist
	// and none matches, DefaultReceivers get it, or every receiver when that is empty
	// (an incident nobody hears about is worse than one heard twice).
	Routes           []Route  `yaml:"routes"`
	DefaultReceivers []string `yaml:"default_receivers"`
	// RunbookURL is a template for the runbook link: {class}, {code}, {severity} and
	// {id} are replaced.
	RunbookURL string `yaml:"runbook_url"`
	// ExternalURL is where Rebound's API is reached from outside; the incident link is
	// ExternalURL + "/v1/alerts/" + id.
	ExternalURL string `yaml:"external_url"`
	// ControlSignal publishes a message on <prefix>.control.sender.<class> when a
	// sender-side incident opens and when it resolves (default true).
	ControlSignal *bool            `yaml:"control_signal"`
	Delivery      DeliverySettings `yaml:"delivery"`

	dir   string         // the file's folder: relative *_file paths are read from it
	lines map[string]int // line of each top-level key ("delivery.timeout" one level down), for errors
}

// DeliverySettings tunes retries. Durations are Go durations or days ("1d").
type DeliverySettings struct {
	InitialBackoff Duration `yaml:"initial_backoff"` // first retry delay (default 5s), doubled each try
	MaxBackoff     Duration `yaml:"max_backoff"`     // cap of the delay (default 5m)
	GiveUpAfter    Duration `yaml:"give_up_after"`   // a notification not delivered by then is dropped (default 24h)
	Timeout        Duration `yaml:"timeout"`         // one send (default 10s)
}

// ReceiverConfig is one named destination with exactly one integration.
type ReceiverConfig struct {
	Name         string               `yaml:"name"`
	PagerDuty    *pagerduty.Config    `yaml:"pagerduty"`
	Slack        *slack.Config        `yaml:"slack"`
	Teams        *teams.Config        `yaml:"teams"`
	Alertmanager *alertmanager.Config `yaml:"alertmanager"`
	Webhook      *webhook.Config      `yaml:"webhook"`
	Opsgenie     *opsgenie.Config     `yaml:"opsgenie"`
	line         int
}

// UnmarshalYAML keeps the line for error messages.
func (r *ReceiverConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain ReceiverConfig
	var p plain
	if err := decodeStrict(n, &p); err != nil {
		return err
	}
	*r = ReceiverConfig(p)
	r.line = n.Line
	return nil
}

// Route sends the incidents that match to its receivers.
type Route struct {
	// Match names incident labels (severity, class, tenant, sending_domain,
	// receiving_domain) and the value, or list of values, each must have.
	Match     map[string]Values `yaml:"match"`
	Receivers []string          `yaml:"receivers"`
	line      int
}

// UnmarshalYAML keeps the line for error messages.
func (r *Route) UnmarshalYAML(n *yaml.Node) error {
	type plain Route
	var p plain
	if err := decodeStrict(n, &p); err != nil {
		return err
	}
	*r = Route(p)
	r.line = n.Line
	return nil
}

// Values is one string or a list of them.
type Values []string

// UnmarshalYAML accepts a scalar or a sequence.
func (v *Values) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*v = Values{n.Value}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*v = list
	return nil
}

// Duration is a duration in the config file: Go syntax plus a day suffix.
type Duration struct{ D time.Duration }

// UnmarshalYAML parses "30s", "5m", "1d".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var x time.Duration
		x, err = time.ParseDuration(days + "h")
		d.D = x * 24
		if x > math.MaxInt64/24 {
			// x*24 wrapped around: "500000d" would have been read as some 73 years.
			d.D = -1
		}
	} else {
		d.D, err = time.ParseDuration(s)
	}
	if err != nil || d.D <= 0 {
		return fmt.Errorf("line %d: %q is not a positive duration (e.g. 30s, 5m, 1d)", n.Line, n.Value)
	}
	return nil
}

func decodeStrict(n *yaml.Node, v any) error {
	// Node.Decode does not take KnownFields, so re-encode the node and decode strictly.
	b, err := yaml.Marshal(n)
	if err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		// yaml numbers the lines of the re-encoded node, not of the file: translate them
		// through the same node parsed back, so the error points at the offending key
		// rather than at the start of the receiver or route.
		lines := map[int]int{}
		var doc yaml.Node
		if yaml.Unmarshal(b, &doc) == nil && len(doc.Content) == 1 {
			mapLines(doc.Content[0], n, lines)
		}
		return yamlError(err, func(l int) int {
			if fl, ok := lines[l]; ok {
				return fl
			}
			return n.Line
		}, n.Line)
	}
	return nil
}

// mapLines records, for each node of re-encoded, the line of its twin in orig.
func mapLines(re, orig *yaml.Node, lines map[int]int) {
	if _, ok := lines[re.Line]; !ok {
		lines[re.Line] = orig.Line
	}
	if len(re.Content) != len(orig.Content) {
		return
	}
	for i := range re.Content {
		mapLines(re.Content[i], orig.Content[i], lines)
	}
}

var (
	lineRe = regexp.MustCompile(`^line (\d+): `)
	// yaml quotes (the start of) a value it cannot decode, e.g. headers: "Bearer s3cr3t"
	// → "cannot unmarshal !!str `Bearer ...`": a value may be a secret, so it goes.
	valueRe   = regexp.MustCompile(" `[^`]*`")
	unknownRe = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// yamlError rewrites a yaml error for the operator: one "line N: what" per problem,
// with lines translated by line (the identity for the file itself; def when yaml gave
// none), no value quoted (it may be a secret) and no Go type names.
func yamlError(err error, line func(int) int, def int) error {
	msgs := []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for i, m := range msgs {
		l := def
		if sub := lineRe.FindStringSubmatch(m); sub != nil {
			n, _ := strconv.Atoi(sub[1])
			l, m = line(n), m[len(sub[0]):]
		}
		m = valueRe.ReplaceAllString(m, "")
		m = unknownRe.ReplaceAllString(m, `unknown key "$1"`)
		if l > 0 {
			m = fmt.Sprintf("line %d: %s", l, m)
		}
		msgs[i] = m
	}
	return errors.New(strings.Join(msgs, "; "))
}

// The labels a route may match on.
var matchLabels = []string{"severity", "class", "tenant", "sending_domain", "receiving_domain"}

// Reserved receiver names: the built-in ones.
const (
	ReceiverLog     = "log"
	ReceiverControl = "control"
)

var nameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

// LoadFile reads and validates an alerting configuration file.
func LoadFile(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse validates an alerting configuration; baseDir is where relative *_file paths
// are read from. Errors name the line.
func Parse(b []byte, baseDir string) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF: it means "no receivers".
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(err, func(l int) int { return l }, 0)
	}
	c.dir = baseDir
	c.lines = keyLines(b)
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Default is the configuration when no file is given.
func Default() *Config {
	c := &Config{}
	_ = c.validate()
	return c
}

// keyLines finds the line of each top-level key, and of the keys of a mapping below
// one ("delivery.timeout"), for the errors that check a value after decoding.
func keyLines(b []byte) map[string]int {
	lines := map[string]int{}
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return lines
	}
	top := doc.Content[0].Content
	for i := 0; i+1 < len(top); i += 2 {
		lines[top[i].Value] = top[i].Line
		if sub := top[i+1]; sub.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(sub.Content); j += 2 {
				lines[top[i].Value+"."+sub.Content[j].Value] = sub.Content[j].Line
			}
		}
	}
	return lines
}

// at prefixes an error with the line of the first of keys the file has ("line 7: "),
// or nothing when none is (no file, or the value is a default).
func (c *Config) at(keys ...string) string {
	for _, k := range keys {
		if l := c.lines[k]; l > 0 {
			return fmt.Sprintf("line %d: ", l)
		}
	}
	return ""
}

func (c *Config) validate() error {
	d := &c.Delivery
	if d.InitialBackoff.D == 0 {
		d.InitialBackoff.D = 5 * time.Second
	}
	if d.MaxBackoff.D == 0 {
		d.MaxBackoff.D = 5 * time.Minute
	}
	if d.GiveUpAfter.D == 0 {
		d.GiveUpAfter.D = 24 * time.Hour
	}
	if d.Timeout.D == 0 {
		d.Timeout.D = 10 * time.Second
	}
	if d.MaxBackoff.D < d.InitialBackoff.D {
		return fmt.Errorf("%sdelivery.max_backoff: %s is shorter than initial_backoff %s", c.at("delivery.max_backoff", "delivery.initial_backoff"), d.MaxBackoff.D, d.InitialBackoff.D)
	}
	if c.ExternalURL != "" {
		if err := receiver.CheckURL("external_url", c.ExternalURL); err != nil {
			return fmt.Errorf("%s%w", c.at("external_url"), err)
		}
		c.ExternalURL = strings.TrimRight(c.ExternalURL, "/")
	}
	names := map[string]bool{}
	for i := range c.Receivers {
		r := &c.Receivers[i]
		where := fmt.Sprintf("line %d: receivers[%d]", r.line, i)
		if !nameRe.MatchString(r.Name) {
			return fmt.Errorf("%s: name %q: want letters, digits, '_', '.' or '-' (at most 63)", where, r.Name)
		}
		if r.Name == ReceiverLog || r.Name == ReceiverControl {
			return fmt.Errorf("%s: name %q is reserved for a built-in receiver", where, r.Name)
		}
		if names[r.Name] {
			return fmt.Errorf("%s: name %q is used twice", where, r.Name)
		}
		names[r.Name] = true
		kinds := 0
		var err error
		if r.PagerDuty != nil {
			kinds++
			err = errors.Join(err, prefixed("pagerduty", r.PagerDuty.Prepare(c.dir)))
		}
		if r.Slack != nil {
			kinds++
			err = errors.Join(err, prefixed("slack", r.Slack.Prepare(c.dir)))
		}
		if r.Teams != nil {
			kinds++
			err = errors.Join(err, prefixed("teams", r.Teams.Prepare(c.dir)))
		}
		if r.Alertmanager != nil {
			kinds++
			err = errors.Join(err, prefixed("alertmanager", r.Alertmanager.Prepare(c.dir)))
		}
		if r.Webhook != nil {
			kinds++
			err = errors.Join(err, prefixed("webhook", r.Webhook.Prepare(c.dir)))
		}
		if r.Opsgenie != nil {
			kinds++
			err = errors.Join(err, prefixed("opsgenie", r.Opsgenie.Prepare(c.dir)))
		}
		if kinds != 1 {
			return fmt.Errorf("%s (%s): want exactly one of pagerduty, slack, teams, alertmanager, webhook, opsgenie; found %d", where, r.Name, kinds)
		}
		if err != nil {
			return fmt.Errorf("%s (%s): %w", where, r.Name, err)
		}
	}
	for i, rt := range c.Routes {
		where := fmt.Sprintf("line %d: routes[%d]", rt.line, i)
		for k := range rt.Match {
			if !slices.Contains(matchLabels, k) {
				return fmt.Errorf("%s: match: unknown label %q (want %s)", where, k, strings.Join(matchLabels, ", "))
			}
		}
		if len(rt.Receivers) == 0 {
			return fmt.Errorf("%s: receivers: name at least one", where)
		}
		for _, n := range rt.Receivers {
			if !names[n] {
				return fmt.Errorf("%s: receivers: %q is not a receiver defined above", where, n)
			}
		}
	}
	for _, n := range c.DefaultReceivers {
		if !names[n] {
			return fmt.Errorf("%sdefault_receivers: %q is not a defined receiver", c.at("default_receivers"), n)
		}
	}
	return nil
}

func prefixed(kind string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", kind, err)
}

// AddWebhookShortcut adds the receiver that REBOUND_ALERT_WEBHOOK_URL stands for: a
// generic webhook named "webhook" that every incident reaches.
func (c *Config) AddWebhookShortcut(url, secret string) error {
	for _, r := range c.Receivers {
		if r.Name == "webhook" {
			return errors.New("REBOUND_ALERT_WEBHOOK_URL: the alert configuration already has a receiver named \"webhook\"")
		}
	}
	wc := webhook.Shortcut(url)
	wc.Secret = secret
	if err := wc.Prepare(""); err != nil {
		return fmt.Errorf("REBOUND_ALERT_WEBHOOK_URL: %w", err)
	}
	c.Receivers = append(c.Receivers, ReceiverConfig{Name: "webhook", Webhook: &wc})
	// A route table that exists must route to it too, or the shortcut would be silent.
	for i := range c.Routes {
		c.Routes[i].Receivers = append(c.Routes[i].Receivers, "webhook")
	}
	if len(c.DefaultReceivers) > 0 {
		c.DefaultReceivers = append(c.DefaultReceivers, "webhook")
	}
	return nil
}

// ControlSignalOn reports whether the control signal is published.
func (c *Config) ControlSignalOn() bool { return c.ControlSignal == nil || *c.ControlSignal }

// Build makes the configured receivers, in file order.
func (c *Config) Build(client *http.Client) []Target {
	out := make([]Target, 0, len(c.Receivers))
	for _, r := range c.Receivers {
		var rc receiver.Receiver
		switch {
		case r.PagerDuty != nil:
			rc = pagerduty.New(*r.PagerDuty, client)
		case r.Slack != nil:
			rc = slack.New(*r.Slack, client)
		case r.Teams != nil:
			rc = teams.New(*r.Teams, client)
		case r.Alertmanager != nil:
			rc = alertmanager.New(*r.Alertmanager, client)
		case r.Webhook != nil:
			rc = webhook.New(*r.Webhook, client)
		case r.Opsgenie != nil:
			rc = opsgenie.New(*r.Opsgenie, client)
		}
		out = append(out, Target{Name: r.Name, Receiver: rc})
	}
	return out
}

// Target is a receiver with its name.
type Target struct {
	Name     string
	Receiver receiver.Receiver
	// All makes the target receive every incident whatever the routes say (the
	// built-in ones).
	All bool
}

// Route returns the names of the configured receivers an incident goes to.
func (c *Config) Route(inc *Incident) []string {
	names, everyone := c.route(inc)
	if everyone {
		return c.allNames()
	}
	return names
}

// route is Route, with everyone set instead of a list when the incident goes to every
// receiver (no routes; no route matched and no default_receivers). The notifier needs
// the difference: "every receiver" is every target it runs, also one the file does
// not name, or an incident could reach nobody.
func (c *Config) route(inc *Incident) (names []string, everyone bool) {
	if len(c.Routes) == 0 {
		return nil, true
	}
	labels := map[string]string{"severity": inc.Severity, "class": inc.Class, "tenant": inc.Tenant,
		"sending_domain": inc.SendingDomain, "receiving_domain": inc.ReceivingDomain}
	for _, rt := range c.Routes {
		ok := true
		for k, vs := range rt.Match {
			if !slices.Contains(vs, labels[k]) {
				ok = false
				break
			}
		}
		if ok {
			return rt.Receivers, false
		}
	}
	if len(c.DefaultReceivers) > 0 {
		return c.DefaultReceivers, false
	}
	return nil, true
}

func (c *Config) allNames() []string {
	out := make([]string, len(c.Receivers))
	for i, r := range c.Receivers {
		out[i] = r.Name
	}
	return out
}
