package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseAPITokens(t *testing.T) {
	t.Parallel()
	got, err := ParseAPITokens("support:read-token-0123456789:read, ops:wr:ite-token-0123456789:write\n# comment\nroot:admin-token-0123456789:admin\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []APIToken{
		{Name: "support", Secret: "read-token-0123456789", Scope: "read"},
		// The token is everything between the first and the last colon.
		{Name: "ops", Secret: "wr:ite-token-0123456789", Scope: "write"},
		{Name: "root", Secret: "admin-token-0123456789", Scope: "admin"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if got, err := ParseAPITokens(""); err != nil || got != nil {
		t.Fatalf("empty = %v, %v", got, err)
	}
}

func TestParseAPITokensRefusesWithoutEchoingTheSecret(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-s3cret-s3cret"
	for _, tt := range []struct{ in, wantErr string }{
		{secret, "entry 1: want name:token:scope"},
		{"a:" + secret, "entry 1: want name:token:scope"},
		{"a:" + secret + ":owner", "entry 1: the scope"},
		{"a b:" + secret + ":read", "entry 1: the name"},
		{"a:short:read", "shorter than 16"},
		{"a:" + secret + ":read,a:other-other-other-1:read", "entry 2: the same name"},
		{"a:" + secret + ":read,b:" + secret + ":admin", "entry 2: the same token"},
		// Fields in the wrong order put the token where a name or scope belongs:
		// the error must not quote those fields either.
		{"ci:read:" + secret, "entry 1: the scope"},
		{secret + ":ci:read", "entry 1: the token"},
		{"s3cret+s3cret/s3cret=:ci:read", "entry 1: the name"},
	} {
		_, err := ParseAPITokens(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%q: err = %v, want it to mention %q", tt.in, err, tt.wantErr)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "short") && !strings.Contains(err.Error(), "shorter") {
			t.Errorf("%q: the error echoes the token: %v", tt.in, err)
		}
	}
}

func TestAdminListener(t *testing.T) {
	t.Parallel()
	const tokens = "ops:ops-token-0123456789:write"
	for _, tt := range []struct {
		name    string
		env     env
		wantErr string // "" = accepted
	}{
		{"default is loopback, no token needed", env{}, ""},
		{"wildcard without a token is refused", env{"REBOUND_ADMIN_ADDR": "0.0.0.0:9090"}, "REBOUND_ADMIN_ADDR: 0.0.0.0:9090 can be reached from other machines and no API token is configured"},
		{"empty host without a token is refused", env{"REBOUND_ADMIN_ADDR": ":9090"}, "no API token is configured"},
		{"a name other than localhost is refused", env{"REBOUND_ADMIN_ADDR": "rebound.internal:9090"}, "no API token is configured"},
		{"localhost needs no token", env{"REBOUND_ADMIN_ADDR": "localhost:9090"}, ""},
		{"IPv6 loopback needs no token", env{"REBOUND_ADMIN_ADDR": "[::1]:9090"}, ""},
		{"wildcard with scoped tokens", env{"REBOUND_ADMIN_ADDR": "0.0.0.0:9090", "REBOUND_API_TOKENS": tokens}, ""},
		{"wildcard with the single token", env{"REBOUND_ADMIN_ADDR": "0.0.0.0:9090", "REBOUND_API_TOKEN": "tok"}, ""},
		// Without the api role the admin listener carries metrics and probes only.
		{"wildcard without the api role", env{"REBOUND_ADMIN_ADDR": "0.0.0.0:9090", "REBOUND_ROLES": "ingest,process"}, ""},
		{"same address as the webhooks", env{"REBOUND_ADMIN_ADDR": "127.0.0.1:8080"}, "same as REBOUND_HTTP_ADDR"},
		{"not host:port", env{"REBOUND_ADMIN_ADDR": "9090"}, "REBOUND_ADMIN_ADDR: \"9090\" is not host:port"},
		{"default name taken twice", env{"REBOUND_API_TOKEN": "tok", "REBOUND_API_TOKENS": "default:other-token-0123456789:read"}, `"default" is taken`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(setup(t), nil, tt.env.get)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestAPITokensFromFile(t *testing.T) {
	t.Parallel()
	f := t.TempDir() + "/tokens"
	if err := os.WriteFile(f, []byte("support:read-token-0123456789:read\nops:ops-token-0123456789:write\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(setup(t), nil, env{"REBOUND_API_TOKENS_FILE": f}.get)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.APITokens) != 2 || got.APITokens[1].Name != "ops" || got.APITokens[1].Scope != "write" {
		t.Fatalf("APITokens = %+v", got.APITokens)
	}
	if _, err := Parse(setup(t), nil, env{"REBOUND_API_TOKENS_FILE": f, "REBOUND_API_TOKENS": "a:b-0123456789abcdef:read"}.get); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Fatalf("both set: err = %v", err)
	}
}
