package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/api"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// The scoped tokens of scopedSetup, by name.
var scopedTokens = []api.Token{
	{Name: "support", Secret: "read-secret-0123456789", Scope: api.ScopeRead},
	{Name: "ops", Secret: "write-secret-0123456789", Scope: api.ScopeWrite},
	{Name: "root", Secret: "admin-secret-0123456789", Scope: api.ScopeAdmin},
}

type scoped struct {
	anon, read, write, admin client
	api                      *api.API
	mux                      *http.ServeMux
	logs                     *observer.ObservedLogs
}

// scopedSetup serves the API with one token per scope, against a real Redis, and
// records its log lines.
func scopedSetup(t *testing.T) scoped {
	t.Helper()
	rdb := testsvc.RedisClient(t)
	prefix := testsvc.Prefix(t, rdb)
	store := suppress.New(rdb, suppress.Options{Prefix: prefix})
	alerts := alert.NewStore(rdb, alert.StoreOptions{Prefix: prefix})
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	g := guard.New(guard.Config{Redis: rdb, Prefix: prefix, Store: store, Alerts: alerts, Log: log})
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	a := &api.API{Store: store, Alerts: alerts, Guard: g, Catalog: cat, Policy: policy.Default, Log: log, Tokens: scopedTokens}
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(recordResponses(mux))
	t.Cleanup(srv.Close)
	c := client{t: t, base: srv.URL, alerts: alerts, guard: g, store: store}
	s := scoped{anon: c, read: c, write: c, admin: c, api: a, mux: mux, logs: logs}
	s.read.token, s.write.token, s.admin.token = scopedTokens[0].Secret, scopedTokens[1].Secret, scopedTokens[2].Secret
	return s
}

// concrete turns a route pattern into a request path ("{address}" → an address).
func concrete(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllStringFunc(path, func(p string) string {
		switch p {
		case "{address}":
			return "nobody@example.com"
		case "{domain}":
			return "example.com"
		case "{code}":
			return "550"
		}
		return "0123456789abcdef01234567"
	})
	return method, path
}

// TestEveryRouteChecksItsScope walks the route table: without a token 401, with a
// wrong one 401, with a token one scope too small 403, with the scope it needs not a
// refusal.
func TestEveryRouteChecksItsScope(t *testing.T) {
	t.Parallel()
	s := scopedSetup(t)
	wrong := s.anon
	wrong.token = "not-a-configured-token-0000"
	byScope := map[api.Scope]client{api.ScopeRead: s.read, api.ScopeWrite: s.write, api.ScopeAdmin: s.admin}
	for _, rt := range s.api.Routes() {
		method, path := concrete(rt.Pattern)
		if code, body := s.anon.do(method, path, "{}"); code != http.StatusUnauthorized || errCode(body) != "unauthorized" {
			t.Errorf("%s without a token = %d %v, want 401 unauthorized", rt.Pattern, code, body)
		}
		if code, _ := wrong.do(method, path, "{}"); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token = %d, want 401", rt.Pattern, code)
		}
		if rt.Scope > api.ScopeRead {
			small := byScope[rt.Scope-1]
			if code, body := small.do(method, path, "{}"); code != http.StatusForbidden || errCode(body) != "forbidden" || !strings.Contains(errMessage(body), "needs "+rt.Scope.String()) {
				t.Errorf("%s with scope %s = %d %v, want 403 naming %s", rt.Pattern, rt.Scope-1, code, body, rt.Scope)
			}
		}
		if code, _ := byScope[rt.Scope].do(method, path, "{}"); code == http.StatusUnauthorized || code == http.StatusForbidden {
			t.Errorf("%s with scope %s = %d, want it admitted", rt.Pattern, rt.Scope, code)
		}
	}
	// The scopes are ordered: admin may do what write may.
	if code, _ := s.admin.do("POST", "/v1/suppressions", `{"address":"a@example.com","reason":"test"}`); code != http.StatusCreated {
		t.Errorf("add with an admin token = %d, want 201", code)
	}
}

func TestTokensNeverReachTheLog(t *testing.T) {
	t.Parallel()
	s := scopedSetup(t)
	s.write.do("POST", "/v1/suppressions", `{"address":"a@example.com","reason":"asked"}`)
	s.read.do("DELETE", "/v1/suppressions/a@example.com?reason=x", "")
	s.write.do("DELETE", "/v1/suppressions/a@example.com?reason=asked+again", "")
	bad := s.anon
	bad.token = "guessed-token-guessed-token"
	bad.do("GET", "/v1/alerts", "")
	if s.logs.Len() == 0 {
		t.Fatal("nothing logged: the test would prove nothing")
	}
	for _, e := range s.logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + toString(v)
		}
		for _, secret := range []string{scopedTokens[0].Secret, scopedTokens[1].Secret, scopedTokens[2].Secret, bad.token} {
			if strings.Contains(line, secret) {
				t.Errorf("log line carries a token: %s", line)
			}
		}
	}
	// Changes are logged at info with the token's name.
	changes := s.logs.FilterMessage("api change").FilterField(zap.String("actor", "ops")).All()
	if len(changes) != 2 || changes[0].Level != zapcore.InfoLevel {
		t.Fatalf("api change lines by ops = %+v, want 2 at info", changes)
	}
	if _, ok := changes[0].ContextMap()["target"]; ok {
		t.Errorf("an address was logged at info: %v", changes[0].ContextMap())
	}
}

func toString(v any) string { return fmt.Sprint(v) }

// errCode is the code of an error answer ("" for any other shape).
func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestReasonRequiredAndTheActorIsAudited(t *testing.T) {
	t.Parallel()
	s := scopedSetup(t)
	if code, body := s.write.do("POST", "/v1/suppressions", `{"address":"ana@example.com"}`); code != http.StatusBadRequest || errCode(body) != "reason_required" {
		t.Fatalf("add without a reason = %d %v, want 400 reason_required", code, body)
	}
	code, rec := s.write.do("POST", "/v1/suppressions", `{"address":"ana@example.com","tenant":"acme","reason":"asked us by phone"}`)
	if code != http.StatusCreated || rec["reason"] != "asked us by phone" || rec["rule"] != "api:ops" {
		t.Fatalf("add = %d %v, want the reason and rule api:ops", code, rec)
	}
	for _, q := range []string{"", "&reason=", "&reason=+++", "&note="} {
		if code, body := s.write.do("DELETE", "/v1/suppressions/ana@example.com?tenant=acme"+q, ""); code != http.StatusBadRequest || errCode(body) != "reason_required" {
			t.Errorf("lift with %q = %d %v, want 400 reason_required", q, code, body)
		}
	}
	if code, _ := s.write.do("DELETE", "/v1/suppressions/ana@example.com?tenant=acme&reason="+strings.Repeat("x", 501), ""); code != http.StatusBadRequest {
		t.Errorf("lift with a 501-byte reason = %d, want 400", code)
	}
	if code, _ := s.read.do("GET", "/v1/suppressions/ana@example.com?tenant=acme", ""); code != http.StatusOK {
		t.Fatalf("still suppressed after refused lifts = %d, want 200", code)
	}
	code, rem := s.write.do("DELETE", "/v1/suppressions/ana@example.com?tenant=acme&reason=customer+confirmed+the+mailbox+works&by=someone-else", "")
	if code != http.StatusOK || rem["by"] != "ops" || rem["reason"] != "customer confirmed the mailbox works" {
		t.Fatalf("lift = %d %v, want by ops (the token, not by=) and the reason", code, rem)
	}
	_, body := s.read.do("GET", "/v1/suppressions/removals", "")
	rems, _ := body["removals"].([]any)
	if len(rems) != 1 {
		t.Fatalf("removals = %v", body)
	}
	r0 := rems[0].(map[string]any)
	removed, _ := r0["record"].(map[string]any)
	if r0["by"] != "ops" || r0["reason"] != "customer confirmed the mailbox works" || r0["at"] == nil || r0["tenant"] != "acme" || removed["reason"] != "asked us by phone" || removed["rule"] != "api:ops" {
		t.Fatalf("removal = %v: want who, when, why and the removed record", r0)
	}
	_, body = s.read.do("GET", "/v1/audit", "")
	changes, _ := body["changes"].([]any)
	if len(changes) != 2 {
		t.Fatalf("audit = %v, want the add and the lift", body)
	}
	lift, add := changes[0].(map[string]any), changes[1].(map[string]any)
	if lift["action"] != "suppression.remove" || lift["actor"] != "ops" || lift["reason"] != "customer confirmed the mailbox works" || lift["tenant"] != "acme" ||
		add["action"] != "suppression.add" || add["actor"] != "ops" || add["reason"] != "asked us by phone" || add["target"] != "ana@example.com" {
		t.Fatalf("audit = %v", changes)
	}
	if code, _ := s.read.do("GET", "/v1/audit?limit=0", ""); code != http.StatusBadRequest {
		t.Errorf("audit limit 0 = %d, want 400", code)
	}
}

func TestAlertAndMassBounceChangesAreAudited(t *testing.T) {
	t.Parallel()
	s := scopedSetup(t)
	auth, _ := openIncident(t, s.write)
	if code, _ := s.read.do("POST", "/v1/alerts/"+auth+"/ack", ""); code != http.StatusForbidden {
		t.Fatalf("ack with a read token = %d, want 403", code)
	}
	if code, body := s.write.do("POST", "/v1/alerts/"+auth+"/ack?reason=looking+at+it", ""); code != http.StatusOK || body["alert"].(map[string]any)["acked_by"] != "ops" {
		t.Fatalf("ack = %d %v, want acked by ops", code, body)
	}
	if code, _ := s.admin.do("POST", "/v1/alerts/"+auth+"/resolve", ""); code != http.StatusOK {
		t.Fatalf("resolve = %d", code)
	}
	_, body := s.read.do("GET", "/v1/audit", "")
	changes, _ := body["changes"].([]any)
	if len(changes) != 2 {
		t.Fatalf("audit = %v, want ack and resolve", body)
	}
	res, ack := changes[0].(map[string]any), changes[1].(map[string]any)
	if res["action"] != "alert.resolve" || res["actor"] != "root" || res["target"] != auth ||
		ack["action"] != "alert.ack" || ack["actor"] != "ops" || ack["reason"] != "looking at it" {
		t.Fatalf("audit = %v", changes)
	}
}

// TestWithoutTokensOnlyLoopbackReads: with no token configured, a loopback caller may
// read and may not change; a caller from another machine may do neither.
func TestWithoutTokensOnlyLoopbackReads(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	store := suppress.New(rdb, suppress.Options{Prefix: testsvc.Prefix(t, rdb)})
	a := &api.API{Store: store, Policy: policy.Default, Log: zap.NewNop()}
	mux := http.NewServeMux()
	a.Register(mux)
	for _, tc := range []struct {
		peer, method, path, body string
		want                     int
		wantCode                 string
	}{
		{"127.0.0.1:5555", "GET", "/v1/suppressions/a@example.com", "", http.StatusNotFound, "not_found"},
		{"[::1]:5555", "GET", "/v1/suppressions/a@example.com", "", http.StatusNotFound, "not_found"},
		{"127.0.0.1:5555", "POST", "/v1/suppressions", `{"address":"a@example.com","reason":"x"}`, http.StatusForbidden, "forbidden"},
		{"192.0.2.7:5555", "GET", "/v1/suppressions/a@example.com", "", http.StatusUnauthorized, "unauthorized"},
		{"10.0.0.3:5555", "GET", "/v1/suppressions", "", http.StatusUnauthorized, "unauthorized"},
	} {
		r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)).WithContext(context.Background())
		r.RemoteAddr = tc.peer
		w := httptest.NewRecorder()
		recordResponses(mux).ServeHTTP(w, r)
		var body map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != tc.want || errCode(body) != tc.wantCode {
			t.Errorf("%s %s from %s = %d %s, want %d %s", tc.method, tc.path, tc.peer, w.Code, w.Body.String(), tc.want, tc.wantCode)
		}
	}
}
