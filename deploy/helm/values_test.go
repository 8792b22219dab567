package helm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeValues writes a values file for one case and returns its path.
func writeValues(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSchemaRejectsBadValues: values.schema.json refuses misspelt keys, wrong types and
// values outside their set, so a typo fails the install instead of being ignored.
func TestSchemaRejectsBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, values, want string
	}{
		{"unknown top-level key", "replicaCount: 3\n", "additional properties 'replicaCount' not allowed"},
		{"misspelt nested key", "process:\n  replica: 3\n", "additional properties 'replica' not allowed"},
		{"unknown key in a secret reference", "auth:\n  apiToken: {existingSecret: s, key: k, value: '', name: x}\n", "additional properties 'name' not allowed"},
		{"replicas as a string", "ingest:\n  replicas: \"two\"\n", "want integer"},
		{"mode outside its set", "mode: both\n", "/mode"},
		{"log level outside its set", "config:\n  logLevel: verbose\n", "/config/logLevel"},
		{"duration with a unit Go's parser would take but the drain arithmetic would not", "config:\n  shutdownTimeout: 1500ms\n", "/config/shutdownTimeout"},
		{"stream replicas 2", "nats:\n  streamReplicas: 2\n", "/nats/streamReplicas"},
		{"redis url with the wrong scheme", "redis:\n  url: http://redis:6379\n", "/redis/url"},
		{"batch size too big", "config:\n  batchSize: 5000\n", "/config/batchSize"},
		{"secret reference as a plain string", "auth:\n  apiToken: hunter2\n", "/auth/apiToken"},
		{"extra env that is not a REBOUND_ setting", "config:\n  extraEnv: {PATH: /bin}\n", "'PATH' does not match pattern '^REBOUND_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := runHelm(t, "template", releaseName, chartDir, "-f", writeValues(t, tt.values))
			if err == nil {
				t.Fatalf("helm template accepted\n%s", tt.values)
			}
			if !strings.Contains(out, "schema") || !strings.Contains(out, tt.want) {
				t.Errorf("error does not come from the schema or does not say %q:\n%s", tt.want, out)
			}
		})
	}
}

// TestTemplateRefusesBadCombinations: what the schema cannot see, the chart's own
// checks refuse with a message naming the values to change.
func TestTemplateRefusesBadCombinations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, values, want string
		secret             string // must not appear in the error
	}{
		{"password in the Redis URL", "redis:\n  url: redis://u:hunter2@redis:6379/0\n", "redis.password", "hunter2"},
		{"password in the NATS URL", "nats:\n  url: nats://a:4222,nats://u:s3cret@b:4222\n", "nats.auth.password", "s3cret"},
		{"KEDA and an HPA on the process role", "keda: {enabled: true, natsServerMonitoringEndpoint: 'nats:8222'}\nprocess:\n  autoscaling: {enabled: true}\n", "turn one off", ""},
		{"KEDA without the monitoring endpoint", "keda: {enabled: true}\n", "keda.natsServerMonitoringEndpoint", ""},
		{"max ack pending too low for the replicas", "config: {maxAckPending: 1000}\nprocess: {replicas: 4}\n", "config.maxAckPending", ""},
		{"two ways to authenticate to NATS", "nats:\n  auth:\n    user: u\n    creds: {existingSecret: c, key: k, value: ''}\n", "nats.auth", ""},
		{"client certificate without its key", "nats:\n  tls:\n    cert: {existingSecret: c, key: tls.crt, value: ''}\n", "nats.tls.cert and nats.tls.key", ""},
		{"Redis CA without TLS", "redis:\n  tls:\n    ca: {existingSecret: c, key: ca.crt, value: ''}\n", "rediss://", ""},
		{"a secret both inline and existing", "auth:\n  apiToken: {existingSecret: s, key: k, value: t0ken-value}\n", "REBOUND_API_TOKEN_FILE", "t0ken-value"},
		{"Mandrill without its URL", "esp:\n  mandrill:\n    webhookKey: {existingSecret: m, key: k, value: ''}\n", "esp.mandrill.webhookURL", ""},
		{"HTTPRoute without a Gateway", "httpRoute: {enabled: true, hostnames: [h.example.com]}\n", "httpRoute.parentRefs", ""},
		{"ServiceMonitor without an API token", "serviceMonitor: {enabled: true}\n", "serviceMonitor.enabled needs auth.apiTokens", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := runHelm(t, "template", releaseName, chartDir, "-f", writeValues(t, tt.values))
			if err == nil {
				t.Fatalf("helm template accepted\n%s", tt.values)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("error does not name %q:\n%s", tt.want, out)
			}
			if tt.secret != "" && strings.Contains(out, tt.secret) {
				t.Errorf("error shows the secret %q:\n%s", tt.secret, out)
			}
		})
	}
}

// TestNotesListWebhookURLs renders NOTES.txt (helm template leaves it out, so the test
// renders it as a manifest in a copy of the chart) and checks the URLs it tells the
// operator to register.
func TestNotesListWebhookURLs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file    string
		want    []string
		notWant []string
	}{
		{filepath.Join(chartDir, "ci", "split-keda-monitoring-values.yaml"), []string{
			"https://rebound.example.com/webhooks/sendgrid   (Settings > Mail Settings > Event Webhook",
			"https://rebound.example.com/webhooks/mandrill   (Settings > Webhooks",
			"https://rebound.example.com/webhooks/ses   (an SNS HTTPS subscription",
			"https://rebound.example.com/webhooks/brevo   (not configured: refuses every request)",
			"svc/rb-rebound-api",
		}, []string{"port-forward svc/rb-rebound-ingest", "Monitoring is off"}},
		{filepath.Join(chartDir, "ci", "existing-secrets-values.yaml"), []string{
			"https://hooks.example.com/webhooks/brevo   (Transactional > Settings > Webhook",
			"https://hooks.example.com/webhooks/generic",
		}, []string{"not configured"}},
		{"", []string{
			"https://<your public host>/webhooks/sendgrid",
			"port-forward svc/rb-rebound-ingest 8080:80",
			"Monitoring is off",
			"port-forward deploy/rb-rebound-api 9090:9090", // no API token: /v1 on the pods' loopback
		}, nil},
	}
	chart := notesChart(t)
	for _, tt := range tests {
		t.Run(caseName(tt.file), func(t *testing.T) {
			t.Parallel()
			args := []string{"template", releaseName, chart, "--namespace", namespace, "--show-only", "templates/zz-notes.yaml"}
			if tt.file != "" {
				abs, err := filepath.Abs(tt.file)
				if err != nil {
					t.Fatal(err)
				}
				args = append(args, "-f", abs)
			}
			out, err := runHelm(t, args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("NOTES lack %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("NOTES say %q:\n%s", w, out)
				}
			}
		})
	}
}

// notesChart copies the chart and adds a template that renders NOTES.txt into a
// ConfigMap, so that helm template shows it.
func notesChart(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), chartDir)
	if err := os.CopyFS(dst, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile(filepath.Join(chartDir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"_zz-notes.tpl": `{{- define "test.notes" -}}` + string(notes) + `{{- end }}`,
		"zz-notes.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\ndata:\n  notes: |\n    {{- include \"test.notes\" . | nindent 4 }}\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dst, "templates", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
