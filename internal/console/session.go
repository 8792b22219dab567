package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/reboundhq/rebound/internal/api"
)

// Cookie names. Both are scoped to /ui/, HttpOnly and SameSite=Strict, and Secure when
// the request came over TLS.
const (
	sessionCookie = "rebound_ui_session"
	// loginCookie carries the sign-in form's CSRF value before there is a session
	// (double submit: the cookie and the hidden field must agree).
	loginCookie = "rebound_ui_login"
	cookiePath  = "/ui/"
)

// session is one signed-in browser. It holds the token's name and scope, never the
// token: the token is checked once at sign-in and forgotten.
type session struct {
	Actor   string
	Scope   api.Scope
	CSRF    string // the per-session value every POST form carries
	Expires time.Time
}

// CanWrite says whether the session may lift suppressions, ack or resolve incidents.
func (s *session) CanWrite() bool { return s.Scope >= api.ScopeWrite }

// sessions maps a random session ID (by its SHA-256, so the map holds nothing a
// cookie could be rebuilt from) to its session. They live in the process: each api
// replica has its own, and a restart signs everyone out.
type sessions struct {
	mu  sync.Mutex
	m   map[[32]byte]*session
	ttl time.Duration
	max int
	now func() time.Time
}

func newSessions(ttl time.Duration, max int, now func() time.Time) *sessions {
	return &sessions{m: map[[32]byte]*session{}, ttl: ttl, max: max, now: now}
}

// create starts a session and returns its ID (the cookie's value).
func (ss *sessions) create(actor string, scope api.Scope) (string, *session) {
	id := randomHex(32)
	s := &session{Actor: actor, Scope: scope, CSRF: randomHex(32), Expires: ss.now().Add(ss.ttl)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= ss.max {
		ss.pruneLocked()
	}
	if len(ss.m) >= ss.max { // still full of live sessions: the oldest-expiring goes
		var oldest [32]byte
		var at time.Time
		for k, v := range ss.m {
			if at.IsZero() || v.Expires.Before(at) {
				oldest, at = k, v.Expires
			}
		}
		delete(ss.m, oldest)
	}
	ss.m[sha256.Sum256([]byte(id))] = s
	return id, s
}

func (ss *sessions) pruneLocked() {
	now := ss.now()
	for k, v := range ss.m {
		if !now.Before(v.Expires) {
			delete(ss.m, k)
		}
	}
}

// get returns the live session of id, or nil.
func (ss *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	k := sha256.Sum256([]byte(id))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[k]
	if s == nil {
		return nil
	}
	if !ss.now().Before(s.Expires) {
		delete(ss.m, k)
		return nil
	}
	return s
}

func (ss *sessions) remove(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sha256.Sum256([]byte(id)))
}

// setCookie writes a console cookie; maxAge < 0 deletes it. It is Secure when the
// browser reached us over TLS: directly, or through a proxy that says so (a forged
// header only makes the caller's own cookie stricter).
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: cookiePath, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"),
	})
}

// sameSecret compares two CSRF values in constant time.
func sameSecret(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	ad, bd := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ad[:], bd[:]) == 1
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on a supported platform
	}
	return hex.EncodeToString(b)
}
