package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/reboundhq/rebound/internal/api"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// replica serves a console on the shared store, as one api replica would.
func replica(t *testing.T, store *suppress.Store, tokens []api.Token) *httptest.Server {
	t.Helper()
	return serve(t, Config{Store: store, Tokens: tokens})
}

// signedIn says whether the browser's session is live on srv: the sign-in form sends
// a signed-in browser on to its pages.
func signedIn(t *testing.T, srv *httptest.Server, c *http.Client) bool {
	t.Helper()
	resp, _ := get(t, c, srv.URL+"/ui/signin")
	return resp.StatusCode == http.StatusSeeOther
}

// TestSessionsAreSharedByReplicas: a session started on one api replica is live on
// every other and after a restart (they are kept in Redis), ends everywhere on sign-out,
// and ends when its token is no longer configured with its scope.
func TestSessionsAreSharedByReplicas(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	store := suppress.New(rdb, suppress.Options{Prefix: testsvc.Prefix(t, rdb)})
	tokens := unitTokens
	a, b := replica(t, store, tokens), replica(t, store, tokens)

	// The cookie jar ignores ports, as browsers do: one browser, two replicas.
	browser := client(t)
	csrf := signIn(t, a, browser, writeSecret)
	if !signedIn(t, b, browser) {
		t.Fatal("a session started on replica A is not live on replica B")
	}
	if restarted := replica(t, store, tokens); !signedIn(t, restarted, browser) {
		t.Fatal("a restarted replica signed the browser out")
	}
	// Narrowing the token (ops now read) ends its write session; removing it likewise.
	narrowed := replica(t, store, []api.Token{{Name: "ops", Secret: writeSecret, Scope: api.ScopeRead}})
	if signedIn(t, narrowed, browser) {
		t.Error("a replica where the token has a narrower scope kept the session")
	}
	if revoked := replica(t, store, tokens[:1]); signedIn(t, revoked, browser) {
		t.Error("a replica without the token kept the session")
	}

	// Redis holds the session under a hash of its ID: the cookie's value is nowhere.
	var id string
	u, _ := url.Parse(a.URL + "/ui/")
	for _, ck := range browser.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			id = ck.Value
		}
	}
	keys, err := rdb.Keys(context.Background(), store.Keys().Prefix()+"ui:session:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("session keys = %v, %v; want one", keys, err)
	}
	val, _ := rdb.Get(context.Background(), keys[0]).Result()
	if id == "" || strings.Contains(keys[0], id) || strings.Contains(val, id) {
		t.Fatalf("the session ID is stored in clear (key %s)", keys[0])
	}
	if ttl := rdb.PTTL(context.Background(), keys[0]).Val(); ttl <= 0 {
		t.Fatalf("session key TTL = %v, want it to expire", ttl)
	}

	// Signing out on B ends the session on A.
	if resp, _ := post(t, browser, b.URL+"/ui/signout", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out = %d, want 303", resp.StatusCode)
	}
	browser2 := client(t)
	browser2.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: id, Path: cookiePath}})
	if signedIn(t, a, browser2) {
		t.Error("the session signed out on B is still live on A")
	}
}
