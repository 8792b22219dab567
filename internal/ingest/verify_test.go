package ingest

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestVerifier pins the rule every adapter gets from Verifier: a configured secret is
// always checked, the opt-out applies only while no secret is set, and an opt-out next
// to a secret is ignored with a warning.
func TestVerifier(t *testing.T) {
	t.Parallel()
	errCheck := errors.New("signature does not verify")
	tests := []struct {
		name       string
		configured bool
		insecure   string // REBOUND_ACME_INSECURE_SKIP_VERIFY
		checkErr   error  // what the ESP's check returns
		wantCheck  bool   // the check ran
		wantErr    error  // nil, errCheck, or ErrUnauthenticated for the refusal
		wantWarn   string // part of the warning logged at construction, "" for none
	}{
		{name: "secret, check passes", configured: true, wantCheck: true},
		{name: "secret, check fails", configured: true, checkErr: errCheck, wantCheck: true, wantErr: errCheck},
		{name: "secret and opt-out: still checked", configured: true, insecure: "true", checkErr: errCheck, wantCheck: true, wantErr: errCheck, wantWarn: "opt-out ignored"},
		{name: "secret and opt-out, check passes", configured: true, insecure: "TRUE", wantCheck: true, wantWarn: "opt-out ignored"},
		{name: "no secret: refused", wantErr: ErrUnauthenticated},
		{name: "no secret, opt-out: accepted unchecked", insecure: "true", wantWarn: "turned off"},
		{name: "no secret, opt-out in other case", insecure: "True", wantWarn: "turned off"},
		{name: "no secret, opt-out not true: refused", insecure: "1", wantErr: ErrUnauthenticated},
		{name: "no secret, opt-out false: refused", insecure: "false", wantErr: ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(zap.InfoLevel)
			vars := map[string]string{"REBOUND_ACME_INSECURE_SKIP_VERIFY": tt.insecure}
			env := Env{Getenv: func(k string) string { return vars[k] }, Log: zap.New(core)}
			v := env.Verifier("acme", "SIGNING_KEY", tt.configured)
			checked := false
			err := v.Authenticate(func() error { checked = true; return tt.checkErr })
			if checked != tt.wantCheck {
				t.Errorf("check ran = %v, want %v", checked, tt.wantCheck)
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("Authenticate = %v, want %v", err, tt.wantErr)
			}
			if errors.Is(tt.wantErr, ErrUnauthenticated) && err != nil &&
				(!strings.Contains(err.Error(), "REBOUND_ACME_SIGNING_KEY") || !strings.Contains(err.Error(), "REBOUND_ACME_INSECURE_SKIP_VERIFY")) {
				t.Errorf("refusal %q must name the secret and the opt-out", err)
			}
			if got := v.Unchecked(); got != (!tt.configured && strings.EqualFold(tt.insecure, "true")) {
				t.Errorf("Unchecked = %v", got)
			}
			warns := logs.FilterLevelExact(zap.WarnLevel).All()
			switch {
			case tt.wantWarn == "" && len(warns) != 0:
				t.Errorf("unexpected warning %q", warns[0].Message)
			case tt.wantWarn != "" && (len(warns) != 1 || !strings.Contains(warns[0].Message, tt.wantWarn)):
				t.Errorf("warnings %v, want one containing %q", warns, tt.wantWarn)
			case len(warns) == 1 && warns[0].ContextMap()["esp"] != "acme":
				t.Errorf("warning fields %v, want esp=acme", warns[0].ContextMap())
			}
		})
	}
	t.Run("zero Verifier refuses", func(t *testing.T) {
		t.Parallel()
		if err := (Verifier{}).Authenticate(func() error { return nil }); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("zero Verifier: Authenticate = %v, want ErrUnauthenticated", err)
		}
	})
	t.Run("no logger", func(t *testing.T) {
		t.Parallel()
		env := Env{Getenv: func(string) string { return "true" }}
		if err := env.Verifier("acme", "TOKEN", false).Authenticate(nil); err != nil {
			t.Fatalf("opt-out without a logger: %v", err)
		}
	})
}

func TestBasicAuthCheck(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		vars    map[string]string
		wantErr string // part of New's error, "" for none
	}{
		{"no colon", map[string]string{"REBOUND_ACME_BASIC_AUTH": "just-a-token"}, "REBOUND_ACME_BASIC_AUTH: want user:password (why)"},
		{"ok", map[string]string{"REBOUND_ACME_BASIC_AUTH": "u:p"}, ""},
		{"unset", nil, ""},
	} {
		env := Env{Getenv: func(k string) string { return tt.vars[k] }}
		_, err := NewBasicAuthCheck(env, "acme", " (why)")
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: NewBasicAuthCheck = %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: NewBasicAuthCheck = %v, want %q", tt.name, err, tt.wantErr)
		case err != nil && strings.Contains(err.Error(), "just-a-token"):
			t.Errorf("%s: error %q leaks the secret", tt.name, err)
		}
	}
}
