package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

func openIncident(t *testing.T, st *suppress.Store, id string) {
	t.Helper()
	_, err := st.Apply(context.Background(), []suppress.Change{{
		EventID: "generic:" + id, ESP: "generic", Address: id + "@example.com", Action: suppress.ActionRecord, Class: "auth_required",
		Incident: &suppress.IncidentChange{Fingerprint: "fp-auth", Class: "auth_required", SendingDomain: "mail.shop.example",
			Code: "530", Reply: "530 5.7.0 Authentication required", Fix: []string{"configure AUTH"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAlertIsSentOnceWithFixSteps(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	st := suppress.New(rdb, suppress.Options{Prefix: testsvc.Prefix(t, rdb)})
	ctx := context.Background()
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		bodies []Alert
		fail   = true
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		var a Alert
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &a)
		bodies = append(bodies, a)
	}))
	defer srv.Close()
	n := &Notifier{Store: st, WebhookURL: srv.URL + "/hook?token=secret", Metrics: metrics.New(), Log: zaptest.NewLogger(t)}
	n.Client = srv.Client()

	openIncident(t, st, "a1")
	n.sweep(ctx)
	if pending, _ := st.PendingNotifications(ctx, 10); len(pending) != 1 {
		t.Fatalf("after a failed POST, pending = %d, want the alert kept for a retry", len(pending))
	}
	// The failed attempt holds a 30 s claim; release it as its expiry would.
	rdb.Del(ctx, st.Keys().IncidentClaim("fp-auth"))
	mu.Lock()
	fail = false
	mu.Unlock()
	n.sweep(ctx)
	openIncident(t, st, "a2") // more events of the same incident: no second alert
	n.sweep(ctx)
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 {
		t.Fatalf("alerts sent = %d, want exactly 1", len(bodies))
	}
	a := bodies[0]
	if a.Kind != "rebound.incident.opened" || a.Incident.Class != "auth_required" || len(a.Incident.Fix) != 1 || a.Incident.Count != 1 {
		t.Fatalf("alert = %+v", a)
	}
	incs, _ := st.OpenIncidents(ctx, 10)
	if len(incs) != 1 || !incs[0].Notified || incs[0].Count != 2 {
		t.Fatalf("incident = %+v, want notified with count 2", incs)
	}
}

func TestErrorsDoNotLeakTheWebhookURL(t *testing.T) {
	t.Parallel()
	n := &Notifier{WebhookURL: "http://127.0.0.1:1/hook?token=s3cret", Client: &http.Client{Timeout: time.Second}, Log: zaptest.NewLogger(t)}
	err := n.send(context.Background(), suppress.Incident{Class: "auth_required"})
	if err == nil {
		t.Fatal("POST to a closed port succeeded")
	}
	if s := err.Error(); len(s) == 0 || contains(s, "s3cret") {
		t.Fatalf("error %q leaks the URL's token", s)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
