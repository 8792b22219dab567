package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
)

// APIToken is one entry of REBOUND_API_TOKENS: a name for logs and audit records, the
// secret a caller sends as a bearer token, and its scope (read, write or admin).
type APIToken struct {
	Name   string
	Secret string
	Scope  string
}

// DefaultAPITokenName is the name REBOUND_API_TOKEN's single admin token goes by.
const DefaultAPITokenName = "default"

var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ParseAPITokens reads "name:token:scope" entries separated by commas or line breaks
// (a mounted file may hold one per line). The token is everything between the first
// and the last colon. Errors name the entry by position, never by its text: it holds
// a secret.
func ParseAPITokens(s string) ([]APIToken, error) {
	var out []APIToken
	seenName, seenSecret := map[string]bool{}, map[string]bool{}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' })
	n := 0
	for _, f := range fields {
		f = strings.TrimSpace(f)
		if f == "" || strings.HasPrefix(f, "#") {
			continue
		}
		n++
		first, last := strings.Index(f, ":"), strings.LastIndex(f, ":")
		if first < 0 || first == last {
			return nil, fmt.Errorf("REBOUND_API_TOKENS: entry %d: want name:token:scope", n)
		}
		t := APIToken{Name: f[:first], Secret: f[first+1 : last], Scope: f[last+1:]}
		switch {
		case !tokenName.MatchString(t.Name):
			return nil, fmt.Errorf("REBOUND_API_TOKENS: entry %d: the name (first field): want letters, digits, '.', '_' or '-' (at most 64)", n)
		case t.Scope != "read" && t.Scope != "write" && t.Scope != "admin":
			return nil, fmt.Errorf("REBOUND_API_TOKENS: entry %d: the scope (last field): want read, write or admin", n)
		case len(t.Secret) < 16:
			return nil, fmt.Errorf("REBOUND_API_TOKENS: entry %d: the token (middle field) is shorter than 16 characters", n)
		case seenName[t.Name]:
			return nil, fmt.Errorf("REBOUND_API_TOKENS: entry %d: the same name as an earlier entry", n)
		case seenSecret[t.Secret]:
			// One secret under two names would make the audit's "who" a guess.
			return nil, fmt.Errorf("REBOUND_API_TOKENS: entry %d: the same token as an earlier entry", n)
		}
		seenName[t.Name], seenSecret[t.Secret] = true, true
		out = append(out, t)
	}
	return out, nil
}

// HasAPIToken says whether any API token is configured.
func (c *Config) HasAPIToken() bool { return c.APIToken != "" || len(c.APITokens) > 0 }

// validateAdmin checks the admin listener: its own port, and never reachable from
// other machines without a token — /v1 lists every suppressed address.
func (c *Config) validateAdmin() error {
	if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
		return fmt.Errorf("REBOUND_ADMIN_ADDR: %q is not host:port", c.AdminAddr)
	}
	if c.AdminAddr == c.HTTPAddr {
		return errors.New("REBOUND_ADMIN_ADDR: same as REBOUND_HTTP_ADDR; the API needs a port of its own, apart from the public webhooks")
	}
	for _, t := range c.APITokens {
		if t.Name == DefaultAPITokenName && c.APIToken != "" {
			return fmt.Errorf("REBOUND_API_TOKENS: the name %q is taken by REBOUND_API_TOKEN", DefaultAPITokenName)
		}
		if c.APIToken != "" && t.Secret == c.APIToken {
			return fmt.Errorf("REBOUND_API_TOKENS: %s has the same token as REBOUND_API_TOKEN", t.Name)
		}
	}
	if c.Has(RoleAPI) && !c.HasAPIToken() && !LoopbackAddr(c.AdminAddr) {
		return fmt.Errorf("REBOUND_ADMIN_ADDR: %s can be reached from other machines and no API token is configured, so anyone there could read every suppressed address: set REBOUND_API_TOKENS (or REBOUND_API_TOKEN), or listen on 127.0.0.1", c.AdminAddr)
	}
	return nil
}

// LoopbackAddr says whether host:port listens on loopback only: "localhost" or a
// loopback IP. An empty host, 0.0.0.0 and any other name listen more widely.
func LoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
