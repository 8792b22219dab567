package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

// BasicAuth checks HTTP basic auth against "user:password" in constant time. An empty
// expected value refuses everything: the caller reports the ESP as not configured.
func BasicAuth(r *http.Request, userPass string) error {
	if userPass == "" {
		return fmt.Errorf("%w: no credentials configured", ErrUnauthenticated)
	}
	h := r.Header.Get("Authorization")
	const scheme = "basic "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return fmt.Errorf("%w: no basic auth", ErrUnauthenticated)
	}
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(scheme):]))
	if err != nil {
		return fmt.Errorf("%w: basic auth is not base64", ErrUnauthenticated)
	}
	if !Equal(got, []byte(userPass)) {
		return fmt.Errorf("%w: wrong basic auth credentials", ErrUnauthenticated)
	}
	return nil
}

// BearerToken checks `Authorization: Bearer <token>` in constant time.
func BearerToken(r *http.Request, token string) error {
	if token == "" {
		return fmt.Errorf("%w: no token configured", ErrUnauthenticated)
	}
	h := r.Header.Get("Authorization")
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return fmt.Errorf("%w: no bearer token", ErrUnauthenticated)
	}
	if !Equal([]byte(strings.TrimSpace(h[len(scheme):])), []byte(token)) {
		return fmt.Errorf("%w: wrong bearer token", ErrUnauthenticated)
	}
	return nil
}

// Equal compares secrets in constant time (for equal lengths; the length itself is
// not secret for a MAC or a configured token).
func Equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// CompositeID builds a stable event ID for an ESP that gives none, from the fields the
// reference lists for it (message ID, recipient, event type, timestamp …).
func CompositeID(esp string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return esp + ":h" + hex.EncodeToString(h.Sum(nil)[:16])
}

// BasicAuthSecret reads REBOUND_<ESP>_BASIC_AUTH (or its _FILE), "user:password". A
// value without a colon is an error naming the variable (never the value); why adds
// the ESP's own explanation to it.
func (e Env) BasicAuthSecret(esp, why string) (string, error) {
	up, err := e.Secret(esp, "BASIC_AUTH")
	if err != nil {
		return "", err
	}
	if up != "" && !strings.Contains(up, ":") {
		return "", fmt.Errorf("%s: want user:password%s", varName(esp, "BASIC_AUTH"), why)
	}
	return up, nil
}

// BasicAuthCheck authenticates an ESP whose only credential is HTTP basic auth
// (Postmark, SparkPost, Mailjet sign nothing), under the shared Verifier rule.
type BasicAuthCheck struct {
	userPass string // "user:password"; "": not configured
	verify   Verifier
}

// NewBasicAuthCheck reads the ESP's REBOUND_<ESP>_BASIC_AUTH as BasicAuthSecret does.
func NewBasicAuthCheck(env Env, esp, why string) (BasicAuthCheck, error) {
	up, err := env.BasicAuthSecret(esp, why)
	if err != nil {
		return BasicAuthCheck{}, err
	}
	return BasicAuthCheck{userPass: up, verify: env.Verifier(esp, "BASIC_AUTH", up != "")}, nil
}

// Authenticate checks the request's basic auth against the configured credentials.
func (c BasicAuthCheck) Authenticate(r *http.Request) error {
	return c.verify.Authenticate(func() error { return BasicAuth(r, c.userPass) })
}
