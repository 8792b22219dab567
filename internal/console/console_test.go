package console

import (
	"bytes"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/reboundhq/rebound/internal/api"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/policy"
)

const (
	readSecret  = "unit-read-secret-0123456789abcdef"
	writeSecret = "unit-write-secret-0123456789abcdef"
)

// unitConsole serves a console without stores: these tests stop before any state is
// read or changed (sign-in, the CSRF and scope checks).
func unitConsole(t *testing.T) (*httptest.Server, *bytes.Buffer) {
	t.Helper()
	var logBuf bytes.Buffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logBuf), zap.DebugLevel))
	return serve(t, Config{Log: log, Tokens: unitTokens}), &logBuf
}

// unitTokens are a read and a write token.
var unitTokens = []api.Token{
	{Name: "support", Secret: readSecret, Scope: api.ScopeRead},
	{Name: "ops", Secret: writeSecret, Scope: api.ScopeWrite},
}

// serve builds a console from cfg and serves it until the test ends.
func serve(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// client follows no redirect, so each answer can be looked at.
func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn signs c in with secret and returns the session's CSRF value (from a page).
func signIn(t *testing.T, srv *httptest.Server, c *http.Client, secret string) string {
	t.Helper()
	_, body := get(t, c, srv.URL+"/ui/signin")
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("sign-in form without a CSRF field: %s", body)
	}
	resp, _ := post(t, c, srv.URL+"/ui/signin", url.Values{"csrf": {m[1]}, "token": {secret}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/incidents" {
		t.Fatalf("sign-in = %d to %q, want 303 to /ui/incidents", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Any page shows the sign-out form with the session's CSRF value; the catalog
	// page needs no store.
	_, body = get(t, c, srv.URL+"/ui/catalog")
	m = csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("page without the session's CSRF field: %s", body)
	}
	return m[1]
}

func TestSecurityHeadersOnEveryPage(t *testing.T) {
	t.Parallel()
	srv, _ := unitConsole(t)
	c := client(t)
	for _, path := range []string{"/ui/signin", "/ui/static/style.css", "/ui/nope", "/ui/incidents"} {
		resp, _ := get(t, c, srv.URL+path)
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "script-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q allows inline code", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: missing nosniff or X-Frame-Options", path)
		}
	}
	if resp, _ := get(t, c, srv.URL+"/ui/static/"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("static directory = %d, want 404 (files only, no listing)", resp.StatusCode)
	}
	// Behind a TLS-terminating proxy the cookies are Secure.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ui/signin", nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sc := resp.Header.Get("Set-Cookie"); !strings.Contains(sc, "; Secure") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Errorf("cookie behind https = %q, want Secure, HttpOnly, SameSite=Strict", sc)
	}
	// Without a session a page sends the browser to the sign-in form.
	if resp, _ := get(t, c, srv.URL+"/ui/incidents"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/signin" {
		t.Errorf("incidents without a session = %d to %q, want 303 to /ui/signin", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestTokenNeverInURLCookieOrLog(t *testing.T) {
	t.Parallel()
	srv, logBuf := unitConsole(t)
	c := client(t)
	csrf := signIn(t, srv, c, writeSecret)
	u, _ := url.Parse(srv.URL + "/ui/")
	for _, ck := range c.Jar.Cookies(u) {
		if strings.Contains(ck.Value, writeSecret) {
			t.Errorf("cookie %s holds the token", ck.Name)
		}
	}
	// A wrong token is refused without being echoed or logged.
	bad := client(t)
	_, body := get(t, bad, srv.URL+"/ui/signin")
	m := csrfField.FindStringSubmatch(body)
	resp, body := post(t, bad, srv.URL+"/ui/signin", url.Values{"csrf": {m[1]}, "token": {"wrong-" + readSecret}})
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, readSecret) {
		t.Errorf("wrong token = %d (want 401), page echoes it: %v", resp.StatusCode, strings.Contains(body, readSecret))
	}
	resp, _ = post(t, c, srv.URL+"/ui/signout", url.Values{"csrf": {csrf}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || strings.Contains(loc, writeSecret) {
		t.Errorf("sign-out = %d to %q", resp.StatusCode, loc)
	}
	if resp, _ := get(t, c, srv.URL+"/ui/catalog"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after sign-out a page = %d, want 303 to the sign-in form", resp.StatusCode)
	}
	logs := logBuf.String()
	if !strings.Contains(logs, `"actor":"ops"`) {
		t.Fatalf("the sign-in is not logged under the token's name: %s", logs)
	}
	if strings.Contains(logs, writeSecret) || strings.Contains(logs, readSecret) {
		t.Errorf("a token is in the log: %s", logs)
	}
}

func TestWriteNeedsWriteScopeAndCSRF(t *testing.T) {
	t.Parallel()
	srv, _ := unitConsole(t)
	reader := client(t)
	csrf := signIn(t, srv, reader, readSecret)
	if _, body := get(t, reader, srv.URL+"/ui/catalog"); !strings.Contains(body, "scope <strong class=\"scope\">read</strong>") {
		t.Errorf("the page does not say the session's scope is read")
	}
	lift := url.Values{"csrf": {csrf}, "address": {"a@example.com"}, "reason": {"asked by the customer"}}
	if resp, body := post(t, reader, srv.URL+"/ui/recipient/lift", lift); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "needs a token with scope write") {
		t.Errorf("lift with a read token = %d, want 403 naming the scope", resp.StatusCode)
	}
	if resp, _ := post(t, reader, srv.URL+"/ui/incidents/0123456789abcdef01234567/resolve", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("resolve with a read token = %d, want 403", resp.StatusCode)
	}

	writer := client(t)
	wcsrf := signIn(t, srv, writer, writeSecret)
	for name, form := range map[string]url.Values{
		"no CSRF value":           {"address": {"a@example.com"}, "reason": {"r"}},
		"another session's value": {"csrf": {csrf}, "address": {"a@example.com"}, "reason": {"r"}},
		"a wrong value":           {"csrf": {strings.Repeat("0", len(wcsrf))}, "address": {"a@example.com"}, "reason": {"r"}},
	} {
		if resp, _ := post(t, writer, srv.URL+"/ui/recipient/lift", form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("lift with %s = %d, want 403", name, resp.StatusCode)
		}
	}
	// The sign-in form is protected too (double submit: cookie and field).
	fresh := client(t)
	if resp, _ := post(t, fresh, srv.URL+"/ui/signin", url.Values{"token": {writeSecret}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without the form's CSRF value = %d, want 403", resp.StatusCode)
	}
	// A write session without the reason gets a 400 before any state is touched.
	if resp, _ := post(t, writer, srv.URL+"/ui/recipient/lift", url.Values{"csrf": {wcsrf}, "address": {"a@example.com"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("lift without a reason = %d, want 400", resp.StatusCode)
	}
}

func TestHeldReleaseNeedsWriteScope(t *testing.T) {
	t.Parallel()
	srv, _ := unitConsole(t)
	reader := client(t)
	csrf := signIn(t, srv, reader, readSecret)
	for _, verb := range []string{"apply", "discard"} {
		if resp, _ := post(t, reader, srv.URL+"/ui/mass-bounce/example.com/"+verb, url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s with a read token = %d, want 403", verb, resp.StatusCode)
		}
	}
}

func TestCatalogPageByCodeAndByReply(t *testing.T) {
	t.Parallel()
	cat, err := catalog.Load("")
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.NewHolder("", cat)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Catalog: cat, Policy: pol.Get, Tokens: []api.Token{{Name: "support", Secret: readSecret, Scope: api.ScopeRead}}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cl := client(t)
	signIn(t, srv, cl, readSecret)
	for q, want := range map[string][]string{
		"530":   {"Catalog entry 530", "Fix steps", "auth"},
		"5.1.1": {"Catalog entry 5.1.1", "recipient_unknown"},
		"550 5.1.1 <x@example.com>: Recipient address rejected: User unknown": {"recipient_unknown", "Deciding rule", "suppress"},
	} {
		resp, body := get(t, cl, srv.URL+"/ui/catalog?"+url.Values{"q": {q}}.Encode())
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%q: %d", q, resp.StatusCode)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("catalog page for %q lacks %q", q, w)
			}
		}
	}
}
