package ingest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/config"
)

// Env is what an adapter factory may read: settings, secrets, a clock and an HTTP
// client (SNS certificates). It is injected so tests configure adapters without a
// process environment.
type Env struct {
	Getenv     func(string) string
	Now        func() time.Time
	HTTPClient *http.Client
	Log        *zap.Logger
}

// Var returns REBOUND_<ESP>_<NAME>, e.g. Var("mailgun", "SIGNING_KEY").
func (e Env) Var(esp, name string) string {
	return e.Getenv(varName(esp, name))
}

// Secret returns the secret REBOUND_<ESP>_<NAME>, or the content of the file named by
// REBOUND_<ESP>_<NAME>_FILE.
func (e Env) Secret(esp, name string) (string, error) {
	return config.Secret(e.Getenv, varName(esp, name))
}

// Insecure reports whether the operator explicitly turned verification off for the ESP
// (REBOUND_<ESP>_INSECURE_SKIP_VERIFY=true): only for ESPs behind a trusted proxy
// that authenticates for us. Adapters do not read it themselves: Verifier decides what
// it means next to the ESP's secret.
func (e Env) Insecure(esp string) bool {
	return strings.EqualFold(e.Var(esp, "INSECURE_SKIP_VERIFY"), "true")
}

// TenantFrom is REBOUND_<ESP>_TENANT_FROM: where the adapter finds the tenant (a
// custom-args key, metadata key, tag prefix, subaccount, configuration set, topic).
func (e Env) TenantFrom(esp string) string { return e.Var(esp, "TENANT_FROM") }

func varName(esp, name string) string {
	return "REBOUND_" + strings.ToUpper(esp) + "_" + name
}

// Factory builds one ESP's adapter from the environment. An ESP whose secret is not
// configured must still be built: its Authenticate refuses every request (see
// Verifier), so the endpoint exists and says so in the log.
type Factory func(Env) (Adapter, error)

// Entry is one ESP's adapter factory under the ESP's name, as the list of adapters the
// binary serves (package ingest/all) names it.
type Entry struct {
	ESP string
	New Factory
}

// Adapters builds the adapters of entries, in their order. An entry whose adapter
// answers to another name than the entry's is a programming error, reported here
// rather than as a webhook path that silently differs from the list.
func Adapters(env Env, entries []Entry) ([]Adapter, error) {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.HTTPClient == nil {
		env.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if env.Log == nil {
		env.Log = zap.NewNop()
	}
	out := make([]Adapter, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if seen[e.ESP] {
			return nil, fmt.Errorf("webhook %s: listed twice", e.ESP)
		}
		seen[e.ESP] = true
		a, err := e.New(env)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: %w", e.ESP, err)
		}
		if a.ESP() != e.ESP {
			return nil, fmt.Errorf("webhook %s: its adapter answers to %q", e.ESP, a.ESP())
		}
		out = append(out, a)
	}
	return out, nil
}

// Disabled is the error an adapter's Verifier returns when its ESP has no secret
// configured and verification was not explicitly turned off. setting is the variable
// to set, in full.
func Disabled(esp, setting string) error {
	return fmt.Errorf("%w: %s is not set, so the %s webhook refuses every request (or set %s=true behind a trusted proxy)",
		ErrUnauthenticated, setting, esp, varName(esp, "INSECURE_SKIP_VERIFY"))
}

// BodyLimits reads REBOUND_<ESP>_MAX_BODY_BYTES for each adapter: a per-ESP cap on the
// webhook body that replaces REBOUND_MAX_BODY_BYTES (SES batches are small, SendGrid's
// can be large).
func BodyLimits(getenv func(string) string, adapters []Adapter) (map[string]int64, error) {
	out := map[string]int64{}
	for _, a := range adapters {
		name := varName(a.ESP(), "MAX_BODY_BYTES")
		v := getenv(name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1024 {
			return nil, fmt.Errorf("%s: %q (want a whole number of bytes, at least 1024)", name, v)
		}
		out[a.ESP()] = n
	}
	return out, nil
}
