package api_test

import (
	"context"
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

// TestAddAndRemoveAnswerWithTheCallersAddress: with REBOUND_ADDRESS_HASH_KEY set, Redis
// holds "h:…" for every address, but POST /v1/suppressions and DELETE
// /v1/suppressions/{address} answer with the address the caller sent (normalised), and
// what is stored stays hashed.
func TestAddAndRemoveAnswerWithTheCallersAddress(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	prefix := testsvc.Prefix(t, rdb)
	store := suppress.New(rdb, suppress.Options{Prefix: prefix, AddressHashKey: []byte("0123456789abcdef-test")})
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&api.API{Store: store, Catalog: cat, Policy: policy.Default, Log: zaptest.NewLogger(t), Tokens: adminToken("s3cret")}).Register(mux)
	srv := httptest.NewServer(recordResponses(mux))
	t.Cleanup(srv.Close)
	c := client{t: t, base: srv.URL, token: "s3cret", store: store}

	code, body := c.do("POST", "/v1/suppressions", `{"address":" <Dave@Example.COM> ","tenant":"acme","reason":"manual"}`)
	if code != http.StatusCreated || body["address"] != "Dave@example.com" || body["tenant"] != "acme" {
		t.Fatalf("add = %d %v, want the normalised address the caller sent", code, body)
	}
	code, body = c.do("DELETE", "/v1/suppressions/%3CDave@Example.com%3E?tenant=acme&reason=added+by+mistake", "")
	rec, _ := body["record"].(map[string]any)
	if code != http.StatusOK || body["address"] == nil || strings.HasPrefix(body["address"].(string), "h:") || rec == nil || strings.HasPrefix(rec["address"].(string), "h:") {
		t.Fatalf("remove = %d %v, want the caller's address, not its hash", code, body)
	}
	if body["address"] != "Dave@example.com" || rec["address"] != "Dave@example.com" {
		t.Fatalf("remove = %v, want Dave@example.com (normalised)", body)
	}
	// The audit log keeps the hashed form: Redis holds no clear address.
	rems, err := store.Removals(context.Background(), 10)
	if err != nil || len(rems) != 1 || !strings.HasPrefix(rems[0].Address, "h:") || !strings.HasPrefix(rems[0].Record.Address, "h:") {
		t.Fatalf("stored removal = %+v, %v, want hashed addresses", rems, err)
	}
}

// TestMassBounceReleaseOfOneTenant: ?tenant=T applies or discards only that tenant's
// hold of the domain; without it every hold of the domain is decided.
func TestMassBounceReleaseOfOneTenant(t *testing.T) {
	t.Parallel()
	c := setup(t, "s3cret")
	ctx := context.Background()
	mb := policy.MassBounce{Enabled: true, Window: 10 * time.Minute, Threshold: 10, TenantThreshold: 2, HoldFor: time.Hour}
	var cs []suppress.Change
	for _, id := range []string{"acme/a", "acme/b", "beta/c", "beta/d", "beta/e"} {
		tenant, local, _ := strings.Cut(id, "/")
		cs = append(cs, suppress.Change{EventID: "generic:" + local, ESP: "generic", EventTenant: tenant, Address: local + "@gmail.example",
			Action: suppress.ActionSuppress, Reason: "recipient_unknown", Class: "recipient_unknown"})
	}
	if _, err := c.guard.Hold(ctx, mb, map[string][]suppress.Change{"gmail.example": cs}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.alerts.Observe(ctx, []alert.Observation{{EventID: "generic:b", Class: alert.ClassMassBounce, ReceivingDomain: "gmail.example", Recipient: "b@gmail.example"}}); err != nil {
		t.Fatal(err)
	}
	code, body := c.do("GET", "/v1/mass-bounce", "")
	if list, _ := body["held"].([]any); code != http.StatusOK || len(list) != 2 || list[0].(map[string]any)["tenant"] != "acme" || list[0].(map[string]any)["scope"] != "tenant" {
		t.Fatalf("list = %d %v, want the holds of acme and beta", code, body)
	}
	if code, body := c.do("POST", "/v1/mass-bounce/gmail.example/discard?tenant=acme", ""); code != http.StatusOK || body["discarded"] != 1.0 || body["tenant"] != "acme" {
		t.Fatalf("discard acme = %d %v, want 1", code, body)
	}
	if code, _ := c.do("POST", "/v1/mass-bounce/gmail.example/discard?tenant=acme", ""); code != http.StatusNotFound {
		t.Fatalf("discard acme again = %d, want 404", code)
	}
	if code, _ := c.do("POST", "/v1/mass-bounce/gmail.example/discard?tenant=a:b", ""); code != http.StatusBadRequest {
		t.Fatalf("discard of an invalid tenant = %d, want 400", code)
	}
	if code, inc := c.do("GET", "/v1/alerts/"+guard.IncidentID("gmail.example"), ""); code != http.StatusOK || inc["state"] == "resolved" {
		t.Fatalf("incident = %d %v, want open while beta is held", code, inc)
	}
	if code, body := c.do("POST", "/v1/mass-bounce/gmail.example/apply", ""); code != http.StatusOK || body["applied"] != 2.0 {
		t.Fatalf("apply the rest = %d %v, want beta's 2", code, body)
	}
	if code, inc := c.do("GET", "/v1/alerts/"+guard.IncidentID("gmail.example"), ""); code != http.StatusOK || inc["state"] != "resolved" {
		t.Fatalf("incident = %d %v, want resolved", code, inc)
	}
}
