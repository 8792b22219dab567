package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

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

// sessionStore keeps the signed-in browsers. A session is found by the SHA-256 of its
// random ID, so the store holds nothing a cookie could be rebuilt from.
type sessionStore interface {
	// create starts a session and returns its ID (the cookie's value).
	create(ctx context.Context, actor string, scope api.Scope) (string, *session, error)
	// get returns the live session of id, or nil when there is none.
	get(ctx context.Context, id string) (*session, error)
	remove(ctx context.Context, id string) error
}

// redisSessions keeps sessions in Redis, beside the rest of Rebound's state: every api
// replica sees every session (no sticky load balancing needed) and a restart signs
// nobody out. Each is one string key expiring with the session.
type redisSessions struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	now    func() time.Time
}

func (rs *redisSessions) key(id string) string {
	k := sha256.Sum256([]byte(id))
	return rs.prefix + "ui:session:" + hex.EncodeToString(k[:])
}

func (rs *redisSessions) create(ctx context.Context, actor string, scope api.Scope) (string, *session, error) {
	id := randomHex(32)
	s := &session{Actor: actor, Scope: scope, CSRF: randomHex(32), Expires: rs.now().Add(rs.ttl)}
	b, err := json.Marshal(s)
	if err != nil {
		return "", nil, err
	}
	if err := rs.rdb.Set(ctx, rs.key(id), b, rs.ttl).Err(); err != nil {
		return "", nil, fmt.Errorf("store console session: %w", err)
	}
	return id, s, nil
}

func (rs *redisSessions) get(ctx context.Context, id string) (*session, error) {
	if id == "" {
		return nil, nil
	}
	b, err := rs.rdb.Get(ctx, rs.key(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read console session: %w", err)
	}
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read console session: %w", err)
	}
	if !rs.now().Before(s.Expires) { // the key's TTL and the clock disagree: the clock wins
		return nil, nil
	}
	return &s, nil
}

func (rs *redisSessions) remove(ctx context.Context, id string) error {
	if err := rs.rdb.Del(ctx, rs.key(id)).Err(); err != nil {
		return fmt.Errorf("end console session: %w", err)
	}
	return nil
}

// memorySessions keeps sessions in the process, for a console without a Redis store
// (unit tests). At most max live sessions: beyond that the oldest-expiring goes.
type memorySessions struct {
	mu  sync.Mutex
	m   map[[32]byte]*session
	ttl time.Duration
	max int
	now func() time.Time
}

func newMemorySessions(ttl time.Duration, max int, now func() time.Time) *memorySessions {
	return &memorySessions{m: map[[32]byte]*session{}, ttl: ttl, max: max, now: now}
}

func (ss *memorySessions) create(_ context.Context, actor string, scope api.Scope) (string, *session, error) {
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
	return id, s, nil
}

func (ss *memorySessions) pruneLocked() {
	now := ss.now()
	for k, v := range ss.m {
		if !now.Before(v.Expires) {
			delete(ss.m, k)
		}
	}
}

func (ss *memorySessions) get(_ context.Context, id string) (*session, error) {
	if id == "" {
		return nil, nil
	}
	k := sha256.Sum256([]byte(id))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[k]
	if s == nil {
		return nil, nil
	}
	if !ss.now().Before(s.Expires) {
		delete(ss.m, k)
		return nil, nil
	}
	return s, nil
}

func (ss *memorySessions) remove(_ context.Context, id string) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, sha256.Sum256([]byte(id)))
	return nil
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
