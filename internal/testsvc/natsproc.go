package testsvc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The chaos tests kill servers with SIGKILL, so those servers must be processes of
// their own: a nats-server in the test's process would take the test down with it.
// NATSServer is such a process, built from the nats-server Go module Rebound already
// depends on (the version go.mod pins, the one internal/embedded runs), never from
// PATH: a user's machine has none, and the Debian package is years older.

const natsServerModule = "github.com/nats-io/nats-server/v2"

var (
	natsBinOnce sync.Once
	natsBin     string
	natsBinErr  error
)

// NATSServerBinary returns the path of a nats-server binary built from the module
// version in go.mod, once per machine: it is cached under
// ${REBOUND_CACHE_DIR:-$HOME/.cache/rebound}/nats-server-<version>/nats-server, like
// the tools of scripts/lib/gotool.sh. The first build takes about half a minute on 2
// cores.
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	natsBinOnce.Do(func() { natsBin, natsBinErr = buildNATSServer() })
	if natsBinErr != nil {
		t.Fatalf("nats-server for the chaos tests: %v", natsBinErr)
	}
	return natsBin
}

func buildNATSServer() (string, error) {
	version := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == natsServerModule {
				version = d.Version
				if d.Replace != nil {
					version = d.Replace.Version
				}
			}
		}
	}
	if version == "" {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", natsServerModule).Output()
		if err != nil {
			return "", fmt.Errorf("version of %s: %w", natsServerModule, err)
		}
		version = strings.TrimSpace(string(out))
	}
	cache := os.Getenv("REBOUND_CACHE_DIR")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no REBOUND_CACHE_DIR and no home directory: %w", err)
		}
		cache = filepath.Join(home, ".cache", "rebound")
	}
	dir := filepath.Join(cache, "nats-server-"+version)
	bin := filepath.Join(dir, "nats-server")
	if fi, err := os.Stat(bin); err == nil && fi.Mode()&0o111 != 0 {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Several test binaries may ask at once: the lock makes the later ones wait for the
	// first build instead of compiling it again.
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", dir, err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if fi, err := os.Stat(bin); err == nil && fi.Mode()&0o111 != 0 {
		return bin, nil
	}
	// Built inside Rebound's module, so go.sum pins every dependency; without -race:
	// the server is the system under fault, not the code under test.
	tmp := bin + ".tmp"
	cmd := exec.Command("go", "build", "-trimpath", "-o", tmp, natsServerModule)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s@%s: %v\n%s", natsServerModule, version, err, out)
	}
	// Moved into place only once complete: an interrupted build leaves no binary that
	// the next run would take for a good one.
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// NATSServer is a nats-server process with JetStream on file storage, private to one
// test, which the test may kill (SIGKILL) and start again on the same port and store
// directory. It is killed when the test ends.
type NATSServer struct {
	Name        string
	Port        int
	ClusterPort int    // 0 outside a cluster
	Dir         string // the JetStream store directory, kept across restarts
	args        []string
	bin         string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// URL is the server's client URL.
func (s *NATSServer) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.Port) }

// StartNATSServer starts a single nats-server with JetStream storing in a directory of
// the test's, on a free loopback port.
func StartNATSServer(t testing.TB) *NATSServer {
	t.Helper()
	s := newNATSServer(t, "n0")
	s.start(t)
	return s
}

// StartNATSCluster starts n nats-servers clustered over loopback routes, each with
// JetStream on its own directory, and returns once JetStream answers through every
// one of them (a meta leader is elected).
//
// A "free" port is only free until someone binds it: another test's server may take
// one of the 2n ports between the pick and the node's start, and the node then exits
// at once. Such an attempt is stopped and the cluster started again on new ports, at
// most three times.
func StartNATSCluster(t testing.TB, n int) []*NATSServer {
	t.Helper()
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var servers []*NATSServer
		if servers, err = startNATSCluster(t, n); err == nil {
			return servers
		}
		t.Logf("nats cluster, attempt %d: %v", attempt, err)
	}
	t.Fatalf("nats cluster of %d: %v", n, err)
	return nil
}

func startNATSCluster(t testing.TB, n int) ([]*NATSServer, error) {
	t.Helper()
	// Client and cluster ports in one pick, so no two of them are the same.
	ports, err := FreePorts(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	servers := make([]*NATSServer, n)
	var routes []string
	for i := range servers {
		servers[i] = newNATSServerOn(t, fmt.Sprintf("n%d", i), ports[i])
		servers[i].ClusterPort = ports[n+i]
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	cluster := "rbt" + ID()
	for _, s := range servers {
		s.args = append(s.args, "--cluster_name", cluster, "--cluster", fmt.Sprintf("nats://127.0.0.1:%d", s.ClusterPort),
			"--routes", strings.Join(routes, ","))
	}
	// All at once: each waits for JetStream, which needs a quorum of the others.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, s := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.launch() }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			for _, s := range servers {
				s.Kill()
			}
			return nil, fmt.Errorf("node %s: %w\nlog:\n%s", servers[i].Name, err, tail(servers[i].Log(), 2000))
		}
	}
	return servers, nil
}

// tail is the end of s, at most n bytes, for a failing start to show a process's log.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// ClusterURL is the comma-separated client URL of every server, as NATS clients take it.
func ClusterURL(servers []*NATSServer) string {
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.URL())
	}
	return strings.Join(urls, ",")
}

func newNATSServer(t testing.TB, name string) *NATSServer {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return newNATSServerOn(t, name, port)
}

func newNATSServerOn(t testing.TB, name string, port int) *NATSServer {
	t.Helper()
	dir := t.TempDir()
	s := &NATSServer{Name: name, Port: port, Dir: filepath.Join(dir, "jetstream"), bin: NATSServerBinary(t)}
	s.args = []string{"-n", name, "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-js", "-sd", s.Dir,
		"-l", filepath.Join(dir, "nats-server.log")}
	t.Cleanup(s.Kill)
	return s
}

// Kill stops the server at once (SIGKILL), as a crash would, and waits until it is gone.
func (s *NATSServer) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart starts a killed server again with the same name, port and store directory.
func (s *NATSServer) Restart(t testing.TB) {
	t.Helper()
	s.start(t)
}

// logID is the server ID the latest process logged at start ("ID: N…"), or "" before
// it did. A restarted server appends to the same log, so the last one counts.
func (s *NATSServer) logID() string {
	id := ""
	for _, line := range strings.Split(s.Log(), "\n") {
		if _, after, ok := strings.Cut(line, "[INF]   ID:"); ok {
			id = strings.TrimSpace(after)
		}
	}
	return id
}

// Log returns the server's log, for a failing test to show.
func (s *NATSServer) Log() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(s.Dir), "nats-server.log"))
	return string(b)
}

func (s *NATSServer) start(t testing.TB) {
	t.Helper()
	if err := s.launch(); err != nil {
		t.Fatalf("nats-server %s: %v\nlog:\n%s", s.Name, err, s.Log())
	}
}

// launch starts the process and waits until JetStream answers through it.
func (s *NATSServer) launch() error {
	cmd := exec.Command(s.bin, s.args...)
	// The server dies with the test binary, even if the binary is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The answer must come from this process: when another test's server holds
		// the port, that one answers and this one exits ("address already in use").
		// The server ID the client sees is checked against the one in this log.
		id, err := natsServerID(s.URL())
		if err == nil {
			mine := s.logID()
			if mine == id {
				return nil
			}
			if mine != "" {
				err = fmt.Errorf("port %d answers as server %s, this one is %s", s.Port, id, mine)
			}
		}
		select {
		case <-done:
			return fmt.Errorf("exited at start: %v (%v)", cmd.ProcessState, err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("JetStream not available within 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
