package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/reboundhq/rebound/internal/api"
)

// The contract tests hold the server to docs/openapi.yaml: every route registered is
// documented with its scope, nothing documented is missing, and every status any test
// of this package saw a route answer is declared for it (checked in TestMain, after
// all tests ran), with an error body of the documented shape.

// spec is the part of the OpenAPI document the tests read.
type spec struct {
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		Schemas struct {
			Error struct {
				Properties struct {
					Error struct {
						Properties struct {
							Code struct {
								Enum []string `yaml:"enum"`
							} `yaml:"code"`
						} `yaml:"properties"`
					} `yaml:"error"`
				} `yaml:"properties"`
			} `yaml:"Error"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

type operation struct {
	Scope     string               `yaml:"x-scope"`
	Responses map[string]yaml.Node `yaml:"responses"`
}

func loadSpec(t testing.TB) (spec, map[string]operation) {
	t.Helper()
	var s spec
	if err := yaml.Unmarshal(api.OpenAPI, &s); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	ops := map[string]operation{} // "GET /v1/…" → operation
	for path, item := range s.Paths {
		for method, node := range item {
			if method == "parameters" {
				continue
			}
			var op operation
			if err := node.Decode(&op); err != nil {
				t.Fatalf("openapi.yaml %s %s: %v", method, path, err)
			}
			ops[strings.ToUpper(method)+" "+path] = op
		}
	}
	return s, ops
}

func TestOpenAPICopyInDocsIsIdentical(t *testing.T) {
	t.Parallel()
	docs, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, api.OpenAPI) {
		t.Fatal("docs/openapi.yaml differs from internal/api/openapi.yaml (the one the binary serves): cp internal/api/openapi.yaml docs/")
	}
}

// TestEveryRouteIsDocumented walks the routes Register adds and the document's
// operations, both ways.
func TestEveryRouteIsDocumented(t *testing.T) {
	t.Parallel()
	_, ops := loadSpec(t)
	a := &api.API{}
	a.Register(http.NewServeMux())
	scopes := map[string]api.Scope{}
	for _, rt := range a.Routes() {
		scopes[rt.Pattern] = rt.Scope
	}
	patterns := a.Patterns()
	if len(patterns) < 20 {
		t.Fatalf("only %d routes registered: the test would prove little", len(patterns))
	}
	for _, p := range patterns {
		op, ok := ops[p]
		if !ok {
			t.Errorf("route %q is not in docs/openapi.yaml: document it (see the note at the top of internal/api/openapi.yaml)", p)
			continue
		}
		if want := scopes[p].String(); op.Scope != want {
			t.Errorf("%s: openapi.yaml says x-scope %q, the route table %q", p, op.Scope, want)
		}
		if _, ok := op.Responses["401"]; !ok {
			t.Errorf("%s: 401 not declared (every route checks the token)", p)
		}
		if _, ok := op.Responses["403"]; !ok && scopes[p] > api.ScopeRead {
			t.Errorf("%s: 403 not declared (a token of a smaller scope is refused)", p)
		}
	}
	for op := range ops {
		if !slices.Contains(patterns, op) {
			t.Errorf("openapi.yaml documents %q, which the server does not serve", op)
		}
	}
}

func TestOpenAPIIsServed(t *testing.T) {
	t.Parallel()
	c := setup(t, "s3cret")
	req, _ := http.NewRequest("GET", c.base+"/v1/openapi.yaml", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(body, api.OpenAPI) {
		t.Fatalf("GET /v1/openapi.yaml = %d %s, %d bytes: want the embedded document", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	if code, body := c.do("GET", "/v1/no-such-thing", ""); code != http.StatusNotFound || errCode(body) != "not_found" {
		t.Fatalf("unknown /v1 path = %d %v, want a JSON 404", code, body)
	}
	req, _ = http.NewRequest("PUT", c.base+"/v1/suppressions/a@example.com", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	var e api.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != http.StatusMethodNotAllowed || e.Error.Code != "method_not_allowed" || resp.Header.Get("Allow") != "GET, DELETE" {
		t.Fatalf("PUT on a known path = %d Allow %q %s, want a JSON 405 allowing GET, DELETE", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
}

// responses is what the package's tests saw each route answer.
var responses = struct {
	sync.Mutex
	status  map[string]map[int]bool // pattern → statuses
	badBody []string                // error answers not of the documented shape
}{status: map[string]map[int]bool{}}

type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len() < 1<<16 {
		r.body.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

// recordResponses wraps a test server's handler: every /v1 answer's route and status
// is noted for TestMain's check, and every error answer's body is checked.
func recordResponses(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			return
		}
		responses.Lock()
		defer responses.Unlock()
		if rec.status >= 400 {
			var e api.ErrorBody
			if err := json.Unmarshal(rec.body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				responses.badBody = append(responses.badBody, fmt.Sprintf("%s %s → %d %q", r.Method, r.URL.Path, rec.status, rec.body.String()))
			} else if !slices.Contains(errorCodes(), e.Error.Code) {
				responses.badBody = append(responses.badBody, fmt.Sprintf("%s %s → %d code %q is not in the Error schema's enum", r.Method, r.URL.Path, rec.status, e.Error.Code))
			}
		}
		if r.Pattern == "" || r.Pattern == "/v1/" { // the catch-all 404, documented in the description
			return
		}
		if responses.status[r.Pattern] == nil {
			responses.status[r.Pattern] = map[int]bool{}
		}
		responses.status[r.Pattern][rec.status] = true
	})
}

var errorCodes = sync.OnceValue(func() []string {
	var s spec
	_ = yaml.Unmarshal(api.OpenAPI, &s)
	return s.Components.Schemas.Error.Properties.Error.Properties.Code.Enum
})

// checkResponses compares what the tests saw with the document.
func checkResponses() []string {
	var problems []string
	var s spec
	if err := yaml.Unmarshal(api.OpenAPI, &s); err != nil {
		return []string{"openapi.yaml: " + err.Error()}
	}
	declared := map[string]map[string]bool{}
	for path, item := range s.Paths {
		for method, node := range item {
			var op operation
			if method == "parameters" || node.Decode(&op) != nil {
				continue
			}
			declared[strings.ToUpper(method)+" "+path] = map[string]bool{}
			for code := range op.Responses {
				declared[strings.ToUpper(method)+" "+path][code] = true
			}
		}
	}
	responses.Lock()
	defer responses.Unlock()
	problems = append(problems, responses.badBody...)
	for pattern, statuses := range responses.status {
		for st := range statuses {
			if d, ok := declared[pattern]; !ok {
				problems = append(problems, fmt.Sprintf("route %q answered %d but is not in openapi.yaml", pattern, st))
			} else if !d[strconv.Itoa(st)] {
				problems = append(problems, fmt.Sprintf("route %q answered %d, which openapi.yaml does not declare for it", pattern, st))
			}
		}
	}
	sort.Strings(problems)
	return problems
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if problems := checkResponses(); len(problems) > 0 {
			fmt.Fprintln(os.Stderr, "FAIL: the API answered outside its contract (internal/api/openapi.yaml):")
			for _, p := range problems {
				fmt.Fprintln(os.Stderr, "  "+p)
			}
			code = 1
		}
		responses.Lock()
		n := len(responses.status)
		responses.Unlock()
		if testing.Verbose() {
			fmt.Fprintf(os.Stderr, "contract: responses of %d routes checked against openapi.yaml\n", n)
		}
	}
	os.Exit(code)
}
