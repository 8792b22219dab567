package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reboundhq/rebound/internal/api"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestReadyzSaysNoMoreThanAWord: /readyz answers anyone who reaches the port, so a
// failing dependency's error text (hosts, addresses, users) goes to the log only, and
// only when it changes.
func TestReadyzSaysNoMoreThanAWord(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	detail := "dial tcp 10.1.2.3:6379: connect: connection refused (user rebound-admin)"
	p := &api.Probes{Metrics: metrics.New(), Log: zap.New(core), Checks: map[string]func(context.Context) error{
		"redis": func(context.Context) error { return errors.New(detail) },
		"nats":  func(context.Context) error { return nil },
	}}
	mux := http.NewServeMux()
	p.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for range 3 {
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"redis": "unavailable"`) || !strings.Contains(string(body), `"nats": "ok"`) {
			t.Fatalf("/readyz = %d %s", resp.StatusCode, body)
		}
		if strings.Contains(string(body), "10.1.2.3") || strings.Contains(string(body), "rebound-admin") {
			t.Fatalf("/readyz shows the error's detail: %s", body)
		}
	}
	if n := logs.FilterMessage("readiness check failed").Len(); n != 1 {
		t.Errorf("failure logged %d times over 3 probes, want once", n)
	}
}

func TestClassifyIsBounded(t *testing.T) {
	t.Parallel()
	c := setup(t, "")
	many := `{"replies":[` + strings.Repeat(`"550 5.1.1 user unknown",`, 1000) + `"x"]}`
	if code, body := c.do("POST", "/v1/classify", many); code != http.StatusBadRequest || !strings.Contains(errMessage(body), "at most 1000") {
		t.Errorf("1001 replies = %d %v, want 400", code, body)
	}
	long := `{"reply":"550 ` + strings.Repeat("a", 17<<10) + `"}`
	if code, _ := c.do("POST", "/v1/classify", long); code != http.StatusBadRequest {
		t.Errorf("a 17 KiB reply = %d, want 400", code)
	}
	if code, _ := c.do("POST", "/v1/classify", `{"replies":["550 5.1.1 user unknown","530 5.7.0 Authentication required"]}`); code != http.StatusOK {
		t.Errorf("two replies = %d, want 200", code)
	}
}

// TestTenantOutsideTheCharacterSetIsRefused: a tenant is part of every recipient key, so
// one with ':' or a quote could name another tenant's key.
func TestTenantOutsideTheCharacterSetIsRefused(t *testing.T) {
	t.Parallel()
	c := setup(t, "tok")
	for _, tc := range []struct{ method, path, body string }{
		{"GET", `/v1/suppressions/x@d.example?tenant=acme%3A%22`, ""},
		{"GET", `/v1/suppressions?tenant=a%7Db`, ""},
		{"GET", `/v1/recipients/x@d.example?tenant=ac+me`, ""},
		{"GET", `/v1/alerts?tenant=acme%3A`, ""},
		{"DELETE", `/v1/suppressions/x@d.example?tenant=acme%3A%22`, ""},
		{"POST", `/v1/suppressions`, `{"address":"x@d.example","tenant":"acme:\""}`},
		{"POST", `/v1/suppressions/check`, `{"tenant":"acme:\"","addresses":["x@d.example"]}`},
	} {
		code, body := c.do(tc.method, tc.path, tc.body)
		if msg := errMessage(body); code != http.StatusBadRequest || !strings.HasPrefix(msg, "tenant:") {
			t.Errorf("%s %s = %d %v, want 400 naming the tenant", tc.method, tc.path, code, body)
		}
	}
	if code, _ := c.do("GET", "/v1/suppressions?tenant=acme-eu_1.prod", ""); code != http.StatusOK {
		t.Errorf("a valid tenant = %d, want 200", code)
	}
}

func TestUnknownRepliesList(t *testing.T) {
	t.Parallel()
	c := setup(t, "")
	if code, body := c.do("GET", "/v1/unknown-replies", ""); code != http.StatusOK || len(body["unknown_replies"].([]any)) != 0 {
		t.Fatalf("empty list = %d %v", code, body)
	}
	if err := c.store.RecordUnknown(context.Background(), []string{"599 odd <a@b.example>", "599 odd <a@b.example>", "421 weird"}, []string{"generic", "sendgrid", "mailgun"}); err != nil {
		t.Fatal(err)
	}
	code, body := c.do("GET", "/v1/unknown-replies?limit=1", "")
	list, _ := body["unknown_replies"].([]any)
	if code != http.StatusOK || len(list) != 1 {
		t.Fatalf("GET /v1/unknown-replies?limit=1 = %d %v", code, body)
	}
	top := list[0].(map[string]any)
	if top["count"] != 2.0 || top["esp"] != "sendgrid" || strings.Contains(top["reply"].(string), "a@b") {
		t.Errorf("top unknown reply = %v, want the redacted text seen twice, last from sendgrid", top)
	}
	if code, _ := c.do("GET", "/v1/unknown-replies?limit=0", ""); code != http.StatusBadRequest {
		t.Errorf("limit=0 = %d, want 400", code)
	}
}

// TestOutageIsLoggedOnce: with Redis gone every request fails the same way; the log
// says so once, not once per request.
func TestOutageIsLoggedOnce(t *testing.T) {
	t.Parallel()
	port, err := testsvc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	core, logs := observer.New(zapcore.InfoLevel)
	mux := http.NewServeMux()
	(&api.API{Store: suppress.New(rdb, suppress.Options{}), Policy: policy.Default, Log: zap.New(core)}).Register(mux)
	srv := httptest.NewServer(recordResponses(mux))
	defer srv.Close()
	for range 5 {
		resp, err := http.Get(srv.URL + "/v1/suppressions/a@example.com")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("with Redis gone: %d, want 503", resp.StatusCode)
		}
	}
	if n := logs.FilterMessage("api: state unavailable").Len(); n != 1 {
		t.Errorf("outage logged %d times over 5 requests, want once", n)
	}
}
