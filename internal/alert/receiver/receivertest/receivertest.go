// Package receivertest is the kit every receiver's tests use: a sample notification,
// a local server that records what it was sent and answers what the test says, and
// the checks every receiver must pass (retry verdicts by status, no secret in errors).
package receivertest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/alert/receiver"
)

// Sample returns a realistic trigger notification for a 530 credential incident.
func Sample() receiver.Notification {
	first := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	return receiver.Notification{
		Kind: receiver.KindTrigger, ID: "3f2a9c0d1e4b5a6978c1d2e3", Seq: 1, At: first,
		Class: "auth_required", Severity: "critical", State: "open",
		Tenant: "acme", SendingDomain: "mail.example.com", SendingIP: "192.0.2.10",
		Code: "530", CodeTitle: "Authentication required", Rule: "smtp-530", ESP: "sendgrid",
		Summary:  "SMTP 530 Authentication required for mail.example.com via 192.0.2.10 — 1,243 messages to 1,201 recipients in 5 min",
		Messages: 1243, Recipients: 1201, FirstSeen: first, LastSeen: first.Add(5 * time.Minute),
		Examples:         []string{"530 5.7.0 Authentication required", "530 5.7.1 Client was not authenticated"},
		ReceivingDomains: []string{"gmail.com", "outlook.com"},
		Meaning:          "The server requires the client to authenticate before it accepts mail.",
		Fix:              []string{"Check the SMTP username and password (or API key) configured for this sender.", "Rotate the key if it was revoked."},
		RunbookURL:       "https://runbooks.example.com/rebound/auth_required",
		IncidentURL:      "https://rebound.example.com/v1/alerts/3f2a9c0d1e4b5a6978c1d2e3",
	}
}

// Resolved returns Sample as a resolve notification.
func Resolved() receiver.Notification {
	n := Sample()
	n.Kind, n.Seq, n.State = receiver.KindResolve, 2, "resolved"
	n.ResolvedAt = n.LastSeen.Add(30 * time.Minute)
	n.At = n.ResolvedAt
	return n
}

// Request is one request the server received.
type Request struct {
	Method string
	Path   string // with the query string, if any
	Header http.Header
	Body   []byte
}

// Server is a local HTTP server standing in for a receiver's endpoint.
type Server struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []Request
	status int
	body   string
	header http.Header
}

// NewServer starts a server answering 200 (or what SetAnswer says) and stops it when
// the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{status: http.StatusOK, body: "ok"}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, Request{Method: r.Method, Path: r.URL.RequestURI(), Header: r.Header.Clone(), Body: b})
		status, body := s.status, s.body
		for k, v := range s.header {
			w.Header()[k] = v
		}
		s.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

// SetAnswer makes the server answer status with body (and header, may be nil).
func (s *Server) SetAnswer(status int, body string, header http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body, s.header = status, body, header
}

// Requests returns what the server received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Last returns the last request, failing the test when there is none.
func (s *Server) Last(t testing.TB) Request {
	t.Helper()
	r := s.Requests()
	if len(r) == 0 {
		t.Fatal("the receiver sent nothing")
	}
	return r[len(r)-1]
}

// RetryCases checks the retry verdict of a receiver for the statuses that matter:
// 2xx succeeds, 5xx and 429 are retried, 400/401/403/404 are not. build returns the
// receiver pointed at the given URL.
func RetryCases(t *testing.T, build func(url string) receiver.Receiver) {
	t.Helper()
	cases := []struct {
		status    int
		wantErr   bool
		wantRetry bool
	}{
		{200, false, false}, {202, false, false},
		{400, true, false}, {401, true, false}, {403, true, false}, {404, true, false},
		{429, true, true}, {500, true, true}, {502, true, true}, {503, true, true},
	}
	for _, c := range cases {
		srv := NewServer(t)
		srv.SetAnswer(c.status, "answer", nil)
		err := build(srv.URL).Send(context.Background(), Sample())
		if (err != nil) != c.wantErr {
			t.Errorf("HTTP %d: err = %v, want error %v", c.status, err, c.wantErr)
			continue
		}
		if err != nil && receiver.Retryable(err) != c.wantRetry {
			t.Errorf("HTTP %d: retryable = %v, want %v (%v)", c.status, receiver.Retryable(err), c.wantRetry, err)
		}
	}
	// No answer at all (the server is gone) is retried.
	srv := NewServer(t)
	url := srv.URL
	srv.Close()
	err := build(url).Send(context.Background(), Sample())
	if err == nil || !receiver.Retryable(err) {
		t.Errorf("no answer: err = %v, want a retryable error", err)
	}
}

// NoSecretInErrors fails the test when an error from the receiver, for a failed
// answer or for no answer, contains any of the secrets (keys, the URL's token).
func NoSecretInErrors(t *testing.T, build func(url string) receiver.Receiver, secrets ...string) {
	t.Helper()
	srv := NewServer(t)
	srv.SetAnswer(http.StatusBadRequest, "invalid_payload", nil)
	gone := NewServer(t)
	goneURL := gone.URL
	gone.Close()
	for _, u := range []string{srv.URL, goneURL} {
		err := build(u).Send(context.Background(), Sample())
		if err == nil {
			t.Fatalf("Send to a failing endpoint succeeded")
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(err.Error(), s) {
				t.Errorf("error %q leaks a secret", err)
			}
			for e := errors.Unwrap(err); e != nil && s != ""; e = errors.Unwrap(e) {
				if strings.Contains(e.Error(), s) {
					t.Errorf("wrapped error %q leaks a secret", e)
				}
			}
		}
	}
}
