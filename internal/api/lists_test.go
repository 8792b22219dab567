package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/reboundhq/rebound/internal/suppress"
)

// GET /v1/suppressions walks with next_cursor until it is absent, filters by class and
// reason, and refuses the old offset and a forged cursor.
func TestListSuppressionsCursor(t *testing.T) {
	t.Parallel()
	c := setup(t, "admin-token")
	var cs []suppress.Change
	for i := range 250 {
		ch := suppress.Change{EventID: fmt.Sprintf("e%d", i), ESP: "generic", Tenant: "acme", Address: fmt.Sprintf("u%03d@example.com", i),
			Action: suppress.ActionSuppress, Reason: "recipient_unknown", Class: "recipient_unknown"}
		if i%5 == 0 {
			ch.Reason, ch.Class = "complaint", "complaint"
		}
		cs = append(cs, ch)
	}
	if _, err := c.store.Apply(context.Background(), cs); err != nil {
		t.Fatal(err)
	}
	walk := func(query string) map[string]int {
		seen := map[string]int{}
		cursor := ""
		for pages := 0; pages < 1000; pages++ {
			path := "/v1/suppressions?tenant=acme&limit=40" + query
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			code, body := c.do("GET", path, "")
			if code != http.StatusOK {
				t.Fatalf("GET %s = %d %v", path, code, body)
			}
			for _, r := range body["suppressions"].([]any) {
				seen[r.(map[string]any)["address"].(string)]++
			}
			next, ok := body["next_cursor"].(string)
			if !ok {
				return seen
			}
			cursor = next
		}
		t.Fatal("the walk does not end")
		return nil
	}
	if got := walk(""); len(got) != 250 {
		t.Fatalf("listed %d distinct addresses, want 250", len(got))
	}
	if got := walk("&class=complaint"); len(got) != 50 {
		t.Fatalf("class=complaint listed %d, want 50", len(got))
	}
	if got := walk("&reason=recipient_unknown&since=2000-01-01T00:00:00Z"); len(got) != 200 {
		t.Fatalf("reason=recipient_unknown listed %d, want 200", len(got))
	}
	for _, bad := range []string{"offset=10", "cursor=forged", "since=yesterday", "limit=0"} {
		code, body := c.do("GET", "/v1/suppressions?tenant=acme&"+bad, "")
		msg, _ := body["error"].(map[string]any)["message"].(string)
		if code != http.StatusBadRequest || !strings.Contains(msg, strings.Split(bad, "=")[0]) {
			t.Fatalf("%s: %d %v, want 400 naming the parameter", bad, code, body)
		}
	}
}
