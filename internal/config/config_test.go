package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// env is a fake environment: tests never read or change the process environment.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// setup returns a fresh, silent flag set, so every test parses in isolation.
func setup(t *testing.T) *flag.FlagSet {
	t.Helper()
	fs := flag.NewFlagSet(t.Name(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// withoutFuncs zeroes the func-typed fields of c (func values never compare equal),
// so two configs can be compared setting by setting.
func withoutFuncs(c Config) Config {
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Func {
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return c
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	got, err := Parse(setup(t), nil, env{}.get)
	if err != nil {
		t.Fatalf("Parse with nothing set: %v", err)
	}
	if want := Default(); !reflect.DeepEqual(withoutFuncs(got), withoutFuncs(want)) {
		t.Errorf("Parse with nothing set = %+v\nwant Default() = %+v", got, want)
	}
	for _, r := range AllRoles {
		if !got.Has(r) {
			t.Errorf("default config lacks role %q", r)
		}
	}
}

func TestParseEnvOverridesDefault(t *testing.T) {
	t.Parallel()
	e := env{
		"REBOUND_NATS_URL":              "nats://a:4222, tls://b:4222",
		"REBOUND_REDIS_URL":             "rediss://user:pw@redis.internal:6380/2",
		"REBOUND_REDIS_SENTINEL_ADDRS":  "s1:26379, s2:26379,",
		"REBOUND_REDIS_SENTINEL_MASTER": "mymaster",
		"REBOUND_REDIS_PREFIX":          "rb:",
		"REBOUND_HTTP_ADDR":             ":9090",
		"REBOUND_ROLES":                 "Ingest, api",
		"REBOUND_STREAM_REPLICAS":       "3",
		"REBOUND_ACK_WAIT":              "45s",
		"REBOUND_BATCH_SIZE":            "100",
		"REBOUND_MAX_BODY_BYTES":        "4096",
		"REBOUND_LOG_LEVEL":             "debug",
		"REBOUND_LOG_FORMAT":            "console",
		"REBOUND_GENERIC_TOKEN":         "tok",
		"REBOUND_HISTORY_TTL":           "720h",
	}
	got, err := Parse(setup(t), nil, e.get)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"NATSURL", got.NATSURL, "nats://a:4222, tls://b:4222"},
		{"RedisURL", got.RedisURL, "rediss://user:pw@redis.internal:6380/2"},
		{"RedisSentinelAddrs", got.RedisSentinelAddrs, []string{"s1:26379", "s2:26379"}},
		{"RedisSentinelMaster", got.RedisSentinelMaster, "mymaster"},
		{"RedisPrefix", got.RedisPrefix, "rb:"},
		{"HTTPAddr", got.HTTPAddr, ":9090"},
		{"Roles", got.Roles, []Role{RoleIngest, RoleAPI}},
		{"StreamReplicas", got.StreamReplicas, 3},
		{"AckWait", got.AckWait, 45 * time.Second},
		{"BatchSize", got.BatchSize, 100},
		{"MaxBodyBytes", got.MaxBodyBytes, int64(4096)},
		{"LogLevel", got.LogLevel, "debug"},
		{"LogFormat", got.LogFormat, "console"},
		{"GenericToken", got.GenericToken, "tok"},
		{"HistoryTTL reaches the store", got.StoreOptions().HistoryTTL, 720 * time.Hour},
		// Untouched settings keep their default.
		{"MaxDeliver", got.MaxDeliver, Default().MaxDeliver},
		{"DedupWindow", got.DedupWindow, Default().DedupWindow},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	if got.Has(RoleProcess) || got.Has(RoleNotify) {
		t.Errorf("Roles = %v: process/notify should be off", got.Roles)
	}
}

func TestParseFlagOverridesEnv(t *testing.T) {
	t.Parallel()
	e := env{
		"REBOUND_BATCH_SIZE": "100",
		"REBOUND_HTTP_ADDR":  "127.0.0.1:1111",
		"REBOUND_ACK_WAIT":   "45s",
		"REBOUND_ROLES":      "ingest",
	}
	args := []string{"--batch-size=200", "--http-addr", "0.0.0.0:2222", "--ack-wait=1m", "--roles=process,notify"}
	got, err := Parse(setup(t), args, e.get)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got.BatchSize != 200 {
		t.Errorf("BatchSize = %d, want the flag's 200", got.BatchSize)
	}
	if got.HTTPAddr != "0.0.0.0:2222" {
		t.Errorf("HTTPAddr = %q, want the flag's", got.HTTPAddr)
	}
	if got.AckWait != time.Minute {
		t.Errorf("AckWait = %s, want the flag's 1m", got.AckWait)
	}
	if want := []Role{RoleProcess, RoleNotify}; !slices.Equal(got.Roles, want) {
		t.Errorf("Roles = %v, want the flag's %v", got.Roles, want)
	}
}

func TestParseSecretsAreNotFlags(t *testing.T) {
	t.Parallel()
	for _, flagName := range []string{"--generic-token=x", "--alert-webhook-url=https://h.example/x"} {
		if _, err := Parse(setup(t), []string{flagName}, env{}.get); err == nil {
			t.Errorf("Parse(%s) succeeded: secrets must come only from the environment or a file", flagName)
		}
	}
}

func TestParseValidationNamesTheSetting(t *testing.T) {
	t.Parallel()
	const webhookSecret = "T0KEN-s3cr3t"
	tests := []struct {
		name    string
		env     env
		setting string
		// mustNotContain lists text that must never appear in the error (secrets).
		mustNotContain []string
	}{
		{"nats url scheme", env{"REBOUND_NATS_URL": "http://nats.internal:4222"}, "REBOUND_NATS_URL", nil},
		{"nats url second entry", env{"REBOUND_NATS_URL": "nats://a:4222,redis://b:4222"}, "REBOUND_NATS_URL", nil},
		{"nats url no host", env{"REBOUND_NATS_URL": "nats://"}, "REBOUND_NATS_URL", nil},
		{"redis url scheme", env{"REBOUND_REDIS_URL": "http://redis.internal:6379"}, "REBOUND_REDIS_URL", nil},
		{"redis url not parseable keeps password out", env{"REBOUND_REDIS_URL": "redis://user:hunter2@redis internal:6379"}, "REBOUND_REDIS_URL", []string{"hunter2"}},
		{"unknown role", env{"REBOUND_ROLES": "ingest,bogus"}, "REBOUND_ROLES", nil},
		{"roles only separators", env{"REBOUND_ROLES": " , "}, "REBOUND_ROLES", nil},
		{"http addr not host:port", env{"REBOUND_HTTP_ADDR": "8080"}, "REBOUND_HTTP_ADDR", nil},
		{"redis prefix with braces", env{"REBOUND_REDIS_PREFIX": "rb{x}:"}, "REBOUND_REDIS_PREFIX", nil},
		{"redis prefix with space", env{"REBOUND_REDIS_PREFIX": "rb x:"}, "REBOUND_REDIS_PREFIX", nil},
		{"batch size zero", env{"REBOUND_BATCH_SIZE": "0"}, "REBOUND_BATCH_SIZE", nil},
		{"batch size too big", env{"REBOUND_BATCH_SIZE": "5000", "REBOUND_MAX_ACK_PENDING": "10000"}, "REBOUND_BATCH_SIZE", nil},
		{"batch size not a number", env{"REBOUND_BATCH_SIZE": "lots"}, "REBOUND_BATCH_SIZE", nil},
		{"duration not parseable", env{"REBOUND_ACK_WAIT": "soon"}, "REBOUND_ACK_WAIT", nil},
		{"duration without unit", env{"REBOUND_STREAM_MAX_AGE": "7"}, "REBOUND_STREAM_MAX_AGE", nil},
		{"duration negative", env{"REBOUND_SHUTDOWN_TIMEOUT": "-5s"}, "REBOUND_SHUTDOWN_TIMEOUT", nil},
		{"sentinel addrs without master", env{"REBOUND_REDIS_SENTINEL_ADDRS": "s1:26379"}, "REBOUND_REDIS_SENTINEL_MASTER", nil},
		{"sentinel addr not host:port", env{"REBOUND_REDIS_SENTINEL_ADDRS": "s1", "REBOUND_REDIS_SENTINEL_MASTER": "m"}, "REBOUND_REDIS_SENTINEL_ADDRS", nil},
		{"sentinel and cluster", env{"REBOUND_REDIS_SENTINEL_ADDRS": "s1:26379", "REBOUND_REDIS_SENTINEL_MASTER": "m", "REBOUND_REDIS_CLUSTER_ADDRS": "c1:6379"}, "REBOUND_REDIS_CLUSTER_ADDRS", nil},
		{"stream replicas 2", env{"REBOUND_STREAM_REPLICAS": "2"}, "REBOUND_STREAM_REPLICAS", nil},
		{"max deliver 1", env{"REBOUND_MAX_DELIVER": "1"}, "REBOUND_MAX_DELIVER", nil},
		{"max ack pending below batch", env{"REBOUND_MAX_ACK_PENDING": "10", "REBOUND_BATCH_SIZE": "20"}, "REBOUND_MAX_ACK_PENDING", nil},
		{"max body too small", env{"REBOUND_MAX_BODY_BYTES": "10"}, "REBOUND_MAX_BODY_BYTES", nil},
		{"dedup window over max age", env{"REBOUND_DEDUP_WINDOW": "48h", "REBOUND_STREAM_MAX_AGE": "24h"}, "REBOUND_DEDUP_WINDOW", nil},
		{"subject prefix wildcard", env{"REBOUND_SUBJECT_PREFIX": "rb.>"}, "REBOUND_SUBJECT_PREFIX", nil},
		{"alert webhook not http", env{"REBOUND_ALERT_WEBHOOK_URL": "ftp://hooks.example.com/services/" + webhookSecret}, "REBOUND_ALERT_WEBHOOK_URL",
			[]string{webhookSecret, "hooks.example.com", "ftp://"}},
		{"alert webhook no host", env{"REBOUND_ALERT_WEBHOOK_URL": "https:///" + webhookSecret}, "REBOUND_ALERT_WEBHOOK_URL",
			[]string{webhookSecret}},
		{"alert webhook unparseable", env{"REBOUND_ALERT_WEBHOOK_URL": "https://hooks.example.com/%zz" + webhookSecret}, "REBOUND_ALERT_WEBHOOK_URL",
			[]string{webhookSecret, "hooks.example.com"}},
		{"log level", env{"REBOUND_LOG_LEVEL": "verbose"}, "REBOUND_LOG_LEVEL", nil},
		{"log format", env{"REBOUND_LOG_FORMAT": "xml"}, "REBOUND_LOG_FORMAT", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(setup(t), nil, tt.env.get)
			if err == nil {
				t.Fatalf("Parse(%v) succeeded, want an error naming %s", tt.env, tt.setting)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.setting) {
				t.Errorf("error %q does not name %s", msg, tt.setting)
			}
			for _, secret := range tt.mustNotContain {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q leaks %q", msg, secret)
				}
			}
		})
	}
}

func TestSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     env
		want    string
		wantErr []string // substrings the error must contain; nil = no error
	}{
		{"unset", env{}, "", nil},
		{"env only", env{"X_TOKEN": "from-env"}, "from-env", nil},
		{"file only, trailing newline trimmed", env{"X_TOKEN_FILE": file}, "s3cret", nil},
		{"both set", env{"X_TOKEN": "from-env", "X_TOKEN_FILE": file}, "", []string{"X_TOKEN ", "X_TOKEN_FILE"}},
		{"file missing", env{"X_TOKEN_FILE": filepath.Join(dir, "nope")}, "", []string{"X_TOKEN_FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Secret(tt.env.get, "X_TOKEN")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Secret: %v", err)
				}
				if got != tt.want {
					t.Errorf("Secret = %q, want %q", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Secret = %q, want an error", got)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "from-env") || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q leaks the secret", err)
			}
		})
	}
}

func TestParseReadsSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "generic")
	hookFile := filepath.Join(dir, "webhook")
	if err := os.WriteFile(tokenFile, []byte("gen-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hookFile, []byte("https://hooks.example.com/T0KEN\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(setup(t), nil, env{
		"REBOUND_GENERIC_TOKEN_FILE":     tokenFile,
		"REBOUND_ALERT_WEBHOOK_URL_FILE": hookFile,
	}.get)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got.GenericToken != "gen-token" {
		t.Errorf("GenericToken = %q, want gen-token", got.GenericToken)
	}
	if got.AlertWebhookURL != "https://hooks.example.com/T0KEN" {
		t.Errorf("AlertWebhookURL = %q", got.AlertWebhookURL)
	}

	_, err = Parse(setup(t), nil, env{"REBOUND_GENERIC_TOKEN": "a", "REBOUND_GENERIC_TOKEN_FILE": tokenFile}.get)
	if err == nil || !strings.Contains(err.Error(), "REBOUND_GENERIC_TOKEN_FILE") {
		t.Errorf("Parse with token and token file: err = %v, want one naming both", err)
	}
}

func TestFlagReplacesABadVariable(t *testing.T) {
	t.Parallel()
	env := map[string]string{"REBOUND_ACK_WAIT": "soon"}
	getenv := func(k string) string { return env[k] }
	if _, err := Parse(flag.NewFlagSet("t", flag.ContinueOnError), nil, getenv); err == nil || !strings.Contains(err.Error(), "REBOUND_ACK_WAIT") {
		t.Fatalf("bad variable alone: err = %v, want it to name REBOUND_ACK_WAIT", err)
	}
	c, err := Parse(flag.NewFlagSet("t", flag.ContinueOnError), []string{"--ack-wait=1m"}, getenv)
	if err != nil || c.AckWait != time.Minute {
		t.Fatalf("with --ack-wait=1m: %v, %v; want the flag to replace the bad variable", c.AckWait, err)
	}
}

// testCAFile writes a self-signed CA certificate in PEM to dir and returns its path.
func testCAFile(t *testing.T, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rebound test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseNATSAndRedisCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testCAFile(t, dir)
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	creds, nkey := file("nats.creds", "-----BEGIN NATS USER JWT-----\n"), file("nkey.seed", "SUA...\n")
	cert, key := file("tls.crt", "cert"), file("tls.key", "key")
	redisPW, natsPW := file("redis-password", "r3dis-pw\n"), file("nats-password", "n4ts-pw\n")

	got, err := Parse(setup(t), nil, env{
		"REBOUND_NATS_CREDS_FILE":     creds,
		"REBOUND_NATS_CA_FILE":        ca,
		"REBOUND_NATS_CERT_FILE":      cert,
		"REBOUND_NATS_KEY_FILE":       key,
		"REBOUND_REDIS_URL":           "rediss://rebound@redis:6380/0",
		"REBOUND_REDIS_PASSWORD_FILE": redisPW,
		"REBOUND_REDIS_CA_FILE":       ca,
	}.get)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for _, c := range []struct{ name, got, want string }{
		{"NATSCredsFile", got.NATSCredsFile, creds}, {"NATSCAFile", got.NATSCAFile, ca},
		{"NATSCertFile", got.NATSCertFile, cert}, {"NATSKeyFile", got.NATSKeyFile, key},
		{"RedisPassword", got.RedisPassword, "r3dis-pw"}, {"RedisCAFile", got.RedisCAFile, ca},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}

	got, err = Parse(setup(t), nil, env{"REBOUND_NATS_USER": "rebound", "REBOUND_NATS_PASSWORD_FILE": natsPW}.get)
	if err != nil || got.NATSUser != "rebound" || got.NATSPassword != "n4ts-pw" {
		t.Errorf("user and password file: user %q password %q err %v", got.NATSUser, got.NATSPassword, err)
	}
	if _, err := Parse(setup(t), []string{"--nats-password=x"}, env{}.get); err == nil {
		t.Error("--nats-password accepted: the password is a secret, environment or file only")
	}

	notPEM := file("not-a-ca.crt", "hello")
	tests := []struct {
		name    string
		env     env
		setting string
	}{
		{"creds and nkey", env{"REBOUND_NATS_CREDS_FILE": creds, "REBOUND_NATS_NKEY_FILE": nkey}, "REBOUND_NATS_NKEY_FILE"},
		{"nkey and user", env{"REBOUND_NATS_NKEY_FILE": nkey, "REBOUND_NATS_USER": "u"}, "REBOUND_NATS_USER"},
		{"password without user", env{"REBOUND_NATS_PASSWORD": "n4ts-pw"}, "REBOUND_NATS_PASSWORD"},
		{"cert without key", env{"REBOUND_NATS_CERT_FILE": cert}, "REBOUND_NATS_KEY_FILE"},
		{"key without cert", env{"REBOUND_NATS_KEY_FILE": key}, "REBOUND_NATS_CERT_FILE"},
		{"creds file missing", env{"REBOUND_NATS_CREDS_FILE": filepath.Join(dir, "nope")}, "REBOUND_NATS_CREDS_FILE"},
		{"nats ca not PEM", env{"REBOUND_NATS_CA_FILE": notPEM}, "REBOUND_NATS_CA_FILE"},
		{"redis ca without TLS", env{"REBOUND_REDIS_CA_FILE": ca}, "REBOUND_REDIS_CA_FILE"},
		{"redis ca missing", env{"REBOUND_REDIS_URL": "rediss://redis:6380", "REBOUND_REDIS_CA_FILE": filepath.Join(dir, "nope")}, "REBOUND_REDIS_CA_FILE"},
		{"redis password twice", env{"REBOUND_REDIS_PASSWORD": "r3dis-pw", "REBOUND_REDIS_PASSWORD_FILE": redisPW}, "REBOUND_REDIS_PASSWORD_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(setup(t), nil, tt.env.get)
			if err == nil {
				t.Fatalf("Parse(%v) succeeded, want an error naming %s", tt.env, tt.setting)
			}
			if !strings.Contains(err.Error(), tt.setting) {
				t.Errorf("error %q does not name %s", err, tt.setting)
			}
			for _, secret := range []string{"n4ts-pw", "r3dis-pw"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks a password", err)
				}
			}
		})
	}
}

// TestParseWebhookEdgeSettings: the in-flight bounds of webhook requests and the
// generic endpoint's relay switch, from the environment or a flag, each bad value
// refused with an error that names its setting.
func TestParseWebhookEdgeSettings(t *testing.T) {
	t.Parallel()
	d := Default()
	if d.WebhookConcurrency != 128 || d.WebhookConcurrencyPerESP != 32 || d.GenericAllowRelay {
		t.Errorf("defaults %d, %d, %v; want 128, 32 and no relay", d.WebhookConcurrency, d.WebhookConcurrencyPerESP, d.GenericAllowRelay)
	}
	got, err := Parse(setup(t), nil, env{
		"REBOUND_WEBHOOK_CONCURRENCY": "64", "REBOUND_WEBHOOK_CONCURRENCY_PER_ESP": "8", "REBOUND_GENERIC_ALLOW_RELAY": "true",
	}.get)
	if err != nil {
		t.Fatal(err)
	}
	if got.WebhookConcurrency != 64 || got.WebhookConcurrencyPerESP != 8 || !got.GenericAllowRelay {
		t.Errorf("from the environment: %d, %d, %v; want 64, 8, true", got.WebhookConcurrency, got.WebhookConcurrencyPerESP, got.GenericAllowRelay)
	}
	// Lowering the total alone is enough: the per-ESP default above it is bounded by it.
	if _, err := Parse(setup(t), nil, env{"REBOUND_WEBHOOK_CONCURRENCY": "8"}.get); err != nil {
		t.Errorf("a total below the per-ESP default: %v", err)
	}
	got, err = Parse(setup(t), []string{"--webhook-concurrency=16", "--webhook-concurrency-per-esp=16", "--generic-allow-relay=false"},
		env{"REBOUND_WEBHOOK_CONCURRENCY": "64", "REBOUND_GENERIC_ALLOW_RELAY": "maybe"}.get)
	if err != nil {
		t.Fatalf("flags replace bad or other variables: %v", err)
	}
	if got.WebhookConcurrency != 16 || got.WebhookConcurrencyPerESP != 16 || got.GenericAllowRelay {
		t.Errorf("from flags: %d, %d, %v; want 16, 16, false", got.WebhookConcurrency, got.WebhookConcurrencyPerESP, got.GenericAllowRelay)
	}
	for _, tt := range []struct {
		env     env
		setting string
	}{
		{env{"REBOUND_WEBHOOK_CONCURRENCY": "0"}, "REBOUND_WEBHOOK_CONCURRENCY"},
		{env{"REBOUND_WEBHOOK_CONCURRENCY": "1000001"}, "REBOUND_WEBHOOK_CONCURRENCY"},
		{env{"REBOUND_WEBHOOK_CONCURRENCY": "many"}, "REBOUND_WEBHOOK_CONCURRENCY"},
		{env{"REBOUND_WEBHOOK_CONCURRENCY_PER_ESP": "0"}, "REBOUND_WEBHOOK_CONCURRENCY_PER_ESP"},
		{env{"REBOUND_WEBHOOK_CONCURRENCY_PER_ESP": "1000001"}, "REBOUND_WEBHOOK_CONCURRENCY_PER_ESP"},
		{env{"REBOUND_GENERIC_ALLOW_RELAY": "yes please"}, "REBOUND_GENERIC_ALLOW_RELAY"},
	} {
		_, err := Parse(setup(t), nil, tt.env.get)
		if err == nil || !strings.Contains(err.Error(), tt.setting) {
			t.Errorf("Parse(%v) = %v, want an error naming %s", tt.env, err, tt.setting)
		}
	}
}

func TestFlagsAfterPositionalArguments(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args       []string
		tenant     string
		positional []string
	}{
		{[]string{"ana@example.com", "--tenant", "acme"}, "acme", []string{"ana@example.com"}},
		{[]string{"--tenant=acme", "a", "b"}, "acme", []string{"a", "b"}},
		{[]string{"a", "-tenant", "acme", "b"}, "acme", []string{"a", "b"}},
		{[]string{"a", "--", "--tenant", "x"}, "", []string{"a", "--tenant", "x"}},
		{nil, "", nil},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		tenant := fs.String("tenant", "", "")
		if _, err := Parse(fs, tt.args, env{}.get); err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if *tenant != tt.tenant || !slices.Equal(fs.Args(), tt.positional) {
			t.Errorf("%q: tenant %q, positional %q; want %q, %q", tt.args, *tenant, fs.Args(), tt.tenant, tt.positional)
		}
	}
}
