package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"
)

// Scope is what a token may do. Scopes are ordered: a write token may also read, an
// admin token may do everything.
type Scope int

// The scopes, smallest first.
const (
	// ScopeRead: look-ups, lists, checks, the catalog, classify.
	ScopeRead Scope = iota + 1
	// ScopeWrite: day-to-day changes that are audited and reversible — add or lift a
	// suppression, acknowledge or resolve an incident, apply or discard a mass-bounce hold.
	ScopeWrite
	// ScopeAdmin: changes that act on many records at once or cannot be undone
	// (imports, erasure of a recipient).
	ScopeAdmin
)

// String is the scope's name in REBOUND_API_TOKENS.
func (s Scope) String() string {
	switch s {
	case ScopeRead:
		return "read"
	case ScopeWrite:
		return "write"
	case ScopeAdmin:
		return "admin"
	}
	return fmt.Sprintf("scope(%d)", int(s))
}

// ParseScope reads "read", "write" or "admin".
func ParseScope(s string) (Scope, error) {
	switch s {
	case "read":
		return ScopeRead, nil
	case "write":
		return ScopeWrite, nil
	case "admin":
		return ScopeAdmin, nil
	}
	return 0, fmt.Errorf("scope %q: want read, write or admin", s)
}

// Token is one API credential. Name identifies the caller in logs and audit records;
// Secret never leaves this package.
type Token struct {
	Name   string
	Secret string
	Scope  Scope
}

// AnonymousActor names a caller without a token: only possible for reads from loopback
// when no token is configured at all.
const AnonymousActor = "anonymous"

type actorKey struct{}

// Actor is the name of the token that authenticated r ("anonymous" for an open
// loopback read, "" outside an authenticated route). Audit records and change logs use
// it; the token itself is never logged.
func Actor(r *http.Request) string {
	s, _ := r.Context().Value(actorKey{}).(string)
	return s
}

// WithActor returns ctx carrying the actor name (for handlers tested without a token).
func WithActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, name)
}

// route registers h under pattern, behind the token check for scope. Every /v1 route
// goes through here, so the OpenAPI test sees every pattern in a.patterns.
func (a *API) route(mux *http.ServeMux, scope Scope, pattern string, h http.HandlerFunc) {
	a.patterns = append(a.patterns, pattern)
	mux.Handle(pattern, a.auth(scope, h))
}

// Patterns lists the patterns Register added, in order (the contract test walks them).
func (a *API) Patterns() []string { return append([]string(nil), a.patterns...) }

// auth admits a request whose bearer token has at least scope: 401 without a valid
// token, 403 with one whose scope is too small. With no token configured at all, reads
// from a loopback peer are open (the local demo) and everything else is refused.
func (a *API) auth(scope Scope, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens := a.Tokens
		name, have := "", Scope(0)
		switch bearer, ok := bearerToken(r); {
		case ok:
			name, have = matchToken(tokens, bearer)
			if name == "" {
				a.deny(w, r, http.StatusUnauthorized, "", scope, "the bearer token matches no configured token")
				return
			}
		case len(tokens) == 0 && loopbackPeer(r):
			name, have = AnonymousActor, ScopeRead
		case len(tokens) == 0:
			a.deny(w, r, http.StatusUnauthorized, "", scope, "no API token is configured, so only loopback callers may read: set REBOUND_API_TOKENS")
			return
		default:
			a.deny(w, r, http.StatusUnauthorized, "", scope, "missing bearer token (Authorization: Bearer <token>)")
			return
		}
		if have < scope {
			msg := "token " + name + " has scope " + have.String() + "; this needs " + scope.String()
			if name == AnonymousActor {
				msg = "changes need a token with scope " + scope.String() + ": set REBOUND_API_TOKENS (or REBOUND_API_TOKEN)"
			}
			a.deny(w, r, http.StatusForbidden, name, scope, msg)
			return
		}
		h(w, r.WithContext(WithActor(r.Context(), name)))
	})
}

func (a *API) deny(w http.ResponseWriter, r *http.Request, status int, actor string, need Scope, msg string) {
	if a.Log != nil {
		a.Log.Debug("api request refused", zap.Int("status", status), zap.String("actor", actor),
			zap.String("need", need.String()), zap.String("method", r.Method), zap.String("path", r.URL.Path))
	}
	WriteError(w, status, msg)
}

// bearerToken reads "Authorization: Bearer <token>".
func bearerToken(r *http.Request) (string, bool) {
	got := r.Header.Get("Authorization")
	if len(got) < 7 || !strings.EqualFold(got[:7], "bearer ") {
		return "", false
	}
	return strings.TrimSpace(got[7:]), true
}

// matchToken compares got with every token, always all of them and in constant time
// per token (over SHA-256 digests, so neither a token's length nor which token matched
// shows in the timing). It returns the matching token's name and scope.
func matchToken(tokens []Token, got string) (string, Scope) {
	gd := sha256.Sum256([]byte(got))
	name, scope := "", Scope(0)
	for _, t := range tokens {
		td := sha256.Sum256([]byte(t.Secret))
		if subtle.ConstantTimeCompare(gd[:], td[:]) == 1 && name == "" {
			name, scope = t.Name, t.Scope
		}
	}
	return name, scope
}

// Authenticate finds the configured token whose secret is secret, comparing against
// every token in constant time as for a bearer token, and returns its name and scope;
// ok is false when none matches. The operator console (internal/console) signs in
// with it, so /ui and /v1 accept the same tokens with the same scopes.
func Authenticate(tokens []Token, secret string) (name string, scope Scope, ok bool) {
	if secret == "" {
		return "", 0, false
	}
	name, scope = matchToken(tokens, secret)
	return name, scope, name != ""
}

// loopbackPeer says whether the request came from the machine itself.
func loopbackPeer(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// noRoute answers a /v1 request no route took: 405 with Allow when the path exists
// under other methods, else 404 — as JSON errors, unlike http.ServeMux's plain text.
func (a *API) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, p := range a.patterns {
		method, path, _ := strings.Cut(p, " ")
		if pathMatches(path, r.URL.Path) && !slices.Contains(allow, method) {
			allow = append(allow, method)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		WriteError(w, http.StatusMethodNotAllowed, r.Method+" "+r.URL.Path+": allowed "+strings.Join(allow, ", "))
		return
	}
	WriteError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path+" (see GET /v1/openapi.yaml)")
}

// pathMatches says whether path fits a route's path, "{name}" matching one segment.
func pathMatches(pattern, path string) bool {
	ps, ss := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(ss) {
		return false
	}
	for i := range ps {
		if strings.HasPrefix(ps[i], "{") && ss[i] != "" {
			continue
		}
		if ps[i] != ss[i] {
			return false
		}
	}
	return true
}
