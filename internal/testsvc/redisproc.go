package testsvc

import (
	"fmt"
	"sync"
	"testing"
)

// RedisServer is a redis-server process private to one test that the test may kill and
// start again on the same port and directory, with its append-only file: what it
// acknowledged before the kill is there after the restart.
type RedisServer struct {
	Addr string
	port int
	dir  string

	mu   sync.Mutex
	proc *RedisProcess // nil while stopped
}

// aofArgs make every acknowledged write durable before its reply: the chaos tests
// kill the server and assert that nothing it acknowledged is lost.
var aofArgs = []string{"--appendonly", "yes", "--appendfsync", "always"}

// StartRedisAOF starts a redis-server with the append-only file on (fsync on every
// write) in a directory of the test's, on a free loopback port; it is killed when the
// test ends.
func StartRedisAOF(t testing.TB) *RedisServer {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	r := &RedisServer{Addr: fmt.Sprintf("127.0.0.1:%d", port), port: port, dir: t.TempDir()}
	r.Start(t)
	t.Cleanup(r.Kill)
	return r
}

// URL is the server's redis:// URL.
func (r *RedisServer) URL() string { return "redis://" + r.Addr + "/0" }

// Kill stops the server at once (SIGKILL), as a crash would.
func (r *RedisServer) Kill() {
	r.mu.Lock()
	p := r.proc
	r.proc = nil
	r.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}

// Start starts the server (again) on its port and directory; it returns once the
// append-only file is loaded and the server answers.
func (r *RedisServer) Start(t testing.TB) {
	t.Helper()
	addr, cmd, err := startRedisProcess(r.dir, r.port, aofArgs...)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.proc = &RedisProcess{Addr: addr, cmd: cmd}
	r.mu.Unlock()
}
