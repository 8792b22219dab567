package config

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/suppress"
)

// Role is one of the jobs a worker process can run.
type Role string

// The roles. All are on by default; the Helm chart runs them as separate Deployments.
const (
	RoleIngest  Role = "ingest"
	RoleProcess Role = "process"
	RoleAPI     Role = "api"
	RoleNotify  Role = "notify"
)

// AllRoles lists every role in start order.
var AllRoles = []Role{RoleIngest, RoleProcess, RoleAPI, RoleNotify}

// Config is the whole configuration of one worker process.
type Config struct {
	NATSURL string
	// NATS authentication beyond the URL, at most one of: a credentials file (JWT and
	// nkey seed), an nkey seed file, or a user with a password. NATSPassword is a secret.
	NATSCredsFile string
	NATSNkeyFile  string
	NATSUser      string
	NATSPassword  string // secret
	// NATS TLS: a CA bundle to trust, and a client certificate with its key (mTLS).
	NATSCAFile   string
	NATSCertFile string
	NATSKeyFile  string

	RedisURL string
	// RedisPassword replaces the password of REBOUND_REDIS_URL, so that the URL can
	// live in a ConfigMap and the password in a Secret.
	RedisPassword string // secret
	// RedisCAFile is a CA bundle to trust for rediss://, instead of the system roots.
	RedisCAFile         string
	RedisSentinelAddrs  []string
	RedisSentinelMaster string
	RedisClusterAddrs   []string
	RedisPrefix         string

	HTTPAddr string
	Names    events.Names
	Roles    []Role

	// AdminAddr is the private listener: /v1, /metrics and the probes. HTTPAddr carries
	// only the webhooks and the probes, so it is the one port that may face the internet.
	AdminAddr string

	StreamReplicas int
	StreamMaxAge   time.Duration
	DedupWindow    time.Duration
	AckWait        time.Duration
	MaxDeliver     int
	MaxAckPending  int
	BatchSize      int
	Concurrency    int
	IdempotencyTTL time.Duration
	// HistoryTTL is how long a quiet recipient's decision history is kept: at high
	// volume the recipient logs are most of Redis's memory (docs/operations.md).
	HistoryTTL      time.Duration
	MaxBodyBytes    int64
	ShutdownTimeout time.Duration

	// WebhookConcurrency and WebhookConcurrencyPerESP bound the webhook requests whose
	// body is read and processed at once, in total and for each ESP: together with the
	// body caps they bound the memory senders can make one process hold.
	WebhookConcurrency       int
	WebhookConcurrencyPerESP int
	// GenericAllowRelay lets POST /webhooks/generic carry other ESPs' canonical events
	// (esp "sendgrid", IDs "sendgrid:…"); off, it takes esp "generic" only, so a holder
	// of the generic token cannot write events in an ESP's ID space.
	GenericAllowRelay bool

	GenericToken    string // secret
	APIToken        string // secret: one token named "default" with scope admin
	AddressHashKey  string // secret: addresses are stored as keyed hashes when set
	AlertWebhookURL string // may carry a token: treated as a secret
	// AlertWebhookSecret signs the REBOUND_ALERT_WEBHOOK_URL shortcut's requests.
	AlertWebhookSecret string // secret
	AlertConfig        string // REBOUND_ALERT_CONFIG: receivers and routes (YAML)
	CatalogRules       string
	PolicyFile         string
	ShadowPolicy       string
	LogLevel           string
	LogFormat          string

	// Getenv is where the settings came from; ESP adapters read their own
	// REBOUND_<ESP>_* settings and secrets through it.
	Getenv func(string) string

	// APITokens (REBOUND_API_TOKENS, secret): named tokens, each with a scope.
	APITokens []APIToken
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		NATSURL:         "nats://127.0.0.1:4222",
		RedisURL:        "redis://127.0.0.1:6379/0",
		RedisPrefix:     "rebound:",
		HTTPAddr:        "127.0.0.1:8080",
		AdminAddr:       "127.0.0.1:9090",
		Names:           events.DefaultNames(),
		Roles:           slices.Clone(AllRoles),
		StreamReplicas:  1,
		StreamMaxAge:    7 * 24 * time.Hour,
		DedupWindow:     2 * time.Hour,
		AckWait:         30 * time.Second,
		MaxDeliver:      50,
		MaxAckPending:   2000,
		BatchSize:       256,
		Concurrency:     2,
		IdempotencyTTL:  7 * 24 * time.Hour,
		HistoryTTL:      90 * 24 * time.Hour,
		MaxBodyBytes:    5 << 20,
		ShutdownTimeout: 25 * time.Second,
		// 128 requests of at most 5 MiB is the most the default configuration holds in
		// memory for webhook bodies; a request typically holds its slot for milliseconds.
		WebhookConcurrency:       128,
		WebhookConcurrencyPerESP: 32,
		LogLevel:                 "info",
		LogFormat:                "json",
		Getenv:                   func(string) string { return "" },
	}
}

// StoreOptions are the Redis state options this configuration asks for.
func (c *Config) StoreOptions() suppress.Options {
	o := suppress.Options{Prefix: c.RedisPrefix, IdempotencyTTL: c.IdempotencyTTL, HistoryTTL: c.HistoryTTL}
	if c.AddressHashKey != "" {
		o.AddressHashKey = []byte(c.AddressHashKey)
	}
	return o
}

// Has reports whether the role is enabled.
func (c *Config) Has(r Role) bool { return slices.Contains(c.Roles, r) }

// Parse reads flags from args and REBOUND_* variables from getenv; a flag beats its
// variable, and both beat the default. getenv is injected so tests need no process
// environment.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, error) {
	c := Default()
	c.Getenv = getenv
	var (
		sentinel, cluster, roles string
		errs                     []error
		// envErrs are bad REBOUND_* values by flag name: a flag given on the command
		// line replaces the variable, so its variable's error no longer counts.
		envErrs = map[string]error{}
	)
	str := func(p *string, flagName, env, usage string) {
		if v := getenv(env); v != "" {
			*p = v
		}
		fs.StringVar(p, flagName, *p, usage+" ($"+env+")")
	}
	dur := func(p *time.Duration, flagName, env, usage string) {
		if v := getenv(env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				envErrs[flagName] = fmt.Errorf("%s: %q is not a positive duration (e.g. 30s, 2h)", env, v)
			} else {
				*p = d
			}
		}
		fs.DurationVar(p, flagName, *p, usage+" ($"+env+")")
	}
	num := func(p *int, flagName, env, usage string) {
		if v := getenv(env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				envErrs[flagName] = fmt.Errorf("%s: %q is not a whole number", env, v)
			} else {
				*p = n
			}
		}
		fs.IntVar(p, flagName, *p, usage+" ($"+env+")")
	}
	boolean := func(p *bool, flagName, env, usage string) {
		if v := getenv(env); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				envErrs[flagName] = fmt.Errorf("%s: %q is not true or false", env, v)
			} else {
				*p = b
			}
		}
		fs.BoolVar(p, flagName, *p, usage+" ($"+env+")")
	}
	str(&c.NATSURL, "nats-url", "REBOUND_NATS_URL", "NATS server URL(s), comma-separated")
	str(&c.NATSCredsFile, "nats-creds-file", "REBOUND_NATS_CREDS_FILE", "NATS credentials file (user JWT and nkey seed)")
	str(&c.NATSNkeyFile, "nats-nkey-file", "REBOUND_NATS_NKEY_FILE", "file holding a NATS nkey seed")
	str(&c.NATSUser, "nats-user", "REBOUND_NATS_USER", "NATS user, with the secret REBOUND_NATS_PASSWORD")
	str(&c.NATSCAFile, "nats-ca-file", "REBOUND_NATS_CA_FILE", "CA bundle (PEM) to trust for NATS TLS")
	str(&c.NATSCertFile, "nats-cert-file", "REBOUND_NATS_CERT_FILE", "client certificate (PEM) for NATS mutual TLS")
	str(&c.NATSKeyFile, "nats-key-file", "REBOUND_NATS_KEY_FILE", "key of the client certificate for NATS mutual TLS")
	str(&c.RedisURL, "redis-url", "REBOUND_REDIS_URL", "Redis URL (redis:// or rediss://, ACL user and password in the URL)")
	str(&c.RedisCAFile, "redis-ca-file", "REBOUND_REDIS_CA_FILE", "CA bundle (PEM) to trust for rediss://")
	str(&sentinel, "redis-sentinel-addrs", "REBOUND_REDIS_SENTINEL_ADDRS", "Redis Sentinel addresses, comma-separated")
	str(&c.RedisSentinelMaster, "redis-sentinel-master", "REBOUND_REDIS_SENTINEL_MASTER", "Redis Sentinel master name")
	str(&cluster, "redis-cluster-addrs", "REBOUND_REDIS_CLUSTER_ADDRS", "Redis Cluster seed addresses, comma-separated")
	str(&c.RedisPrefix, "redis-prefix", "REBOUND_REDIS_PREFIX", "prefix of every Redis key")
	str(&c.HTTPAddr, "http-addr", "REBOUND_HTTP_ADDR", "public listen address: webhooks and probes only")
	str(&c.AdminAddr, "admin-addr", "REBOUND_ADMIN_ADDR", "private listen address: the /v1 API, /metrics and probes")
	str(&c.Names.SubjectPrefix, "subject-prefix", "REBOUND_SUBJECT_PREFIX", "NATS subject prefix: events on <prefix>.events.<esp>")
	str(&c.Names.Stream, "stream", "REBOUND_STREAM", "JetStream stream of events")
	str(&c.Names.DeadStream, "deadletter-stream", "REBOUND_DEADLETTER_STREAM", "JetStream stream of dead letters")
	str(&c.Names.Consumer, "consumer", "REBOUND_CONSUMER", "durable consumer shared by process replicas")
	str(&roles, "roles", "REBOUND_ROLES", "roles to run, comma-separated: ingest,process,api,notify (default all)")
	num(&c.StreamReplicas, "stream-replicas", "REBOUND_STREAM_REPLICAS", "JetStream replicas of the streams (1, 3 or 5)")
	dur(&c.StreamMaxAge, "stream-max-age", "REBOUND_STREAM_MAX_AGE", "how long events stay in the stream for replay")
	dur(&c.DedupWindow, "dedup-window", "REBOUND_DEDUP_WINDOW", "JetStream duplicate window for ESP retries")
	dur(&c.AckWait, "ack-wait", "REBOUND_ACK_WAIT", "time before an unacknowledged event is redelivered")
	num(&c.MaxDeliver, "max-deliver", "REBOUND_MAX_DELIVER", "deliveries before an event that keeps failing is dead-lettered")
	num(&c.MaxAckPending, "max-ack-pending", "REBOUND_MAX_ACK_PENDING", "unacknowledged events allowed across all process replicas")
	num(&c.BatchSize, "batch-size", "REBOUND_BATCH_SIZE", "events processed per Redis round trip")
	num(&c.Concurrency, "process-concurrency", "REBOUND_PROCESS_CONCURRENCY", "batches processed at once by one process replica")
	dur(&c.IdempotencyTTL, "idempotency-ttl", "REBOUND_IDEMPOTENCY_TTL", "how long an event ID is remembered to ignore redeliveries")
	dur(&c.HistoryTTL, "history-ttl", "REBOUND_HISTORY_TTL", "how long a quiet recipient's decision history is kept")
	dur(&c.ShutdownTimeout, "shutdown-timeout", "REBOUND_SHUTDOWN_TIMEOUT", "time allowed to finish in-flight work on SIGTERM")
	str(&c.CatalogRules, "catalog-rules", "REBOUND_CATALOG_RULES", "file of extra or overriding classification rules")
	str(&c.PolicyFile, "policy-file", "REBOUND_POLICY_FILE", "policy YAML (default: the built-in policy); reloaded on change and on SIGHUP")
	str(&c.AlertConfig, "alert-config", "REBOUND_ALERT_CONFIG", "alerting YAML: receivers (PagerDuty, Slack, Teams, Alertmanager, webhook, Opsgenie) and routes")
	str(&c.ShadowPolicy, "policy-shadow-file", "REBOUND_POLICY_SHADOW_FILE", "second policy evaluated on every event but never applied")
	str(&c.LogLevel, "log-level", "REBOUND_LOG_LEVEL", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "REBOUND_LOG_FORMAT", "json or console")
	maxBody := int(c.MaxBodyBytes)
	num(&maxBody, "max-body-bytes", "REBOUND_MAX_BODY_BYTES", "largest webhook body accepted")
	num(&c.WebhookConcurrency, "webhook-concurrency", "REBOUND_WEBHOOK_CONCURRENCY", "webhook requests read and processed at once; more get 503 with Retry-After")
	num(&c.WebhookConcurrencyPerESP, "webhook-concurrency-per-esp", "REBOUND_WEBHOOK_CONCURRENCY_PER_ESP", "webhook requests read and processed at once for one ESP")
	boolean(&c.GenericAllowRelay, "generic-allow-relay", "REBOUND_GENERIC_ALLOW_RELAY", "let POST /webhooks/generic carry other ESPs' canonical events, not only esp \"generic\"")

	// Secrets: environment or file only.
	for _, s := range []struct {
		p   *string
		env string
	}{
		{&c.GenericToken, "REBOUND_GENERIC_TOKEN"},
		{&c.APIToken, "REBOUND_API_TOKEN"},
		{&c.AddressHashKey, "REBOUND_ADDRESS_HASH_KEY"},
		{&c.AlertWebhookURL, "REBOUND_ALERT_WEBHOOK_URL"},
		{&c.AlertWebhookSecret, "REBOUND_ALERT_WEBHOOK_SECRET"},
		{&c.NATSPassword, "REBOUND_NATS_PASSWORD"},
		{&c.RedisPassword, "REBOUND_REDIS_PASSWORD"},
	} {
		v, err := Secret(getenv, s.env)
		if err != nil {
			errs = append(errs, err)
		}
		*s.p = v
	}

	if raw, err := Secret(getenv, "REBOUND_API_TOKENS"); err != nil {
		errs = append(errs, err)
	} else if c.APITokens, err = ParseAPITokens(raw); err != nil {
		errs = append(errs, err)
	}

	if err := parseInterleaved(fs, args); err != nil {
		return Config{}, err
	}
	fs.Visit(func(f *flag.Flag) { delete(envErrs, f.Name) })
	for _, name := range slices.Sorted(maps.Keys(envErrs)) {
		errs = append(errs, envErrs[name])
	}
	c.MaxBodyBytes = int64(maxBody)
	c.RedisSentinelAddrs = splitList(sentinel)
	c.RedisClusterAddrs = splitList(cluster)
	if roles != "" {
		c.Roles = nil
		for _, r := range splitList(roles) {
			c.Roles = append(c.Roles, Role(strings.ToLower(r)))
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return c, c.Validate()
}

// Secret reads a secret from env or from the file named by env+"_FILE" (Kubernetes
// secrets mounted as files). Setting both is an error: which one wins would be a guess.
func Secret(getenv func(string) string, env string) (string, error) {
	v, file := getenv(env), getenv(env+"_FILE")
	switch {
	case v != "" && file != "":
		return "", fmt.Errorf("%s and %s_FILE are both set: set one", env, env)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: %w", env, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return v, nil
}

// maxWebhookConcurrency keeps REBOUND_WEBHOOK_CONCURRENCY a bound: beyond it the
// number of connections, not this setting, decides what the process holds.
const maxWebhookConcurrency = 100000

// Validate checks every setting and names the first one that is wrong.
func (c *Config) Validate() error {
	if len(c.Roles) == 0 {
		return errors.New("REBOUND_ROLES: no role given")
	}
	for _, r := range c.Roles {
		if !slices.Contains(AllRoles, r) {
			return fmt.Errorf("REBOUND_ROLES: unknown role %q (want ingest, process, api or notify)", r)
		}
	}
	if err := checkURLs("REBOUND_NATS_URL", c.NATSURL, "nats", "tls", "ws", "wss"); err != nil {
		return err
	}
	if err := c.validateCredentials(); err != nil {
		return err
	}
	if len(c.RedisSentinelAddrs) > 0 && c.RedisSentinelMaster == "" {
		return errors.New("REBOUND_REDIS_SENTINEL_MASTER: required with REBOUND_REDIS_SENTINEL_ADDRS")
	}
	if len(c.RedisSentinelAddrs) > 0 && len(c.RedisClusterAddrs) > 0 {
		return errors.New("REBOUND_REDIS_CLUSTER_ADDRS: cannot be combined with REBOUND_REDIS_SENTINEL_ADDRS")
	}
	if err := checkURLs("REBOUND_REDIS_URL", c.RedisURL, "redis", "rediss"); err != nil {
		return err
	}
	for setting, addrs := range map[string][]string{"REBOUND_REDIS_SENTINEL_ADDRS": c.RedisSentinelAddrs, "REBOUND_REDIS_CLUSTER_ADDRS": c.RedisClusterAddrs} {
		for _, a := range addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return fmt.Errorf("%s: %q is not host:port", setting, a)
			}
		}
	}
	if c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, "{} \t") {
		return fmt.Errorf("REBOUND_REDIS_PREFIX: %q must be non-empty without braces or spaces (braces would break Cluster hash tags)", c.RedisPrefix)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("REBOUND_HTTP_ADDR: %q is not host:port", c.HTTPAddr)
	}
	if err := c.validateAdmin(); err != nil {
		return err
	}
	if err := c.Names.Validate(); err != nil {
		return err
	}
	switch {
	case c.StreamReplicas != 1 && c.StreamReplicas != 3 && c.StreamReplicas != 5:
		return fmt.Errorf("REBOUND_STREAM_REPLICAS: %d (want 1, 3 or 5)", c.StreamReplicas)
	case c.MaxDeliver < 2:
		return fmt.Errorf("REBOUND_MAX_DELIVER: %d (want at least 2)", c.MaxDeliver)
	case c.BatchSize < 1 || c.BatchSize > 4096:
		return fmt.Errorf("REBOUND_BATCH_SIZE: %d (want 1 to 4096)", c.BatchSize)
	case c.Concurrency < 1 || c.Concurrency > 16:
		return fmt.Errorf("REBOUND_PROCESS_CONCURRENCY: %d (want 1 to 16)", c.Concurrency)
	case c.MaxAckPending < (c.Concurrency+1)*c.BatchSize:
		// One replica prefetches (concurrency+1) batches; below that it starves itself.
		return fmt.Errorf("REBOUND_MAX_ACK_PENDING: %d is below (REBOUND_PROCESS_CONCURRENCY+1) x REBOUND_BATCH_SIZE = %d", c.MaxAckPending, (c.Concurrency+1)*c.BatchSize)
	case c.MaxBodyBytes < 1024:
		return fmt.Errorf("REBOUND_MAX_BODY_BYTES: %d (want at least 1024)", c.MaxBodyBytes)
	case c.WebhookConcurrency < 1 || c.WebhookConcurrency > maxWebhookConcurrency:
		return fmt.Errorf("REBOUND_WEBHOOK_CONCURRENCY: %d (want 1 to %d)", c.WebhookConcurrency, maxWebhookConcurrency)
	case c.WebhookConcurrencyPerESP < 1 || c.WebhookConcurrencyPerESP > maxWebhookConcurrency:
		// Above REBOUND_WEBHOOK_CONCURRENCY it is allowed, and the total bounds it, so
		// lowering the total alone is enough.
		return fmt.Errorf("REBOUND_WEBHOOK_CONCURRENCY_PER_ESP: %d (want 1 to %d)", c.WebhookConcurrencyPerESP, maxWebhookConcurrency)
	case c.DedupWindow > c.StreamMaxAge:
		return fmt.Errorf("REBOUND_DEDUP_WINDOW: %s is longer than REBOUND_STREAM_MAX_AGE %s", c.DedupWindow, c.StreamMaxAge)
	}
	if c.AddressHashKey != "" && len(c.AddressHashKey) < 16 {
		return errors.New("REBOUND_ADDRESS_HASH_KEY: want at least 16 bytes of secret")
	}
	if c.AlertWebhookURL != "" {
		u, err := url.Parse(c.AlertWebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Never echo the URL: it often carries a token.
			return errors.New("REBOUND_ALERT_WEBHOOK_URL: not an http(s) URL")
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("REBOUND_LOG_LEVEL: %q (want debug, info, warn or error)", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		return fmt.Errorf("REBOUND_LOG_FORMAT: %q (want json or console)", c.LogFormat)
	}
	return nil
}

// validateCredentials checks the NATS and Redis authentication and TLS settings: one
// way to authenticate to NATS, pairs set together, and every named file readable (a
// CA bundle holding a certificate), so a wrong mount fails at start, naming its setting.
func (c *Config) validateCredentials() error {
	auth := 0
	for _, v := range []string{c.NATSCredsFile, c.NATSNkeyFile, c.NATSUser} {
		if v != "" {
			auth++
		}
	}
	switch {
	case auth > 1:
		return errors.New("REBOUND_NATS_CREDS_FILE, REBOUND_NATS_NKEY_FILE, REBOUND_NATS_USER: set only one way to authenticate")
	case c.NATSPassword != "" && c.NATSUser == "":
		return errors.New("REBOUND_NATS_PASSWORD: needs REBOUND_NATS_USER")
	case (c.NATSCertFile == "") != (c.NATSKeyFile == ""):
		return errors.New("REBOUND_NATS_CERT_FILE and REBOUND_NATS_KEY_FILE: set both or neither")
	case c.RedisCAFile != "" && !strings.HasPrefix(c.RedisURL, "rediss://"):
		return errors.New("REBOUND_REDIS_CA_FILE: needs TLS, a rediss:// REBOUND_REDIS_URL")
	}
	for _, f := range []struct{ setting, path string }{
		{"REBOUND_NATS_CREDS_FILE", c.NATSCredsFile}, {"REBOUND_NATS_NKEY_FILE", c.NATSNkeyFile},
		{"REBOUND_NATS_CERT_FILE", c.NATSCertFile}, {"REBOUND_NATS_KEY_FILE", c.NATSKeyFile},
		{"REBOUND_NATS_CA_FILE", c.NATSCAFile}, {"REBOUND_REDIS_CA_FILE", c.RedisCAFile},
	} {
		if f.path == "" {
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return fmt.Errorf("%s: %w", f.setting, err)
		}
		if strings.HasSuffix(f.setting, "_CA_FILE") && !x509.NewCertPool().AppendCertsFromPEM(b) {
			return fmt.Errorf("%s: %s holds no PEM certificate", f.setting, f.path)
		}
	}
	return nil
}

func checkURLs(setting, list string, schemes ...string) error {
	if list == "" {
		return fmt.Errorf("%s: required", setting)
	}
	for _, raw := range splitList(list) {
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("%s: not a URL: %v", setting, redactErr(err))
		}
		if !slices.Contains(schemes, u.Scheme) {
			return fmt.Errorf("%s: scheme must be %s, not %q", setting, strings.Join(schemes, " or "), u.Scheme)
		}
		if u.Host == "" {
			return fmt.Errorf("%s: no host in the URL", setting)
		}
	}
	return nil
}

// redactErr drops the URL from a url.Error: it may hold a password.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseInterleaved parses flags wherever they stand among the positional arguments
// (`worker recipients erase ana@example.com --tenant acme`): the flag package stops at
// the first argument that is not a flag. fs.Args() then holds the positional
// arguments in order. After "--" everything is positional, as with the flag package.
func parseInterleaved(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}
