package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// raw sends a request with a body and returns the answer's status and body as they are.
func (c client) raw(method, path, body string) (int, string) {
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
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// POST /v1/suppressions/import takes an ESP's list and answers the summary; a second
// import is all duplicate; GET /v1/suppressions/export streams what an import into
// another tenant gives back the same, in both formats.
func TestImportExportOverHTTP(t *testing.T) {
	t.Parallel()
	c := setup(t, "admin-token")
	list := "address,code,error,created_at\n" +
		"gone.one@example.com,550,5.1.1 no such mailbox,\"Fri, 13 Mar 2026 10:02:55 UTC\"\n" +
		"gone.two@example.net,550,5.1.1 no such mailbox,\"Fri, 13 Mar 2026 10:03:55 UTC\"\n" +
		"auth.problem@example.com,535,5.7.8 authentication credentials invalid,\n" +
		"not-an-address,550,5.1.1 no such mailbox,\n"
	code, body := c.raw("POST", "/v1/suppressions/import?tenant=acme", list)
	var sum struct {
		Imported, Duplicate, Rejected int
		Rejections                    []struct {
			Line   int
			Reason string
		}
	}
	if code != http.StatusOK || json.Unmarshal([]byte(body), &sum) != nil || sum.Imported != 2 || sum.Rejected != 2 || len(sum.Rejections) != 2 ||
		sum.Rejections[0].Line != 4 || !strings.Contains(sum.Rejections[0].Reason, "auth_failed") || sum.Rejections[1].Line != 5 {
		t.Fatalf("import: %d %s", code, body)
	}
	code, body = c.raw("POST", "/v1/suppressions/import?tenant=acme&format=csv", list)
	if json.Unmarshal([]byte(body), &sum) != nil || code != http.StatusOK || sum.Imported != 0 || sum.Duplicate != 2 {
		t.Fatalf("second import: %d %s, want 2 duplicate", code, body)
	}
	for _, format := range []string{"ndjson", "csv"} {
		code, first := c.raw("GET", "/v1/suppressions/export?tenant=acme&format="+format, "")
		if code != http.StatusOK || !strings.Contains(first, "gone.two@example.net") {
			t.Fatalf("export %s: %d %s", format, code, first)
		}
		if code, body := c.raw("POST", "/v1/suppressions/import?tenant=copy-"+format, first); code != http.StatusOK || !strings.Contains(body, `"imported": 2`) {
			t.Fatalf("import of the %s export: %d %s", format, code, body)
		}
		if _, again := c.raw("GET", "/v1/suppressions/export?tenant=copy-"+format+"&format="+format, ""); again != first {
			t.Fatalf("%s round trip differs:\n%s\nvs\n%s", format, first, again)
		}
	}
	for _, bad := range []string{"/v1/suppressions/export?format=xml", "/v1/suppressions/export?tenant=a:b"} {
		if code, _ := c.raw("GET", bad, ""); code != http.StatusBadRequest {
			t.Fatalf("GET %s = %d, want 400", bad, code)
		}
	}
	code, body = c.raw("POST", "/v1/suppressions/import?format=json", `[{"email":"a@example.com"},{"email":`)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "unreadable_input") {
		t.Fatalf("broken document: %d %s, want 422 unreadable_input", code, body)
	}
}

// DELETE /v1/recipients/{address} removes the recipient's state; the answer says what
// went and whether a marker stays (not without an address hash key).
func TestEraseOverHTTP(t *testing.T) {
	t.Parallel()
	c := setup(t, "admin-token")
	if code, body := c.do("POST", "/v1/suppressions", `{"address":"erase.me@example.com","tenant":"acme","reason":"asked"}`); code != http.StatusCreated {
		t.Fatalf("add: %d %v", code, body)
	}
	code, body := c.do("DELETE", "/v1/recipients/erase.me@example.com?tenant=acme&reason=GDPR%20request%2042%20from%20erase.me%40example.com", "")
	if code != http.StatusOK || body["keys_deleted"].(float64) < 1 || body["marker"] != false || body["marker_skipped"] == nil {
		t.Fatalf("erase: %d %v", code, body)
	}
	if code, body := c.do("GET", "/v1/recipients/erase.me@example.com?tenant=acme", ""); code != http.StatusOK || body["suppression"] != nil || len(body["history"].([]any)) != 0 {
		t.Fatalf("after the erasure: %d %v", code, body)
	}
	if code, body := c.do("GET", "/v1/audit", ""); code != http.StatusOK || !strings.Contains(toString(body), "recipient.erase") || strings.Contains(toString(body), "erase.me") {
		t.Fatalf("audit after the erasure: %v (want the erasure, without the address)", body)
	}
}
