// Package console is the operator console: server-rendered pages under /ui/ on the
// admin listener, for the on-call engineer (open sender-side incidents, their fix
// steps) and the support agent (why is this recipient suppressed, lift it). It signs in
// with the same tokens and scopes as /v1 (api.Authenticate) and makes its changes with
// the same store calls as the API, audited under the token's name.
//
// Everything the pages need is embedded (embed.FS); the Content-Security-Policy allows
// nothing but this origin, no inline script, and no framing.
package console

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/api"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
)

//go:embed templates/*.html static/*
var assets embed.FS

// ContentSecurityPolicy is sent with every /ui/ response: only this origin, no inline
// script or style, no plugins, no framing, forms post only here.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Config is what the console reads and changes: the api role's stores.
type Config struct {
	Store   *suppress.Store
	Alerts  *alert.Store
	Guard   *guard.Guard
	Catalog *catalog.Catalog
	Policy  func() *policy.Policy
	Metrics *metrics.Metrics // optional
	Log     *zap.Logger
	// Tokens are the API's tokens (app.APITokens): the console accepts the same ones.
	Tokens []api.Token
	// SessionTTL is how long a sign-in lasts (default 8 h).
	SessionTTL time.Duration
	Now        func() time.Time
}

// Console serves /ui/.
type Console struct {
	cfg      Config
	sessions sessionStore
	pages    map[string]*template.Template
}

// New builds the console; its templates are parsed once, here.
func New(cfg Config) (*Console, error) {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	c := &Console{cfg: cfg, pages: map[string]*template.Template{}}
	if cfg.Store != nil {
		c.sessions = &redisSessions{rdb: cfg.Store.Redis(), prefix: cfg.Store.Keys().Prefix(), ttl: cfg.SessionTTL, now: cfg.Now}
	} else {
		c.sessions = newMemorySessions(cfg.SessionTTL, 10000, cfg.Now)
	}
	for _, p := range []string{"signin", "overview", "incidents", "recipient", "catalog", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, err
		}
		c.pages[p] = t
	}
	return c, nil
}

// Register adds the console's routes under /ui/ to mux.
func (c *Console) Register(mux *http.ServeMux) {
	static, _ := fs.Sub(assets, "static")
	fileServer := http.StripPrefix("/ui/static/", http.FileServerFS(static))
	files := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // files only, no listing
			c.notFound(w, r)
			return
		}
		fileServer.ServeHTTP(w, r)
	})
	routes := map[string]http.Handler{
		"GET /ui/static/":                       files,
		"GET /ui/{$}":                           http.RedirectHandler("/ui/incidents", http.StatusSeeOther),
		"GET /ui/signin":                        http.HandlerFunc(c.signinForm),
		"POST /ui/signin":                       http.HandlerFunc(c.signin),
		"POST /ui/signout":                      c.change(api.ScopeRead, c.signout),
		"GET /ui/incidents":                     c.view(c.incidents),
		"POST /ui/incidents/{id}/ack":           c.change(api.ScopeWrite, c.changeIncident("ack")),
		"POST /ui/incidents/{id}/resolve":       c.change(api.ScopeWrite, c.changeIncident("resolve")),
		"GET /ui/recipient":                     c.view(c.recipient),
		"POST /ui/recipient/lift":               c.change(api.ScopeWrite, c.lift),
		"GET /ui/catalog":                       c.view(c.catalogPage),
		"GET /ui/overview":                      c.view(c.overview),
		"POST /ui/mass-bounce/{domain}/apply":   c.change(api.ScopeWrite, c.releaseHeld(true)),
		"POST /ui/mass-bounce/{domain}/discard": c.change(api.ScopeWrite, c.releaseHeld(false)),
		"/ui/":                                  http.HandlerFunc(c.notFound),
	}
	for pattern, h := range routes {
		mux.Handle(pattern, securityHeaders(h))
	}
}

// securityHeaders sets what every console response carries.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", ContentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
			hd.Set("Cache-Control", "no-store") // pages name recipients
		}
		h.ServeHTTP(w, r)
	})
}

// pageData is what every page template gets; Page holds the page's own data.
type pageData struct {
	Title   string
	Nav     string
	Session *session
	Flash   string
	Error   string
	Page    any
}

// render executes a page into a buffer first, so a template error is a clean 500.
func (c *Console) render(w http.ResponseWriter, status int, name string, d pageData) {
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, d); err != nil {
		c.cfg.Log.Error("console: render", zap.String("page", name), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (c *Console) fail(w http.ResponseWriter, s *session, status int, msg string) {
	c.render(w, status, "error", pageData{Title: http.StatusText(status), Session: s, Error: msg})
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.fail(w, c.current(r), http.StatusNotFound, "No such page: "+r.URL.Path)
}

// current is the request's live session, or nil. A session whose token is no longer
// configured with at least the session's scope has ended: revoking or narrowing a
// token signs its browsers out, on every replica.
func (c *Console) current(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	s, err := c.sessions.get(r.Context(), ck.Value)
	if err != nil {
		c.cfg.Log.Warn("console: session not read; the browser is asked to sign in", zap.Error(err))
		return nil
	}
	if s == nil || !c.tokenStill(s) {
		return nil
	}
	return s
}

// tokenStill says whether the token a session was signed in with is still configured
// with at least the session's scope.
func (c *Console) tokenStill(s *session) bool {
	for _, t := range c.cfg.Tokens {
		if t.Name == s.Actor {
			return t.Scope >= s.Scope
		}
	}
	return false
}

// view serves a page to any signed-in session; without one it sends the browser to
// the sign-in form.
func (c *Console) view(h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.current(r)
		if s == nil {
			http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
			return
		}
		h(w, r, s)
	})
}

// change admits a form POST from a signed-in session whose form carries the session's
// CSRF value and whose token has at least scope.
func (c *Console) change(scope api.Scope, h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		s := c.current(r)
		if s == nil {
			c.fail(w, nil, http.StatusUnauthorized, "Your session has ended: sign in again.")
			return
		}
		if !sameSecret(r.PostFormValue("csrf"), s.CSRF) {
			c.cfg.Log.Debug("console: form refused (CSRF value missing or wrong)", zap.String("actor", s.Actor), zap.String("path", r.URL.Path))
			c.fail(w, s, http.StatusForbidden, "This form is out of date or did not come from this console. Reload the page and try again.")
			return
		}
		if s.Scope < scope {
			c.cfg.Log.Debug("console: change refused (scope)", zap.String("actor", s.Actor), zap.String("have", s.Scope.String()),
				zap.String("need", scope.String()), zap.String("path", r.URL.Path))
			c.fail(w, s, http.StatusForbidden, "Your token "+s.Actor+" has scope "+s.Scope.String()+"; this needs a token with scope "+scope.String()+".")
			return
		}
		h(w, r.WithContext(api.WithActor(r.Context(), s.Actor)), s)
	})
}

type signinPage struct {
	CSRF     string
	NoTokens bool
}

func (c *Console) signinForm(w http.ResponseWriter, r *http.Request) {
	if c.current(r) != nil {
		http.Redirect(w, r, "/ui/incidents", http.StatusSeeOther)
		return
	}
	c.renderSignin(w, r, http.StatusOK, "")
}

func (c *Console) renderSignin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	v := randomHex(16)
	setCookie(w, r, loginCookie, v, 600)
	c.render(w, status, "signin", pageData{Title: "Sign in", Error: msg, Page: signinPage{CSRF: v, NoTokens: len(c.cfg.Tokens) == 0}})
}

// signin checks the token from the form (a POST body: never in a URL) and starts a
// session holding the token's name and scope.
func (c *Console) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	ck, err := r.Cookie(loginCookie)
	if err != nil || !sameSecret(r.PostFormValue("csrf"), ck.Value) {
		c.renderSignin(w, r, http.StatusForbidden, "The sign-in form expired or did not come from this console; try again.")
		return
	}
	name, scope, ok := api.Authenticate(c.cfg.Tokens, strings.TrimSpace(r.PostFormValue("token")))
	if !ok {
		c.cfg.Log.Debug("console: sign-in refused (no such token)")
		c.renderSignin(w, r, http.StatusUnauthorized, "That token matches no configured API token.")
		return
	}
	if old, err := r.Cookie(sessionCookie); err == nil { // a new sign-in replaces the old session
		if err := c.sessions.remove(r.Context(), old.Value); err != nil {
			c.cfg.Log.Warn("console: old session not ended", zap.Error(err))
		}
	}
	id, _, err := c.sessions.create(r.Context(), name, scope)
	if err != nil {
		c.cfg.Log.Error("console: sign-in failed", zap.String("actor", name), zap.Error(err))
		c.renderSignin(w, r, http.StatusServiceUnavailable, "The session could not be stored (Redis unavailable); try again in a moment.")
		return
	}
	setCookie(w, r, loginCookie, "", -1)
	setCookie(w, r, sessionCookie, id, int(c.cfg.SessionTTL.Seconds()))
	c.cfg.Log.Info("console sign-in", zap.String("actor", name), zap.String("scope", scope.String()))
	http.Redirect(w, r, "/ui/incidents", http.StatusSeeOther)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request, s *session) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if err := c.sessions.remove(r.Context(), ck.Value); err != nil {
			c.cfg.Log.Warn("console: session not ended in the store; it expires on its own", zap.String("actor", s.Actor), zap.Error(err))
		}
	}
	setCookie(w, r, sessionCookie, "", -1)
	c.cfg.Log.Info("console sign-out", zap.String("actor", s.Actor))
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
}

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"whenp": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"add": func(a, b float64) float64 { return a + b },
	"sub": func(a, b float64) float64 { return a - b },
	// dict passes several values to a sub-template: dict "K1" v1 "K2" v2.
	"dict": func(kv ...any) map[string]any {
		m := make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			k, _ := kv[i].(string)
			m[k] = kv[i+1]
		}
		return m
	},
}
