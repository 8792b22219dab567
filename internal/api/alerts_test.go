package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/reboundhq/rebound/internal/alert"
)

// openIncident observes two 530s of one sender and one rate limit of another tenant.
func openIncident(t *testing.T, c client) (auth, rate string) {
	t.Helper()
	obs := []alert.Observation{
		{EventID: "generic:a1", Class: "auth_required", Severity: "critical", SendingDomain: "mail.shop.example", SendingIP: "192.0.2.10",
			Recipient: "r1@example.com", Code: "530", Reply: "530 5.7.0 Authentication required", Fix: []string{"Check the SMTP credentials."}},
		{EventID: "generic:a2", Class: "auth_required", Severity: "critical", SendingDomain: "mail.shop.example", SendingIP: "192.0.2.10",
			Recipient: "r2@example.net", Code: "530", Reply: "530 5.7.0 Authentication required", Fix: []string{"Check the SMTP credentials."}},
		{EventID: "generic:b1", Tenant: "acme", Class: "rate_limited", Severity: "warning", SendingDomain: "mail.acme.example",
			Recipient: "r3@yahoo.com", Code: "4.7.0", Reply: "421 4.7.0 [TSS04] deferred"},
	}
	out, err := c.alerts.Observe(context.Background(), obs)
	if err != nil || out[0].Err != nil || !out[0].Opened || !out[2].Opened {
		t.Fatalf("Observe = %+v, %v", out, err)
	}
	return out[0].Fingerprint, out[2].Fingerprint
}

func TestAlertsListShowFilter(t *testing.T) {
	t.Parallel()
	c := setup(t, "")
	auth, rate := openIncident(t, c)

	code, body := c.do("GET", "/v1/alerts", "")
	if list, _ := body["alerts"].([]any); code != http.StatusOK || len(list) != 2 {
		t.Fatalf("GET /v1/alerts = %d %v, want 2 incidents", code, body)
	}
	for _, tc := range []struct {
		query string
		want  string // the one ID expected, "" for none
	}{
		{"?class=auth_required", auth},
		{"?tenant=acme", rate},
		{"?state=open&class=rate_limited", rate},
		{"?state=resolved", ""},
	} {
		code, body := c.do("GET", "/v1/alerts"+tc.query, "")
		list, _ := body["alerts"].([]any)
		switch {
		case code != http.StatusOK:
			t.Errorf("%s: HTTP %d", tc.query, code)
		case tc.want == "" && len(list) != 0:
			t.Errorf("%s: %d incidents, want none", tc.query, len(list))
		case tc.want != "" && (len(list) != 1 || list[0].(map[string]any)["id"] != tc.want):
			t.Errorf("%s: %v, want only %s", tc.query, list, tc.want)
		}
	}
	if code, _ := c.do("GET", "/v1/alerts?state=bogus", ""); code != http.StatusBadRequest {
		t.Errorf("bad state filter = %d, want 400", code)
	}

	code, inc := c.do("GET", "/v1/alerts/"+auth, "")
	if code != http.StatusOK || inc["class"] != "auth_required" || inc["severity"] != "critical" || inc["messages"] != 2.0 ||
		inc["recipients"] != 2.0 || inc["state"] != "open" {
		t.Fatalf("GET /v1/alerts/{id} = %d %v", code, inc)
	}
	if tr, _ := inc["transitions"].([]any); len(tr) != 1 || tr[0].(map[string]any)["kind"] != "trigger" {
		t.Errorf("transitions = %v, want one trigger", inc["transitions"])
	}
	for _, id := range []string{"0123456789abcdef01234567", "not-hex", "x%7D:foo"} {
		if code, _ := c.do("GET", "/v1/alerts/"+id, ""); code != http.StatusNotFound {
			t.Errorf("GET /v1/alerts/%s = %d, want 404", id, code)
		}
	}
}

func TestAlertsAckAndResolveNeedTheToken(t *testing.T) {
	t.Parallel()
	open := setup(t, "")
	auth, _ := openIncident(t, open)
	if code, _ := open.do("POST", "/v1/alerts/"+auth+"/ack", ""); code != http.StatusForbidden {
		t.Fatalf("ack without a configured token = %d, want 403", code)
	}

	c := setup(t, "s3cret-token")
	auth, _ = openIncident(t, c)
	anon := c
	anon.token = ""
	if code, _ := anon.do("POST", "/v1/alerts/"+auth+"/resolve", ""); code != http.StatusUnauthorized {
		t.Fatalf("resolve without the token = %d, want 401", code)
	}
	// Who acknowledged is the token's name (REBOUND_API_TOKEN's is "default"), whatever
	// the caller says in by=.
	code, body := c.do("POST", "/v1/alerts/"+auth+"/ack?by=alice", "")
	if inc, _ := body["alert"].(map[string]any); code != http.StatusOK || body["changed"] != true || inc["acked_by"] != "default" {
		t.Fatalf("ack = %d %v", code, body)
	}
	if _, body := c.do("POST", "/v1/alerts/"+auth+"/ack", ""); body["changed"] != false {
		t.Errorf("second ack changed it again: %v", body)
	}
	if code, _ := c.do("POST", "/v1/alerts/"+auth+"/resolve?reason=a%0Ab", ""); code != http.StatusBadRequest {
		t.Errorf("resolve with a line break in the reason = %d, want 400", code)
	}
	code, body = c.do("POST", "/v1/alerts/"+auth+"/resolve?reason=fixed+the+SMTP+password", "")
	if inc, _ := body["alert"].(map[string]any); code != http.StatusOK || inc["state"] != "resolved" || inc["resolved_by"] != "default" {
		t.Fatalf("resolve = %d %v", code, body)
	}
	if code, _ := c.do("POST", "/v1/alerts/0123456789abcdef01234567/resolve", ""); code != http.StatusNotFound {
		t.Errorf("resolve of an unknown incident = %d, want 404", code)
	}
	// The transitions went to the outbox: trigger, ack, resolve.
	_, inc := c.do("GET", "/v1/alerts/"+auth, "")
	if tr, _ := inc["transitions"].([]any); len(tr) != 3 || tr[1].(map[string]any)["kind"] != "ack" || tr[2].(map[string]any)["kind"] != "resolve" {
		t.Errorf("transitions = %v, want trigger, ack, resolve", inc["transitions"])
	}
}
