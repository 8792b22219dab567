package ingesttest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/policy"
)

// Env is an adapter environment read from vars instead of the process, on the real
// clock. A nil map is an empty environment.
func Env(vars map[string]string) ingest.Env {
	return ingest.Env{Getenv: func(k string) string { return vars[k] }, Now: time.Now}
}

// EnvAt is Env on a clock stopped at now, for adapters that check signed timestamps.
func EnvAt(vars map[string]string, now time.Time) ingest.Env {
	env := Env(vars)
	env.Now = func() time.Time { return now }
	return env
}

// At parses an RFC 3339 time for a table of expectations; a bad literal panics.
func At(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// With returns a copy of base with extra's settings added or overriding.
func With(base, extra map[string]string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, extra)
	return out
}

// New builds an adapter with its package's factory and returns it as the concrete type
// A (the package's *Adapter); a factory error fails the test.
func New[A ingest.Adapter](t testing.TB, f ingest.Factory, env ingest.Env) A {
	t.Helper()
	a, err := f(env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a.(A)
}

// Fixture returns testdata/<name> of the package under test.
func Fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

// Fixtures returns the named fixtures, or every file in testdata when none is named
// (fuzz seeds).
func Fixtures(t testing.TB, names ...string) [][]byte {
	t.Helper()
	if len(names) == 0 {
		entries, err := os.ReadDir("testdata")
		if err != nil {
			t.Fatalf("fixtures: %v", err)
		}
		for _, e := range entries {
			if !e.IsDir() {
				names = append(names, e.Name())
			}
		}
	}
	out := make([][]byte, 0, len(names))
	for _, n := range names {
		out = append(out, Fixture(t, n))
	}
	return out
}

// Basic is the Authorization value of HTTP basic auth for "user:password".
func Basic(userPass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
}

// Request is a webhook request for esp carrying an Authorization header ("" for none).
func Request(esp, auth string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/"+esp, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	return r
}

// AssertEvent reports every field of got that differs from want, by name, so a
// failure says which mapping is wrong; for ESPVerdict it names the labels that differ.
func AssertEvent(t testing.TB, got, want events.Event) {
	t.Helper()
	assertEvent(t, "", got, want)
}

// AssertEvents is AssertEvent for a list: the lengths must match, then each event.
func AssertEvents(t testing.TB, got, want []events.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d:\n%s", len(got), len(want), summary(got))
	}
	for i := range want {
		assertEvent(t, fmt.Sprintf("event %d: ", i), got[i], want[i])
	}
}

func assertEvent(t testing.TB, prefix string, got, want events.Event) {
	t.Helper()
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		gf, wf := g.Field(i).Interface(), w.Field(i).Interface()
		if reflect.DeepEqual(gf, wf) {
			continue
		}
		name := g.Type().Field(i).Name
		if gm, ok := gf.(map[string]string); ok {
			t.Errorf("%s%s differs: %s", prefix, name, mapDiff(gm, wf.(map[string]string)))
			continue
		}
		t.Errorf("%s%s = %#v, want %#v", prefix, name, gf, wf)
	}
}

// mapDiff lists the keys of got and want whose values differ, in key order.
func mapDiff(got, want map[string]string) string {
	keys := slices.Sorted(maps.Keys(With(got, want)))
	var b strings.Builder
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case gok && !wok:
			fmt.Fprintf(&b, "\n\t+ %s: %q (not wanted)", k, g)
		case !gok && wok:
			fmt.Fprintf(&b, "\n\t- %s: %q (missing)", k, w)
		case g != w:
			fmt.Fprintf(&b, "\n\t~ %s: %q, want %q", k, g, w)
		}
	}
	if got == nil || want == nil {
		fmt.Fprintf(&b, "\n\tgot %#v, want %#v", got, want)
	}
	return b.String()
}

func summary(evs []events.Event) string {
	var b strings.Builder
	for i, e := range evs {
		fmt.Fprintf(&b, "\t%d: %s %s %s %q\n", i, e.ID, e.Type, e.Recipient, e.Reply.String())
	}
	return b.String()
}

// Want is what one body should parse into.
type Want struct {
	// Events are compared field by field, in order. Left nil, only their number is
	// checked: NEvents.
	Events  []events.Event
	NEvents int
	Actions []policy.Action // the default policy's action for each event; nil: not checked
	Ignored int
	Rejects int
	// RejectIndexes are the items' indexes the rejects must carry, in order; nil: any.
	RejectIndexes []int
	// RejectReason must appear in the first reject's reason; "": any.
	RejectReason string
	// Unreadable: the body as a whole cannot be read, so Parse errs, and never with
	// ErrBadRequest (the handler keeps the body and answers 200).
	Unreadable bool
}

// AssertBatch checks Parse's result against want. Every reject must carry its raw
// bytes, its index and a reason, to be dead-lettered.
func AssertBatch(t *testing.T, got ingest.Batch, err error, want Want) {
	t.Helper()
	if want.Unreadable {
		AssertUnreadable(t, err)
		return
	}
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got.Ignored != want.Ignored || len(got.Rejects) != want.Rejects {
		t.Errorf("ignored %d, rejects %+v; want %d ignored and %d rejects", got.Ignored, got.Rejects, want.Ignored, want.Rejects)
	}
	for i, r := range got.Rejects {
		if len(r.Raw) == 0 || r.Reason == "" || r.Index < 0 {
			t.Errorf("reject %d = %+v lacks raw bytes, index or reason", i, r)
		}
		if want.RejectIndexes != nil && i < len(want.RejectIndexes) && r.Index != want.RejectIndexes[i] {
			t.Errorf("reject %d has index %d, want %d", i, r.Index, want.RejectIndexes[i])
		}
	}
	if want.RejectReason != "" && len(got.Rejects) > 0 && !strings.Contains(got.Rejects[0].Reason, want.RejectReason) {
		t.Errorf("first reject's reason %q does not mention %q", got.Rejects[0].Reason, want.RejectReason)
	}
	if want.Events == nil {
		if len(got.Events) != want.NEvents {
			t.Fatalf("%d events, want %d:\n%s", len(got.Events), want.NEvents, summary(got.Events))
		}
	} else {
		AssertEvents(t, got.Events, want.Events)
	}
	for i := range want.Actions {
		if a := Decide(t, &got.Events[i]); a != want.Actions[i] {
			t.Errorf("event %d: policy action %q for reply %q, want %q", i, a, got.Events[i].Reply.String(), want.Actions[i])
		}
	}
}

// AssertUnreadable checks Parse's error for a body that cannot be read at all: there
// must be one, and not ErrBadRequest, so the handler dead-letters the body whole.
func AssertUnreadable(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("Parse = nil error, want one")
	}
	if errors.Is(err, ingest.ErrBadRequest) {
		t.Fatalf("Parse = %v: must not be ErrBadRequest (the handler keeps the body and answers 200)", err)
	}
}

var defaultCatalog = sync.OnceValues(catalog.Default)

// Catalog is the embedded default catalog, loaded once per test binary.
func Catalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	cat, err := defaultCatalog()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// Decide is what the default catalog and policy do with the event, the way the process
// stage does it: the end-to-end meaning of a mapping or a stand-in reply.
func Decide(t testing.TB, ev *events.Event) policy.Action {
	t.Helper()
	return Decision(t, ev).Action
}

// Decision is the default policy's whole decision on an event (its scope too), with
// the classification its reply gets from the built-in catalog.
func Decision(t testing.TB, ev *events.Event) policy.Decision {
	t.Helper()
	return policy.Default().Decide(ev, classify(t, ev))
}

// classify is the built-in catalog's reading of the event's reply, with the hints the
// process stage gives it.
func classify(t testing.TB, ev *events.Event) catalog.Classification {
	t.Helper()
	return Catalog(t).Classify(ev.Reply.String(), catalog.EventHints(ev))
}

// AssertTenantOptOut checks that the default catalog and policy read ev as the
// recipient's opt-out from this sender: suppressed for the event's tenant only, as
// recipient_opted_out, and never held by the mass-bounce guard (the ESP's list, not a
// receiving domain, speaks).
func AssertTenantOptOut(t testing.TB, ev *events.Event) {
	t.Helper()
	cl := classify(t, ev)
	d := policy.Default().Decide(ev, cl)
	if cl.Class != catalog.ClassRecipientOptedOut || d.Action != policy.ActionSuppress || d.Global {
		t.Errorf("%q: class %s → %s (global %v), want recipient_opted_out suppressed for the tenant", ev.Reply.Text, cl.Class, d.Action, d.Global)
	}
	if ev.Type != events.TypeDropped || !ev.ProviderSuppressed {
		t.Errorf("type %s, provider_suppressed %v: want a drop from the ESP's list (never counted by the guard)", ev.Type, ev.ProviderSuppressed)
	}
}

// AssertOptOuts checks a Parse result that must hold n events, each the recipient's
// opt-out from this sender (AssertTenantOptOut).
func AssertOptOuts(t testing.TB, b ingest.Batch, err error, n int) {
	t.Helper()
	if err != nil || len(b.Events) != n {
		t.Fatalf("Parse = %+v, %v; want %d events", b, err, n)
	}
	for i := range b.Events {
		AssertTenantOptOut(t, &b.Events[i])
	}
}

// AssertAuth checks an Authenticate result: nil when ok, otherwise an error wrapping
// ErrUnauthenticated; either way none of secrets may appear in it (it is logged).
func AssertAuth(t testing.TB, err error, ok bool, secrets ...string) {
	t.Helper()
	switch {
	case ok && err != nil:
		t.Fatalf("Authenticate = %v, want nil", err)
	case !ok && !errors.Is(err, ingest.ErrUnauthenticated):
		t.Fatalf("Authenticate = %v, want it to wrap ErrUnauthenticated", err)
	}
	for _, s := range secrets {
		if err != nil && s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error %q leaks a secret", err)
		}
	}
}

// VerifyRule checks one adapter against the rule every ESP shares (ingest.Verifier),
// in Authenticate and, where the adapter has one, in AuthenticateHeaders:
//   - no secret: every request is refused, with an error naming setting;
//   - no secret and REBOUND_<ESP>_INSECURE_SKIP_VERIFY=true: accepted unchecked;
//   - secret: a request without valid credentials is refused;
//   - secret and the opt-out: still refused, and a warning says the opt-out is ignored.
//
// configured are the settings that give the adapter a usable secret; forged builds a
// request and body that carry no valid credentials.
func VerifyRule(t *testing.T, f ingest.Factory, setting string, configured map[string]string, forged func(t testing.TB) (*http.Request, []byte)) {
	t.Helper()
	esp := mustBuild(t, f, Env(nil), nil).ESP()
	optOut := map[string]string{"REBOUND_" + strings.ToUpper(esp) + "_INSECURE_SKIP_VERIFY": "true"}
	tests := []struct {
		name     string
		vars     map[string]string
		ok       bool
		wantWarn string
	}{
		{name: "not configured"},
		{name: "not configured, opt-out", vars: optOut, ok: true, wantWarn: "turned off"},
		{name: "configured", vars: configured},
		{name: "configured, opt-out ignored", vars: With(configured, optOut), wantWarn: "opt-out ignored"},
	}
	for _, tt := range tests {
		t.Run("verify rule/"+tt.name, func(t *testing.T) {
			t.Parallel()
			core, logs := observer.New(zap.WarnLevel)
			env := Env(tt.vars)
			a := mustBuild(t, f, env, zap.New(core))
			r, body := forged(t)
			err := a.Authenticate(r, body)
			AssertAuth(t, err, tt.ok, slices.Collect(maps.Values(configured))...)
			if tt.vars == nil && (err == nil || !strings.Contains(err.Error(), setting)) {
				t.Errorf("disabled error %v does not name %s", err, setting)
			}
			// The check made before the body is read follows the same rule: a disabled
			// endpoint refuses there already, an opted-out one lets the request on.
			if ha, ok := a.(ingest.HeaderAuthenticator); ok && (tt.vars == nil || tt.ok) {
				herr := ha.AuthenticateHeaders(r)
				AssertAuth(t, herr, tt.ok, slices.Collect(maps.Values(configured))...)
				if tt.vars == nil && (herr == nil || !strings.Contains(herr.Error(), setting)) {
					t.Errorf("disabled AuthenticateHeaders error %v does not name %s", herr, setting)
				}
			}
			warns := logs.All()
			switch {
			case tt.wantWarn == "" && len(warns) > 0:
				t.Errorf("unexpected warning %q", warns[0].Message)
			case tt.wantWarn != "" && (len(warns) != 1 || !strings.Contains(warns[0].Message, tt.wantWarn)):
				t.Errorf("warnings %v, want one containing %q", warns, tt.wantWarn)
			}
		})
	}
}

func mustBuild(t testing.TB, f ingest.Factory, env ingest.Env, log *zap.Logger) ingest.Adapter {
	t.Helper()
	env.Log = log
	a, err := f(env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// FuzzParse fuzzes a's Parse from seeds: it must never panic, and every event it
// returns must be its ESP's and pass Normalize again.
func FuzzParse(f *testing.F, a ingest.Adapter, seeds ...[]byte) {
	fuzzParse(f, a, false, seeds)
}

// FuzzParseOne is FuzzParse for an ESP that posts one item per request: every body
// that parses is exactly one event, reject or ignored item.
func FuzzParseOne(f *testing.F, a ingest.Adapter, seeds ...[]byte) {
	fuzzParse(f, a, true, seeds)
}

func fuzzParse(f *testing.F, a ingest.Adapter, one bool, seeds [][]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	esp := a.ESP()
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := a.Parse(body)
		if err != nil {
			return
		}
		if one && len(b.Events)+len(b.Rejects)+b.Ignored != 1 {
			t.Fatalf("one item per request, got %+v", b)
		}
		for i := range b.Events {
			e := b.Events[i]
			if err := e.Normalize(); err != nil {
				t.Fatalf("event %d %+v fails Normalize again: %v", i, e, err)
			}
			if e.ESP != esp || !strings.HasPrefix(e.ID, esp+":") {
				t.Fatalf("event %d %+v is not a %s event", i, e, esp)
			}
		}
	})
}

// BenchIngest measures what the handler does per request: Authenticate, then Parse
// into wantEvents events. r and body are reused, so it suits ESPs without a one-time
// token in the request.
func BenchIngest(b *testing.B, a ingest.Adapter, r *http.Request, body []byte, wantEvents int) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Authenticate(r, body); err != nil {
			b.Fatal(err)
		}
		if got, err := a.Parse(body); err != nil || len(got.Events) != wantEvents {
			b.Fatal(got, err)
		}
	}
}
