package app

import (
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/api"
	"github.com/reboundhq/rebound/internal/config"
	"github.com/reboundhq/rebound/internal/console"
	"github.com/reboundhq/rebound/internal/policy"
)

// adminMux builds the admin listener's routes (REBOUND_ADMIN_ADDR): the /v1 API when
// the api role runs, /metrics, and the probes of the public mux. Keeping them off the
// webhook listener means the one port that faces the internet cannot list a single
// suppressed address, whatever the token settings.
func (a *App) adminMux(public *http.ServeMux, pol func() *policy.Policy) (*http.ServeMux, error) {
	cfg := a.cfg
	admin := http.NewServeMux()
	admin.Handle("GET /healthz", public)
	admin.Handle("GET /readyz", public)
	admin.Handle("GET /metrics", api.MetricsHandler(a.metrics))
	if !cfg.Has(config.RoleAPI) {
		return admin, nil
	}
	tokens, err := APITokens(cfg)
	if err != nil {
		return nil, err
	}
	if len(tokens) == 0 {
		// Validate refused a non-loopback REBOUND_ADMIN_ADDR without a token.
		a.log.Warn("no API token is configured (REBOUND_API_TOKENS, REBOUND_API_TOKEN): /v1 answers reads from loopback only and refuses every change")
	}
	names := make([]string, len(tokens))
	for i, t := range tokens {
		names[i] = t.Name + ":" + t.Scope.String()
	}
	a.log.Info("api tokens", zap.Strings("tokens", names)) // names and scopes, never the secrets
	(&api.API{
		Store: a.store, Alerts: a.alerts, Guard: a.guard, Metrics: a.metrics, Catalog: a.catalog, Policy: pol, Log: a.log,
		PolicySource: a.policy.Path, Shadow: a.shadow != nil, Tokens: tokens,
	}).Register(admin)
	// The operator console (/ui/): the same tokens and scopes, signed in once per browser.
	ui, err := console.New(console.Config{
		Store: a.store, Alerts: a.alerts, Guard: a.guard, Catalog: a.catalog, Policy: pol, Metrics: a.metrics, Log: a.log, Tokens: tokens,
	})
	if err != nil {
		return nil, err
	}
	ui.Register(admin)
	return admin, nil
}

// APITokens turns REBOUND_API_TOKENS and REBOUND_API_TOKEN into the API's tokens
// (REBOUND_API_TOKEN as one admin token named "default").
func APITokens(cfg config.Config) ([]api.Token, error) {
	var out []api.Token
	for _, t := range cfg.APITokens {
		s, err := api.ParseScope(t.Scope)
		if err != nil {
			return nil, fmt.Errorf("REBOUND_API_TOKENS: %s: %w", t.Name, err)
		}
		out = append(out, api.Token{Name: t.Name, Secret: t.Secret, Scope: s})
	}
	if cfg.APIToken != "" {
		out = append(out, api.Token{Name: config.DefaultAPITokenName, Secret: cfg.APIToken, Scope: api.ScopeAdmin})
	}
	return out, nil
}
