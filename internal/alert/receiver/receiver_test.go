package receiver

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckSaysWhetherToRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status     int
		retryAfter string
		wantErr    bool
		retry      bool
		reason     string
		wait       time.Duration
	}{
		{200, "", false, false, "", 0},
		{202, "", false, false, "", 0},
		{400, "", true, false, "client_error", 0},
		{401, "", true, false, "auth_error", 0},
		{403, "", true, false, "auth_error", 0},
		{404, "", true, false, "client_error", 0},
		{429, "7", true, true, "rate_limited", 7 * time.Second},
		{500, "", true, true, "server_error", 0},
		{503, "120", true, true, "server_error", 2 * time.Minute},
		{503, "soon", true, true, "server_error", 0},
	}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
		if tt.retryAfter != "" {
			resp.Header.Set("Retry-After", tt.retryAfter)
		}
		err := Check(resp, []byte("  the answer  "))
		if (err != nil) != tt.wantErr {
			t.Errorf("HTTP %d: err = %v", tt.status, err)
			continue
		}
		if err == nil {
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Retry != tt.retry || e.Reason != tt.reason || e.RetryAfter != tt.wait || Retryable(err) != tt.retry || ReasonOf(err) != tt.reason {
			t.Errorf("HTTP %d: %+v, want retry=%v reason=%s wait=%s", tt.status, e, tt.retry, tt.reason, tt.wait)
		}
		if !strings.Contains(err.Error(), "the answer") {
			t.Errorf("HTTP %d: error %q lacks the receiver's answer", tt.status, err)
		}
	}
	// An error of another kind (a bug, a cancelled context) is retried: dropping a page
	// is worse than sending it twice.
	if !Retryable(errors.New("boom")) || Retryable(nil) {
		t.Error("Retryable: a foreign error must be retried, nil must not")
	}
}

func TestTruncateCutsOnARuneBoundary(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 5, "ab…"},
		{"ééééé", 7, "éé…"}, // 10 bytes; a cut at 4 would split the third é
		{"abcdef", 2, ""},
		{"abcdef", 0, ""},
	} {
		if got := Truncate(tt.in, tt.n); got != tt.want || len(got) > max(tt.n, 0) {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestSecretAndRedact(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key"), []byte(" s3cret-value \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := Secret("api_key", "", "key", dir, true); err != nil || v != "s3cret-value" {
		t.Errorf("Secret from a relative file = %q, %v", v, err)
	}
	if _, err := Secret("api_key", "x", "key", dir, true); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Errorf("both set: %v", err)
	}
	if _, err := Secret("api_key", "", "", dir, true); err == nil || !strings.Contains(err.Error(), "api_key") {
		t.Errorf("missing required: %v", err)
	}
	err := Redact(&Error{Status: 400, Reason: "client_error", Err: errors.New("bad key s3cret-value in https://h.example/T/s3cret-path")}, "s3cret-value", "s3cret-path", "x")
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("Redact = %v", err)
	}
	if CheckURL("url", "ftp://h.example/s3cret") == nil || strings.Contains(CheckURL("url", "::bad s3cret").Error(), "s3cret") {
		t.Error("CheckURL must refuse a non-http URL without echoing it")
	}
}
