package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/api"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

type client struct {
	t      *testing.T
	base   string
	token  string
	alerts *alert.Store
	guard  *guard.Guard
	store  *suppress.Store
}

func (c client) do(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// errMessage is the message of an error answer {"error": {"code", "message"}} ("" for
// any other shape, which then fails the caller's check).
func errMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

// adminToken is secret as the one admin token REBOUND_API_TOKEN gives ("" = none).
func adminToken(secret string) []api.Token {
	if secret == "" {
		return nil
	}
	return []api.Token{{Name: "default", Secret: secret, Scope: api.ScopeAdmin}}
}

func setup(t *testing.T, token string) client {
	t.Helper()
	rdb := testsvc.RedisClient(t)
	prefix := testsvc.Prefix(t, rdb)
	store := suppress.New(rdb, suppress.Options{Prefix: prefix})
	alerts := alert.NewStore(rdb, alert.StoreOptions{Prefix: prefix})
	g := guard.New(guard.Config{Redis: rdb, Prefix: prefix, Store: store, Alerts: alerts, Log: zaptest.NewLogger(t)})
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&api.API{Store: store, Alerts: alerts, Guard: g, Catalog: cat, Policy: policy.Default, Log: zaptest.NewLogger(t), Tokens: adminToken(token)}).Register(mux)
	srv := httptest.NewServer(recordResponses(mux))
	t.Cleanup(srv.Close)
	return client{t: t, base: srv.URL, token: token, alerts: alerts, guard: g, store: store}
}

func TestWithoutTokenReadsAreOpenAndChangesRefused(t *testing.T) {
	t.Parallel()
	c := setup(t, "")
	if code, _ := c.do("GET", "/v1/suppressions/a@example.com", ""); code != http.StatusNotFound {
		t.Fatalf("read without token = %d, want 404 (open, not suppressed)", code)
	}
	code, body := c.do("POST", "/v1/suppressions", `{"address":"a@example.com"}`)
	if code != http.StatusForbidden || !strings.Contains(errMessage(body), "REBOUND_API_TOKEN") {
		t.Fatalf("change without token = %d %v, want 403 naming REBOUND_API_TOKEN", code, body)
	}
}

func TestWithTokenEveryRequestNeedsIt(t *testing.T) {
	t.Parallel()
	c := setup(t, "s3cret")
	anon := c
	anon.token = ""
	if code, _ := anon.do("GET", "/v1/alerts", ""); code != http.StatusUnauthorized {
		t.Fatalf("read without the token = %d, want 401", code)
	}
	wrong := c
	wrong.token = "guess"
	if code, _ := wrong.do("POST", "/v1/suppressions", `{"address":"a@example.com"}`); code != http.StatusUnauthorized {
		t.Fatalf("change with a wrong token = %d, want 401", code)
	}
	if code, _ := c.do("GET", "/v1/alerts", ""); code != http.StatusOK {
		t.Fatalf("read with the token = %d, want 200", code)
	}
}

func TestAddCheckRemoveAudit(t *testing.T) {
	t.Parallel()
	c := setup(t, "s3cret")
	code, rec := c.do("POST", "/v1/suppressions", `{"address":"Ana@Example.COM","reason":"customer request","ttl":"30d"}`)
	if code != http.StatusCreated || rec["address"] != "Ana@example.com" || rec["reason"] != "customer request" || rec["expires_at"] == nil {
		t.Fatalf("add = %d %v", code, rec)
	}
	if code, _ := c.do("POST", "/v1/suppressions", `{"address":"nobody"}`); code != http.StatusBadRequest {
		t.Fatalf("add of a non-address = %d, want 400", code)
	}
	if code, _ := c.do("POST", "/v1/suppressions", `{"address":"a@example.com","ttl":"soon"}`); code != http.StatusBadRequest {
		t.Fatalf("add with a bad ttl = %d, want 400", code)
	}
	code, body := c.do("POST", "/v1/suppressions/check", `{"addresses":["ana@example.com","Ana@example.com","bob@example.com"]}`)
	res := body["results"].([]any)
	if code != http.StatusOK || res[0].(map[string]any)["suppressed"] != false || res[1].(map[string]any)["suppressed"] != true || res[2].(map[string]any)["suppressed"] != false {
		t.Fatalf("check = %d %v (the local part keeps its case)", code, body)
	}
	if code, _ := c.do("GET", "/v1/suppressions/Ana@example.com", ""); code != http.StatusOK {
		t.Fatalf("get = %d, want 200", code)
	}
	// note= is the earlier name of reason=; by= names nobody any more: the token does.
	code, rem := c.do("DELETE", "/v1/suppressions/Ana@example.com?by=ops&note=asked", "")
	if code != http.StatusOK || rem["by"] != "default" || rem["reason"] != "asked" {
		t.Fatalf("remove = %d %v", code, rem)
	}
	if code, _ := c.do("GET", "/v1/suppressions/Ana@example.com", ""); code != http.StatusNotFound {
		t.Fatalf("get after remove = %d, want 404", code)
	}
	if code, _ := c.do("DELETE", "/v1/suppressions/Ana@example.com?reason=again", ""); code != http.StatusNotFound {
		t.Fatalf("second remove = %d, want 404", code)
	}
	_, log := c.do("GET", "/v1/suppressions/removals", "")
	if rems := log["removals"].([]any); len(rems) != 1 || rems[0].(map[string]any)["reason"] != "asked" {
		t.Fatalf("removals = %v", log)
	}
	_, st := c.do("GET", "/v1/recipients/Ana@example.com", "")
	if st["suppression"] != nil || len(st["history"].([]any)) != 2 {
		t.Fatalf("recipient = %v, want no suppression and two history entries (added, removed)", st)
	}
}

func TestCatalogClassifyMassBounce(t *testing.T) {
	t.Parallel()
	c := setup(t, "s3cret")
	code, e := c.do("GET", "/v1/catalog/530", "")
	if code != http.StatusOK || e["code"] != "530" || len(e["fix"].([]any)) == 0 {
		t.Fatalf("catalog 530 = %d %v", code, e)
	}
	if code, _ := c.do("GET", "/v1/catalog/999", ""); code != http.StatusNotFound {
		t.Fatalf("catalog 999 = %d, want 404", code)
	}
	code, body := c.do("POST", "/v1/classify", `{"replies":["530 5.7.0 Authentication required","550 5.1.1 user unknown"]}`)
	res := body["results"].([]any)
	if code != http.StatusOK || res[0].(map[string]any)["action"] != "alert" || res[1].(map[string]any)["action"] != "suppress" {
		t.Fatalf("classify = %d %v", code, body)
	}
	if code, _ := c.do("POST", "/v1/classify", `{"reply":""}`); code != http.StatusBadRequest {
		t.Fatalf("empty classify = %d, want 400", code)
	}
	// The same reply with and without our sender address: about ours, it is an alert.
	const aboutOurs = `"553 <bounces@acme.example> Invalid email address."`
	for sender, want := range map[string]string{"": "suppress", "bounces@acme.example": "alert"} {
		code, body := c.do("POST", "/v1/classify", `{"reply":`+aboutOurs+`,"sender":"`+sender+`"}`)
		if res := body["results"].([]any); code != http.StatusOK || res[0].(map[string]any)["action"] != want {
			t.Fatalf("classify with sender %q = %d %v, want %s", sender, code, body, want)
		}
	}
	if code, body := c.do("GET", "/v1/mass-bounce", ""); code != http.StatusOK || len(body["held"].([]any)) != 0 {
		t.Fatalf("mass-bounce list = %d %v", code, body)
	}
	if code, _ := c.do("POST", "/v1/mass-bounce/fine.example/apply", ""); code != http.StatusNotFound {
		t.Fatalf("apply on a domain that is not held = %d, want 404", code)
	}
	if code, body := c.do("GET", "/v1/policy/shadow", ""); code != http.StatusOK || body["enabled"] != false {
		t.Fatalf("shadow = %d %v", code, body)
	}
}

func TestMassBounceListApplyDiscard(t *testing.T) {
	t.Parallel()
	c := setup(t, "s3cret")
	ctx := context.Background()
	mb := policy.MassBounce{Enabled: true, Window: 10 * time.Minute, Threshold: 2, HoldFor: time.Hour}
	hold := func(domain string, ids ...string) {
		t.Helper()
		var cs []suppress.Change
		var obs []alert.Observation
		for _, id := range ids {
			cs = append(cs, suppress.Change{EventID: "generic:" + id, ESP: "generic", Address: id + "@" + domain, Action: suppress.ActionSuppress,
				Reason: "recipient_unknown", Class: "recipient_unknown", Code: "5.1.1"})
			obs = append(obs, alert.Observation{EventID: "generic:" + id, Class: alert.ClassMassBounce, Severity: "high", ReceivingDomain: domain, Recipient: id + "@" + domain})
		}
		if r, err := c.guard.Hold(ctx, mb, map[string][]suppress.Change{domain: cs}); err != nil || r[domain].Changes[len(ids)-1] == guard.NotHeld {
			t.Fatalf("Hold = %+v, %v", r, err)
		}
		if _, err := c.alerts.Observe(ctx, obs); err != nil {
			t.Fatal(err)
		}
	}
	hold("outage.example", "a", "b", "c")
	hold("other.example", "x", "y")

	code, body := c.do("GET", "/v1/mass-bounce", "")
	list, _ := body["held"].([]any)
	if code != http.StatusOK || len(list) != 2 {
		t.Fatalf("mass-bounce list = %d %v, want two held domains", code, body)
	}
	for _, h := range list {
		m := h.(map[string]any)
		for _, field := range []string{"domain", "scope", "tenant", "since", "last_seen", "recipients_in_window", "pending"} {
			if _, ok := m[field]; !ok {
				t.Errorf("held domain %v has no %q", m, field)
			}
		}
	}
	// Held from the threshold (2) on: b and c, y.
	if code, body := c.do("POST", "/v1/mass-bounce/Outage.Example/apply", ""); code != http.StatusOK || body["domain"] != "outage.example" || body["applied"] != 2.0 {
		t.Fatalf("apply = %d %v, want 2 applied", code, body)
	}
	if code, body := c.do("POST", "/v1/mass-bounce/other.example/discard", ""); code != http.StatusOK || body["discarded"] != 1.0 {
		t.Fatalf("discard = %d %v, want 1 discarded", code, body)
	}
	if code, _ := c.do("GET", "/v1/suppressions/c@outage.example", ""); code != http.StatusOK {
		t.Fatalf("applied suppression = %d, want 200", code)
	}
	if code, _ := c.do("GET", "/v1/suppressions/x@other.example", ""); code != http.StatusNotFound {
		t.Fatalf("discarded suppression = %d, want 404", code)
	}
	for domain, by := range map[string]string{"outage.example": "mass-bounce apply", "other.example": "mass-bounce discard"} {
		code, inc := c.do("GET", "/v1/alerts/"+guard.IncidentID(domain), "")
		if code != http.StatusOK || inc["state"] != "resolved" || inc["resolved_by"] != by {
			t.Errorf("incident of %s = %d %v, want resolved by %s", domain, code, inc, by)
		}
	}
	if code, _ := c.do("POST", "/v1/mass-bounce/outage.example/apply", ""); code != http.StatusNotFound {
		t.Fatalf("second apply = %d, want 404", code)
	}
}
