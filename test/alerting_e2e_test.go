package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/alert/webhook"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// sink stands in for one receiver's endpoint: it records every request and answers
// what its mode says.
type sink struct {
	*httptest.Server
	mu     sync.Mutex
	got    []sinkRequest
	status atomic.Int32 // the answer; 0 means 200
}

type sinkRequest struct {
	header   http.Header
	body     []byte
	answered int
}

func newSink(t *testing.T) *sink {
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		code := int(s.status.Load())
		if code == 0 {
			code = http.StatusOK
		}
		s.mu.Lock()
		s.got = append(s.got, sinkRequest{header: r.Header.Clone(), body: b, answered: code})
		s.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(s.Close)
	return s
}

// accepted returns the bodies of the requests answered 2xx.
func (s *sink) accepted() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, r := range s.got {
		if r.answered/100 == 2 {
			out = append(out, r.body)
		}
	}
	return out
}

func (s *sink) requests() []sinkRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkRequest(nil), s.got...)
}

// kinds reads one field of each accepted JSON body (PagerDuty's event_action, the
// webhook's kind), in order.
func (s *sink) kinds(field string) []string {
	var out []string
	for _, b := range s.accepted() {
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		v, _ := m[field].(string)
		out = append(out, v)
	}
	return out
}

// TestAlertingThreeReplicas runs the whole alerting path through three replicas of the
// binary: 1,000 530s of one sender page each receiver exactly once, a receiver that is
// down gets its page once it is back, one that answers 400 is not retried, the real
// Alertmanager lists the alert, and after the quiet period each receiver gets exactly
// one resolve — and the control signal says opened, then resolved, once each.
func TestAlertingThreeReplicas(t *testing.T) {
	t.Parallel()
	am := testsvc.StartAlertmanager(t)
	pager, chat, hook, flaky, broken := newSink(t), newSink(t), newSink(t), newSink(t), newSink(t)
	flaky.status.Store(http.StatusServiceUnavailable) // down until told otherwise
	broken.status.Store(http.StatusBadRequest)

	dir := t.TempDir()
	const resolveAfter = 4 * time.Second
	polFile := filepath.Join(dir, "policy.yaml")
	pol := strings.Replace(string(policy.DefaultYAML()), "resolve_after: 30m", "resolve_after: 4s", 1)
	if err := os.WriteFile(polFile, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hook.secret"), []byte("whsec-e2e\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alertFile := filepath.Join(dir, "alerts.yaml")
	cfg := fmt.Sprintf(`receivers:
  - name: pager
    pagerduty: {routing_key: rk-e2e-0123456789, url: %q}
  - name: chat
    slack: {url: %q}
  - name: hook
    webhook: {url: %q, secret_file: hook.secret}
  - name: flaky
    webhook: {url: %q}
  - name: broken
    webhook: {url: %q}
  - name: am
    alertmanager: {url: %q}
external_url: https://rebound.example.com
runbook_url: https://runbooks.example.com/rebound/{class}
delivery: {initial_backoff: 500ms, max_backoff: 1s}
`, pager.URL, chat.URL+"/services/T000/B000/XXXX", hook.URL, flaky.URL, broken.URL, am.URL)
	if err := os.WriteFile(alertFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	d := newDeployment(t)
	nc, err := nats.Connect(testsvc.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	control, err := nc.SubscribeSync(alert.ControlSubject(d.names.SubjectPrefix, "auth_required"))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	env := []string{"REBOUND_ALERT_CONFIG=" + alertFile, "REBOUND_POLICY_FILE=" + polFile, "REBOUND_LOG_LEVEL=info"}
	workers := []*worker{d.start(t, env...), d.start(t, env...), d.start(t, env...)}

	// 1,000 530s of one sending path, to 1,000 recipients, spread over the replicas.
	id := testsvc.ID()
	const events = 1000
	for b := range events / 100 {
		var items []string
		for i := range 100 {
			n := b*100 + i
			items = append(items, ev(fmt.Sprintf("%s-%d", id, n), fmt.Sprintf("r%d-%s@example.com", n, id), 530, "5.7.0", "530 5.7.0 Authentication required"))
		}
		if code, body := workers[b%3].post(t, "["+strings.Join(items, ",")+"]"); code != http.StatusOK {
			t.Fatalf("POST batch %d = %d %s", b, code, body)
		}
	}
	incID := alert.Fingerprint("", "auth_required", "mail.shop.example", "192.0.2.10")
	var inc map[string]any
	eventually(t, "all 1,000 events counted into one incident", func() bool {
		_, inc = workers[0].get(t, "/v1/alerts/"+incID)
		return inc["messages"] == float64(events)
	})
	lastEvent := time.Now()
	if inc["recipients"].(float64) < 980 || inc["recipients"].(float64) > 1020 {
		t.Errorf("distinct recipients = %v, want about 1,000 (HyperLogLog estimate)", inc["recipients"])
	}
	eventually(t, "the trigger at the receivers that answer", func() bool {
		return len(pager.accepted()) >= 1 && len(chat.accepted()) >= 1 && len(hook.accepted()) >= 1 && len(broken.requests()) >= 1
	})
	// The flaky receiver has been failing; it comes back and gets its page.
	eventually(t, "the down receiver to be tried", func() bool { return len(flaky.requests()) >= 2 })
	flaky.status.Store(http.StatusOK)
	eventually(t, "the down receiver to get its page once back", func() bool { return len(flaky.accepted()) >= 1 })

	// Alertmanager lists it through its own API.
	var amAlerts []map[string]any
	eventually(t, "the alert in Alertmanager", func() bool {
		amAlerts = am.Alerts(t, `incident="`+incID+`"`)
		return len(amAlerts) == 1
	})
	if labels, _ := amAlerts[0]["labels"].(map[string]any); labels["class"] != "auth_required" || labels["severity"] != "critical" {
		t.Errorf("Alertmanager labels = %v", amAlerts[0]["labels"])
	}

	// The quiet period: a resolve reaches every receiver within resolve_after + 10 s.
	deadline := lastEvent.Add(resolveAfter + 10*time.Second)
	for time.Now().Before(deadline) && !(len(pager.accepted()) >= 2 && len(chat.accepted()) >= 2 && len(hook.accepted()) >= 2 && len(flaky.accepted()) >= 2) {
		time.Sleep(100 * time.Millisecond)
	}
	if time.Now().After(deadline) {
		t.Fatalf("no resolve within resolve_after + 10s: pager %v, hook %v, chat %d, flaky %d", pager.kinds("event_action"), hook.kinds("kind"), len(chat.accepted()), len(flaky.accepted()))
	}
	eventually(t, "Alertmanager to show it resolved", func() bool {
		for _, a := range am.Alerts(t, `incident="`+incID+`"`) {
			if st, _ := a["status"].(map[string]any); st["state"] == "active" {
				return false
			}
		}
		return true
	})
	time.Sleep(3 * time.Second) // long enough for any duplicate or retry to show

	if got := pager.kinds("event_action"); fmt.Sprint(got) != "[trigger resolve]" {
		t.Errorf("PagerDuty got %v, want exactly [trigger resolve]", got)
	}
	for _, s := range []struct {
		name string
		sink *sink
	}{{"hook", hook}, {"flaky", flaky}} {
		if got := s.sink.kinds("kind"); fmt.Sprint(got) != "[rebound.incident.trigger rebound.incident.resolve]" {
			t.Errorf("%s got %v, want exactly one trigger then one resolve", s.name, got)
		}
	}
	if n := len(chat.accepted()); n != 2 {
		t.Errorf("Slack got %d messages, want 2 (trigger, resolve)", n)
	}
	if reqs := broken.requests(); len(reqs) != 2 {
		// The trigger and the resolve, each refused once with 400 and never retried.
		t.Errorf("the receiver answering 400 was called %d times, want 2 (no retries)", len(reqs))
	}
	for _, r := range hook.requests() {
		if err := webhook.Verify([]byte("whsec-e2e"), r.header, r.body, time.Now(), time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
	}

	var signals []string
	for {
		m, err := control.NextMsg(200 * time.Millisecond)
		if err != nil {
			break
		}
		var c alert.ControlMessage
		if err := json.Unmarshal(m.Data, &c); err != nil || c.ID != incID {
			t.Errorf("control message %s: %v", m.Data, err)
			continue
		}
		signals = append(signals, c.Event)
	}
	if fmt.Sprint(signals) != "[opened resolved]" {
		t.Errorf("control signals = %v, want exactly [opened resolved]", signals)
	}
	_, inc = workers[1].get(t, "/v1/alerts/"+incID)
	if inc["state"] != "resolved" {
		t.Errorf("incident state = %v, want resolved", inc["state"])
	}
}
