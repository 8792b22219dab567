package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/testsvc"
)

var workerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rebound-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workerBin = filepath.Join(dir, "worker")
	build := exec.Command("go", "build", "-race", "-o", workerBin, "../cmd/worker")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build worker:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// worker is one running worker binary.
type worker struct {
	base  string // REBOUND_HTTP_ADDR: webhooks and probes
	admin string // REBOUND_ADMIN_ADDR: /v1 and /metrics
	token string
	cmd   *exec.Cmd
	log   *bytes.Buffer
	exit  chan error
}

// deployment is what worker replicas of one installation share: stream, consumer,
// subjects and Redis key prefix, all private to the test.
type deployment struct {
	names  events.Names
	prefix string
}

func newDeployment(t *testing.T) deployment {
	t.Helper()
	_, js := testsvc.JetStream(t)
	rdb := testsvc.RedisClient(t)
	return deployment{names: testsvc.Names(t, js), prefix: testsvc.Prefix(t, rdb)}
}

// startWorker starts the binary with a private stream, consumer, subject and key prefix.
func startWorker(t *testing.T, extraEnv ...string) *worker {
	t.Helper()
	return newDeployment(t).start(t, extraEnv...)
}

// start starts one replica of the deployment.
func (d deployment) start(t *testing.T, extraEnv ...string) *worker {
	t.Helper()
	names, prefix := d.names, d.prefix
	port, err := testsvc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	adminPort, err := testsvc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{base: fmt.Sprintf("http://127.0.0.1:%d", port), admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort), token: "tok-" + testsvc.ID(), log: &bytes.Buffer{}, exit: make(chan error, 1)}
	w.cmd = exec.Command(workerBin)
	w.cmd.Env = append(os.Environ(),
		"REBOUND_NATS_URL="+testsvc.NATS(t),
		"REBOUND_REDIS_URL="+testsvc.Redis(t),
		"REBOUND_REDIS_PREFIX="+prefix,
		"REBOUND_STREAM="+names.Stream,
		"REBOUND_DEADLETTER_STREAM="+names.DeadStream,
		"REBOUND_CONSUMER="+names.Consumer,
		"REBOUND_SUBJECT_PREFIX="+names.SubjectPrefix,
		fmt.Sprintf("REBOUND_HTTP_ADDR=127.0.0.1:%d", port),
		fmt.Sprintf("REBOUND_ADMIN_ADDR=127.0.0.1:%d", adminPort),
		"REBOUND_GENERIC_TOKEN="+w.token,
		"REBOUND_LOG_LEVEL=debug",
	)
	w.cmd.Env = append(w.cmd.Env, extraEnv...)
	w.cmd.Stdout, w.cmd.Stderr = w.log, w.log
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.exit <- w.cmd.Wait() }()
	t.Cleanup(func() {
		_ = w.cmd.Process.Kill()
		<-w.exit
		if t.Failed() {
			t.Logf("worker output:\n%s", w.log.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _ := w.get(t, "/readyz"); code == http.StatusOK {
			return w
		}
		select {
		case err := <-w.exit:
			w.exit <- err
			t.Fatalf("worker exited before ready: %v\n%s", err, w.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker not ready within 20s:\n%s", w.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get reads path from the listener that serves it: /v1 and /metrics from the admin
// listener, anything else (probes) from the public one.
func (w *worker) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	base := w.base
	if strings.HasPrefix(path, "/v1/") || path == "/metrics" {
		base = w.admin
	}
	resp, err := http.Get(base + path)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func (w *worker) post(t *testing.T, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, w.base+"/webhooks/generic", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+w.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually polls f until it returns true or the timeout passes.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ev(id, rcpt string, code int, enhanced, text string) string {
	return fmt.Sprintf(`{"id":"generic:%s","esp":"generic","type":"bounce","occurred_at":"2026-11-26T10:00:00Z","recipient":%q,"sender":"news@mail.shop.example","sending_ip":"192.0.2.10","reply":{"code":%d,"enhanced":%q,"text":%q}}`, id, rcpt, code, enhanced, text)
}

func TestEndToEnd530AndUserUnknown(t *testing.T) {
	t.Parallel()
	w := startWorker(t)
	id := testsvc.ID()
	bundle := "[" + ev(id+"-530", "ok-"+id+"@example.com", 530, "5.7.0", "530 5.7.0 Authentication required") + "," +
		ev(id+"-511", "gone-"+id+"@example.com", 550, "5.1.1", "550 5.1.1 The email account that you tried to reach does not exist") + "]"
	if code, body := w.post(t, bundle); code != http.StatusOK || !strings.Contains(body, `"accepted":2`) {
		t.Fatalf("POST = %d %s, want 200 with 2 accepted", code, body)
	}

	var sup map[string]any
	eventually(t, "the 5.1.1 recipient to be suppressed", func() bool {
		code, body := w.get(t, "/v1/suppressions/gone-"+id+"@example.com")
		sup = body
		return code == http.StatusOK
	})
	if sup["class"] != "recipient_unknown" || sup["event_id"] != "generic:"+id+"-511" || sup["expires_at"] != nil {
		t.Fatalf("suppression = %v, want permanent recipient_unknown from our event", sup)
	}
	var alerts []any
	eventually(t, "one open incident", func() bool {
		_, body := w.get(t, "/v1/alerts")
		alerts, _ = body["alerts"].([]any)
		return len(alerts) == 1
	})
	inc := alerts[0].(map[string]any)
	if inc["class"] != "auth_required" || inc["messages"] != float64(1) || len(inc["fix"].([]any)) == 0 {
		t.Fatalf("incident = %v, want auth_required, count 1, with fix steps", inc)
	}
	if code, _ := w.get(t, "/v1/suppressions/ok-"+id+"@example.com"); code != http.StatusNotFound {
		t.Fatalf("530 recipient: GET suppression = %d, want 404: a sender-side fault must never suppress", code)
	}

	// The same events again, then a marker: once the marker is processed, so are the repeats.
	if code, body := w.post(t, bundle); code != http.StatusOK {
		t.Fatalf("re-POST = %d %s", code, body)
	}
	w.post(t, ev(id+"-marker", "marker-"+id+"@example.com", 550, "5.1.1", "550 5.1.1 user unknown"))
	eventually(t, "the marker", func() bool {
		code, _ := w.get(t, "/v1/suppressions/marker-"+id+"@example.com")
		return code == http.StatusOK
	})
	_, again := w.get(t, "/v1/suppressions/gone-"+id+"@example.com")
	if again["events"] != float64(1) {
		t.Fatalf("after re-posting, suppression events = %v, want 1", again["events"])
	}
	_, body := w.get(t, "/v1/alerts")
	alerts = body["alerts"].([]any)
	if len(alerts) != 1 || alerts[0].(map[string]any)["messages"] != float64(1) {
		t.Fatalf("after re-posting, alerts = %v, want one incident with count 1", alerts)
	}
	_, rcpt := w.get(t, "/v1/recipients/ok-"+id+"@example.com")
	if rcpt["suppression"] != nil || len(rcpt["history"].([]any)) != 1 {
		t.Fatalf("530 recipient state = %v, want no suppression and one history entry", rcpt)
	}
}

func TestEndToEndRejectsAndMetrics(t *testing.T) {
	t.Parallel()
	w := startWorker(t)
	req, _ := http.NewRequest(http.MethodPost, w.base+"/webhooks/generic", strings.NewReader("[]"))
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token = %d, want 401", resp.StatusCode)
	}
	if code, _ := w.post(t, "not json"); code != http.StatusBadRequest {
		t.Fatalf("non-JSON = %d, want 400", code)
	}
	code, body := w.post(t, `[{"id":"generic:bad","esp":"generic","type":"bounce","occurred_at":"2026-11-26T10:00:00Z","recipient":"nobody"}]`)
	if code != http.StatusOK || !strings.Contains(body, "recipient") || !strings.Contains(body, `"accepted":0`) {
		t.Fatalf("invalid item = %d %s, want 200 listing the rejected item by field", code, body)
	}
	resp, err = http.Get(w.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`rebound_webhook_requests_total{code="401",esp="generic"} 1`, `rebound_dead_letters_total{stage="ingest"} 1`, `rebound_events_rejected_total{esp="generic",reason="invalid"} 1`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestEndToEndSIGTERMExitsCleanly(t *testing.T) {
	t.Parallel()
	w := startWorker(t)
	id := testsvc.ID()
	for i := range 20 {
		w.post(t, ev(fmt.Sprintf("%s-%d", id, i), fmt.Sprintf("r%d-%s@example.com", i, id), 550, "5.1.1", "550 5.1.1 user unknown"))
	}
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.exit:
		w.exit <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM = %v, want 0\n%s", err, w.log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not exit within 30s of SIGTERM")
	}
}

func TestInvalidConfigExitsNamingTheSetting(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(workerBin)
	cmd.Env = append(os.Environ(), "REBOUND_REDIS_URL=http://127.0.0.1:6379")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "REBOUND_REDIS_URL") {
		t.Fatalf("exit = %v, output %q: want non-zero naming REBOUND_REDIS_URL", err, out)
	}
}

func TestDemoPrintsTheSummary(t *testing.T) {
	t.Parallel()
	port, _ := testsvc.FreePort()
	adminPort, _ := testsvc.FreePort()
	cmd := exec.Command(workerBin, "demo", "--exit")
	cmd.Env = append(os.Environ(), fmt.Sprintf("REBOUND_HTTP_ADDR=127.0.0.1:%d", port), fmt.Sprintf("REBOUND_ADMIN_ADDR=127.0.0.1:%d", adminPort), "REBOUND_REDIS_URL=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"embedded, in-memory", "auth_required", "recipient_unknown", "suppressed (permanent)", "soft bounce 2 of 3", "Open sender-side incidents (6)", "fix 1.", "Posted a signed sendgrid webhook", "Posted a signed mailgun webhook", "Posted a signed postmark webhook", "recipient_opted_out", "Suppression list (6)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
