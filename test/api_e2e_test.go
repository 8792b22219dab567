package test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestEndToEndAPIIsPrivate: the webhook listener serves no /v1 and no /metrics, the
// admin listener answers with the token's scope.
func TestEndToEndAPIIsPrivate(t *testing.T) {
	t.Parallel()
	const readTok, writeTok = "e2e-read-token-0123456789", "e2e-write-token-0123456789"
	w := startWorker(t, "REBOUND_API_TOKENS=support:"+readTok+":read,ops:"+writeTok+":write")
	do := func(base, method, path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(`{"address":"a@example.com","reason":"e2e"}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/v1/suppressions", "/v1/suppressions/a@example.com", "/v1/alerts", "/metrics", "/v1/openapi.yaml"} {
		if code, body := do(w.base, "GET", path, readTok); code != http.StatusNotFound {
			t.Errorf("webhook listener GET %s = %d %q, want 404", path, code, body)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := do(w.base, "GET", path, ""); code != http.StatusOK {
			t.Errorf("webhook listener GET %s = %d, want 200", path, code)
		}
		if code, _ := do(w.admin, "GET", path, ""); code != http.StatusOK {
			t.Errorf("admin listener GET %s = %d, want 200", path, code)
		}
	}
	if code, body := do(w.admin, "GET", "/v1/alerts", ""); code != http.StatusUnauthorized || !strings.Contains(body, `"code": "unauthorized"`) {
		t.Errorf("admin /v1 without a token = %d %s, want 401 even from loopback once tokens exist", code, body)
	}
	if code, _ := do(w.admin, "GET", "/v1/alerts", readTok); code != http.StatusOK {
		t.Errorf("admin /v1 read = %d, want 200", code)
	}
	if code, body := do(w.admin, "POST", "/v1/suppressions", readTok); code != http.StatusForbidden || !strings.Contains(body, `"code": "forbidden"`) {
		t.Errorf("add with a read token = %d %s, want 403", code, body)
	}
	if code, body := do(w.admin, "POST", "/v1/suppressions", writeTok); code != http.StatusCreated {
		t.Errorf("add with a write token = %d %s, want 201", code, body)
	}
	if code, body := do(w.admin, "GET", "/metrics", ""); code != http.StatusOK || !strings.Contains(body, "rebound_") {
		t.Errorf("admin /metrics = %d, want the metrics", code)
	}
	// The log is read once the worker has exited: its output is written meanwhile.
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := <-w.exit
	w.exit <- err
	if out := w.log.String(); !strings.Contains(out, `"actor":"ops"`) || strings.Contains(out, readTok) || strings.Contains(out, writeTok) {
		t.Error("the log carries a token, or not the change by ops")
	}
}

// TestAdminListenerOffLoopbackNeedsAToken: the worker refuses to start when /v1 would
// be readable from other machines without a token.
func TestAdminListenerOffLoopbackNeedsAToken(t *testing.T) {
	t.Parallel()
	port, err := testsvc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(workerBin)
	cmd.Env = append(os.Environ(), fmt.Sprintf("REBOUND_ADMIN_ADDR=0.0.0.0:%d", port), "REBOUND_API_TOKEN=", "REBOUND_API_TOKENS=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "REBOUND_ADMIN_ADDR") || !strings.Contains(string(out), "no API token is configured") {
		t.Fatalf("exit = %v, output %q: want non-zero naming REBOUND_ADMIN_ADDR and the missing token", err, out)
	}
}
