package testsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Alertmanager is a real alertmanager process started for a test on a free loopback port.
//
// It is built from its Go module by scripts/install-alertmanager.sh (once per machine;
// the binary is cached under $HOME/.cache/rebound, or REBOUND_CACHE_DIR), or taken from
// REBOUND_ALERTMANAGER_BIN. Each test gets its own process, configuration and storage,
// so alerts never leak between tests, and the process is killed when the test ends.
type Alertmanager struct {
	URL string // http://127.0.0.1:PORT, without a trailing slash

	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited
	logf   string        // its stdout and stderr
}

// alertmanagerConfig is the smallest configuration Alertmanager accepts: one receiver
// with no integration, so nothing leaves the machine, and the route every alert takes
// to it. resolve_timeout is spelled out because Rebound's receiver relies on sending
// its own endsAt instead of Alertmanager's timeout; a test that forgets to would see
// the alert resolve after 5m, not silently never.
const alertmanagerConfig = `global:
  resolve_timeout: 5m
route:
  receiver: discard
receivers:
  - name: discard
`

var (
	amBinOnce sync.Once
	amBin     string
	amBinErr  error
)

// StartAlertmanager starts a private Alertmanager for the test and stops it when the
// test ends. A binary that cannot be found or built fails the test; it never skips,
// because a skipped integration test looks exactly like a passing one in CI.
func StartAlertmanager(t testing.TB) *Alertmanager {
	t.Helper()
	amBinOnce.Do(func() { amBin, amBinErr = alertmanagerBinary() })
	if amBinErr != nil {
		t.Fatalf("no Alertmanager binary for integration tests: %v", amBinErr)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(alertmanagerConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	// FreePort only says the port was free a moment ago; another process can take it
	// before Alertmanager binds it, so a lost race is retried on a new port.
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var a *Alertmanager
		a, err = startAlertmanager(amBin, dir, cfg, attempt)
		if err == nil {
			// Registered after t.TempDir, so it runs before the folder is removed: the
			// process must be gone before its storage is deleted under it.
			t.Cleanup(func() {
				a.stop()
				if t.Failed() {
					t.Logf("alertmanager log (%s):\n%s", a.URL, a.logTail(4096))
				}
			})
			return a
		}
		if !errors.Is(err, errAMPortTaken) {
			break
		}
	}
	t.Fatalf("start alertmanager (%s): %v", amBin, err)
	return nil
}

var errAMPortTaken = errors.New("port taken")

func startAlertmanager(bin, dir, cfg string, attempt int) (*Alertmanager, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	a := &Alertmanager{URL: "http://" + addr, exited: make(chan struct{}), logf: filepath.Join(dir, fmt.Sprintf("alertmanager-%d.log", attempt))}
	logFile, err := os.Create(a.logf)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	a.cmd = exec.Command(bin,
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
		"--web.listen-address="+addr,
		// Links Alertmanager builds point back at the loopback address, not at the
		// machine's hostname.
		"--web.external-url="+a.URL,
		// Empty: no gossip listener on 0.0.0.0:9094 and no peers, so the process
		// neither opens a port beyond loopback nor waits for a cluster to settle.
		"--cluster.listen-address=",
		"--log.level=debug",
	)
	a.cmd.Stdout, a.cmd.Stderr = logFile, logFile
	// The process dies with the test binary, even when the binary is killed.
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	go func() { _ = a.cmd.Wait(); close(a.exited) }()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-a.exited:
			tail := a.logTail(2048)
			if strings.Contains(tail, "address already in use") {
				return nil, fmt.Errorf("%w: %s", errAMPortTaken, addr)
			}
			return nil, fmt.Errorf("alertmanager exited before it was ready (%s); its log:\n%s", a.cmd.ProcessState, tail)
		default:
		}
		resp, err := client.Get(a.URL + "/-/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.stop()
	return nil, fmt.Errorf("alertmanager on %s was not ready within 30s; its log:\n%s", addr, a.logTail(2048))
}

// stop kills the process and waits until it has exited.
func (a *Alertmanager) stop() {
	_ = a.cmd.Process.Kill()
	<-a.exited
}

// logTail returns the last n bytes of the process's log.
func (a *Alertmanager) logTail(n int) string {
	b, err := os.ReadFile(a.logf)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Alerts returns what GET /api/v2/alerts answers, decoded: one map per alert with
// labels, annotations, startsAt, endsAt, fingerprint, status{state, silencedBy, …}.
// Each filter is a matcher such as `incident="abc"`, sent as a filter= parameter; the
// active, silenced and inhibited parameters keep Alertmanager's defaults (all true).
// Alertmanager leaves out alerts whose endsAt has passed, whatever the parameters.
func (a *Alertmanager) Alerts(t testing.TB, filter ...string) []map[string]any {
	t.Helper()
	q := url.Values{}
	for _, f := range filter {
		q.Add("filter", f)
	}
	u := a.URL + "/api/v2/alerts"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d: %s", u, resp.StatusCode, bytes.TrimSpace(body))
	}
	var alerts []map[string]any
	if err := json.Unmarshal(body, &alerts); err != nil {
		t.Fatalf("GET %s: not a JSON array of alerts: %v\n%s", u, err, body)
	}
	return alerts
}

// alertmanagerBinary finds the binary: REBOUND_ALERTMANAGER_BIN when set, else what
// the install script prints, building it if the cache does not have it yet.
func alertmanagerBinary() (string, error) {
	if bin := os.Getenv("REBOUND_ALERTMANAGER_BIN"); bin != "" {
		if err := amExecutable(bin); err != nil {
			return "", fmt.Errorf("REBOUND_ALERTMANAGER_BIN=%s: %w", bin, err)
		}
		return bin, nil
	}
	script, err := amInstallScript()
	if err != nil {
		return "", err
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		return "", fmt.Errorf("bash is not on PATH: it runs %s (or set REBOUND_ALERTMANAGER_BIN to an alertmanager binary)", script)
	}
	// The first build compiles Alertmanager and its dependencies: minutes on a small
	// machine. Say so where a developer watching `go test -v` sees it.
	fmt.Fprintf(os.Stderr, "testsvc: finding Alertmanager with %s (builds it the first time, a few minutes)\n", script)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bash, script)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s failed (%v): it builds Alertmanager from its Go module, so it needs go on PATH and "+
			"the Go module proxy (GOPROXY) reachable; or set REBOUND_ALERTMANAGER_BIN to an alertmanager binary. Its output:\n%s",
			script, err, tail(stderr.String(), 3000))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	bin := strings.TrimSpace(lines[len(lines)-1])
	if err := amExecutable(bin); err != nil {
		return "", fmt.Errorf("%s printed %q: %w", script, bin, err)
	}
	return bin, nil
}

// amInstallScript locates scripts/install-alertmanager.sh: next to this source file
// when the path is real (a normal build), else above the working directory (go test
// runs in the package's folder, inside the repository).
func amInstallScript() (string, error) {
	const rel = "scripts/install-alertmanager.sh"
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			p := filepath.Join(dir, rel)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("%s not found above %v: run the tests inside the Rebound repository, or set REBOUND_ALERTMANAGER_BIN", rel, starts)
}

func amExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}
