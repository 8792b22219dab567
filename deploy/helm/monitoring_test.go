package helm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
)

// knownMetrics are the names Rebound exports (internal/metrics), with the series a
// histogram adds, and the few outside series the alerts read.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{"up": true, "kube_deployment_status_replicas_unavailable": true}
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	m := reflect.ValueOf(metrics.New()).Elem()
	for i := range m.NumField() {
		c, ok := m.Field(i).Interface().(prometheus.Collector)
		if !ok || m.Type().Field(i).Name == "Registry" {
			continue
		}
		ch := make(chan *prometheus.Desc, 8)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if f := fqName.FindStringSubmatch(d.String()); f != nil {
				for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
					known[f[1]+suffix] = true
				}
			}
		}
	}
	if len(known) < 30 {
		t.Fatalf("found only %d metric names in internal/metrics", len(known))
	}
	return known
}

var seriesName = regexp.MustCompile(`\b(rebound_[a-z0-9_]+|kube_[a-z0-9_]+|up)\b\s*[{\[(]?`)

// checkExpr reports the series an expression reads that nothing exports, and
// unbalanced brackets.
func checkExpr(t *testing.T, where, expr string, known map[string]bool) {
	t.Helper()
	for _, m := range seriesName.FindAllStringSubmatch(expr, -1) {
		if !known[m[1]] {
			t.Errorf("%s reads %s, which Rebound does not export: %s", where, m[1], expr)
		}
	}
	for _, pair := range []string{"()", "{}", "[]"} {
		if strings.Count(expr, pair[:1]) != strings.Count(expr, pair[1:]) {
			t.Errorf("%s: unbalanced %s in %s", where, pair, expr)
		}
	}
}

// anchors are the GitHub anchors of the headings of a Markdown file.
func anchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for line := range strings.Lines(string(b)) {
		if h, ok := strings.CutPrefix(line, "#"); ok {
			h = strings.TrimSpace(strings.TrimLeft(h, "#"))
			out[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")] = true
		}
	}
	return out
}

// TestPrometheusRuleAndDashboard: every alert has a severity, a summary and a runbook
// link to a section of docs/operations.md; alerts and dashboard read only series that
// exist; the dashboard is valid JSON covering what the issue lists.
func TestPrometheusRuleAndDashboard(t *testing.T) {
	t.Parallel()
	r := render(t, filepath.Join(chartDir, "ci", "split-keda-monitoring-values.yaml"))
	known := knownMetrics(t)
	runbooks := anchors(t, filepath.Join("..", "..", "docs", "operations.md"))

	rules := r.all("PrometheusRule")
	if len(rules) != 1 {
		t.Fatalf("%d PrometheusRules, want 1", len(rules))
	}
	var names []string
	for _, g := range nested[[]any](rules[0].typed, "spec", "groups") {
		for _, rule := range nested[[]any](g, "rules") {
			name := nested[string](rule, "alert")
			names = append(names, name)
			checkExpr(t, name, nested[string](rule, "expr"), known)
			if s := nested[string](rule, "labels", "severity"); s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q", name, s)
			}
			if nested[string](rule, "annotations", "summary") == "" || nested[string](rule, "annotations", "description") == "" {
				t.Errorf("%s: no summary or description", name)
			}
			link := nested[string](rule, "annotations", "runbook_url")
			base, anchor, _ := strings.Cut(link, "#")
			if base != r.value("prometheusRule.runbookBaseURL") || !runbooks[anchor] {
				t.Errorf("%s: runbook_url %q does not point at a section of docs/operations.md", name, link)
			}
		}
	}
	for _, want := range []string{"ReboundConsumerLagGrowing", "ReboundDeadLettersGrowing", "ReboundNotificationsFailing",
		"ReboundNotificationsDropped", "ReboundUnknownClassRateHigh", "ReboundRedisErrors", "ReboundNATSUnavailable", "ReboundPodsNotReady"} {
		if !slices.Contains(names, want) {
			t.Errorf("no alert %s", want)
		}
	}

	cms := r.all("ConfigMap")
	i := slices.IndexFunc(cms, func(o object) bool { return o.Name == fullname+"-dashboard" })
	if i < 0 {
		t.Fatal("no dashboard ConfigMap")
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(cms[i].typed.(*corev1.ConfigMap).Data["rebound.json"]), &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var all strings.Builder
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkExpr(t, "panel "+p.Title, q.Expr, known)
			all.WriteString(q.Expr + "\n")
		}
	}
	for _, want := range []string{"by (class)", "by (scope)", "by (action)", "rebound_suppressions_total", "rebound_incidents_active",
		"rebound_consumer_pending_events", "rebound_webhook_request_seconds_bucket", "rebound_process_batch_seconds_bucket", "rebound_events_failed_total"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no dashboard panel reads %s", want)
		}
	}
}

// TestConfigFilesLoad loads the policy, catalog rules and alerting file each values
// file puts in its ConfigMaps with Rebound's own loaders, as a pod would at start.
func TestConfigFilesLoad(t *testing.T) {
	t.Parallel()
	for _, file := range valuesFiles(t) {
		t.Run(caseName(file), func(t *testing.T) {
			t.Parallel()
			r := render(t, file)
			data := func(cm, key string) string {
				o, ok := r.find("ConfigMap", cm)
				if !ok {
					return ""
				}
				return o.typed.(*corev1.ConfigMap).Data[key]
			}
			dir := t.TempDir()
			rules := ""
			if s := data(fullname+"-config", "catalog-rules.yaml"); s != "" {
				rules = filepath.Join(dir, "catalog-rules.yaml")
				if err := os.WriteFile(rules, []byte(s), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cat, err := catalog.Load(rules)
			if err != nil {
				t.Fatalf("catalogRules: %v", err)
			}
			for _, key := range []string{"policy.yaml", "shadow-policy.yaml"} {
				if s := data(fullname+"-policy", key); s != "" {
					if _, err := policy.Parse([]byte(s), key, cat); err != nil {
						t.Errorf("%s: %v", key, err)
					}
				}
			}
			if s := data(fullname+"-config", "alerting.yaml"); s != "" {
				if _, err := alert.Parse([]byte(mountAlertingSecrets(t, r, s)), dir); err != nil {
					t.Errorf("alerting.yaml: %v", err)
				}
			}
		})
	}
}

// mountAlertingSecrets writes the files an alerting config reads from
// /etc/rebound/alerting-secrets into a folder, from the chart's Secret (or
// placeholders for an existingSecret), and points the config at that folder.
func mountAlertingSecrets(t *testing.T, r *rendering, config string) string {
	t.Helper()
	const mount = "/etc/rebound/alerting-secrets/"
	dir := t.TempDir()
	var given map[string]string
	if o, ok := r.find("Secret", fullname+"-alerting"); ok {
		given = o.typed.(*corev1.Secret).StringData
	}
	for _, m := range regexp.MustCompile(regexp.QuoteMeta(mount)+`([A-Za-z0-9._-]+)`).FindAllStringSubmatch(config, -1) {
		v, ok := given[m[1]]
		switch {
		case ok:
		case given != nil:
			t.Errorf("alerting.yaml reads %s%s, which alerting.secrets does not hold", mount, m[1])
		case strings.Contains(m[1], "url"):
			v = "https://hooks.example.com/placeholder"
		default:
			v = "placeholder-key"
		}
		if err := os.WriteFile(filepath.Join(dir, m[1]), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return strings.ReplaceAll(config, mount, dir+"/")
}
