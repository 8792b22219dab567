// Package testsvc finds or starts the real services that integration tests need: NATS
// with JetStream and Redis. It looks at REBOUND_NATS_URL / REBOUND_REDIS_URL, then at the
// default loopback ports, and otherwise starts its own (an embedded nats-server from
// its Go module, redis-server from PATH). It never skips: a missing service fails the
// test with what to install. It also hands every test its own names and key prefix.
package testsvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/embedded"
	"github.com/reboundhq/rebound/internal/events"
)

var (
	natsOnce, redisOnce sync.Once
	natsURL, redisURL   string
	natsErr, redisErr   error
)

// NATS returns the URL of a NATS server with JetStream.
func NATS(t testing.TB) string {
	t.Helper()
	natsOnce.Do(func() { natsURL, natsErr = findNATS() })
	if natsErr != nil {
		t.Fatalf("no NATS server for integration tests: %v", natsErr)
	}
	return natsURL
}

// Redis returns the URL of a Redis server.
func Redis(t testing.TB) string {
	t.Helper()
	redisOnce.Do(func() { redisURL, redisErr = findRedis() })
	if redisErr != nil {
		t.Fatalf("no Redis server for integration tests: %v", redisErr)
	}
	return redisURL
}

func findNATS() (string, error) {
	if u := os.Getenv("REBOUND_NATS_URL"); u != "" {
		if err := reachable(u, "nats"); err != nil {
			return "", fmt.Errorf("REBOUND_NATS_URL=%s: %w", u, err)
		}
		return u, anchorStream(u)
	}
	const def = "nats://127.0.0.1:4222"
	if reachable(def, "nats") == nil {
		return def, anchorStream(def)
	}
	s, err := embedded.NATS("")
	if err != nil {
		return "", fmt.Errorf("nothing at %s and the embedded nats-server did not start: %w", def, err)
	}
	return s.ClientURL(), nil
}

// AnchorStream is the one stream the tests leave on a shared NATS server, empty.
const AnchorStream = "REBOUND_TEST_ANCHOR"

// anchorStream makes sure a shared server's account always holds a file stream. When
// the account's last stream is deleted, nats-server 2.9 removes the account's store
// directory, and a stream another test creates at that moment fails with "error
// creating store for stream" (seen in CI: tests create and delete streams in
// parallel). With one stream that is never deleted the directory stays.
func anchorStream(url string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: AnchorStream, Subjects: []string{"rebound-test-anchor"}, Storage: jetstream.FileStorage, MaxMsgs: 1,
	})
	if err != nil {
		return fmt.Errorf("%s: the stream kept on a shared server: %w", url, err)
	}
	return nil
}

func findRedis() (string, error) {
	if u := os.Getenv("REBOUND_REDIS_URL"); u != "" {
		if err := reachable(u, "redis"); err != nil {
			return "", fmt.Errorf("REBOUND_REDIS_URL=%s: %w", u, err)
		}
		return u, nil
	}
	const def = "redis://127.0.0.1:6379/0"
	if reachable(def, "redis") == nil {
		return def, nil
	}
	addr, _, err := startRedisProcess(os.TempDir(), 0)
	if err != nil {
		return "", fmt.Errorf("nothing at %s and %w", def, err)
	}
	return "redis://" + addr + "/0", nil
}

// reachable checks that a server of the given kind answers at the URL.
func reachable(raw, kind string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	switch kind {
	case "nats":
		_, err := natsServerID(raw)
		return err
	default:
		opt, err := redis.ParseURL(raw)
		if err != nil {
			return err
		}
		c := redis.NewClient(opt)
		defer c.Close()
		return c.Ping(ctx).Err()
	}
}

// RedisProcess is a redis-server the test started and may kill.
type RedisProcess struct {
	Addr string
	cmd  *exec.Cmd
}

// Port is the server's TCP port.
func (p *RedisProcess) Port() int {
	_, port, _ := net.SplitHostPort(p.Addr)
	n, _ := strconv.Atoi(port)
	return n
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (p *RedisProcess) Kill() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() }

// StartRedis starts a private redis-server on a free loopback port for a test that will
// stop or kill it; it is killed when the test ends.
func StartRedis(t testing.TB, extraArgs ...string) *RedisProcess {
	t.Helper()
	return StartRedisOn(t, 0, extraArgs...)
}

// StartRedisOn is StartRedis on a given port (0: a free one), e.g. to bring a killed
// server back where its clients expect it.
func StartRedisOn(t testing.TB, port int, extraArgs ...string) *RedisProcess {
	t.Helper()
	addr, cmd, err := startRedisProcess(t.TempDir(), port, extraArgs...)
	if err != nil {
		t.Fatal(err)
	}
	p := &RedisProcess{Addr: addr, cmd: cmd}
	t.Cleanup(p.Kill)
	return p
}

func startRedisProcess(dir string, port int, extraArgs ...string) (string, *exec.Cmd, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("redis-server is not on PATH: install it (Debian/Ubuntu: apt-get install redis-server) or set REBOUND_REDIS_URL")
	}
	if port != 0 {
		return launchRedis(bin, dir, port, extraArgs)
	}
	// A free port is free until someone binds it: when another test's server takes it
	// first, start again on another one.
	for attempt := 1; ; attempt++ {
		if port, err = FreePort(); err != nil {
			return "", nil, err
		}
		addr, cmd, err := launchRedis(bin, dir, port, extraArgs)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == 3 {
			return addr, cmd, err
		}
	}
}

// errPortTaken: the port answered, but as another process than the one just started.
var errPortTaken = errors.New("the port is another server's")

// launchRedis starts redis-server on port and returns once it answers — itself: the
// answering server's process_id must be the one just started, since a server that
// cannot bind exits while another test's server on that port would answer the ping.
func launchRedis(bin, dir string, port int, extraArgs []string) (string, *exec.Cmd, error) {
	args := append([]string{"--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, fmt.Sprintf("redis-%d.log", port))}, extraArgs...)
	cmd := exec.Command(bin, args...)
	// The server dies with the test binary, even if the binary is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	password := ""
	for i := 0; i+1 < len(extraArgs); i++ {
		if extraArgs[i] == "--requirepass" {
			password = extraArgs[i+1]
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		pid, err := redisPID(addr, password)
		switch {
		case err == nil && pid == cmd.Process.Pid:
			return addr, cmd, nil
		case err == nil:
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return "", nil, fmt.Errorf("redis-server on %s: %w (process %d, not %d)", addr, errPortTaken, pid, cmd.Process.Pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return "", nil, fmt.Errorf("redis-server on %s did not answer within 10s", addr)
}

// redisPID is the process_id of the Redis server at addr.
func redisPID(addr, password string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password, MaxRetries: -1})
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("INFO server without process_id")
}

// natsServerID connects to the NATS server at raw, checks that JetStream answers
// through it, and returns the ID of the server that answered.
func natsServerID(raw string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	nc, err := nats.Connect(raw, nats.Timeout(2*time.Second), nats.MaxReconnects(0))
	if err != nil {
		return "", err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return "", fmt.Errorf("JetStream not enabled: %w", err)
	}
	return nc.ConnectedServerId(), nil
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago, for a server a
// test starts as a child process (see FreePorts).
func FreePort() (int, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// FreePorts returns n distinct free loopback ports: every listener stays open until
// all are picked, so no port is handed out twice.
//
// The ports come from below the kernel's ephemeral range when it can be read. A port
// the kernel picked for a ":0" listener was free only until it handed it out again —
// to an embedded nats-server of another test (they listen on ":0") or to an outgoing
// connection — and a worker started on it then failed with "address already in use"
// (seen in CI). Below the range, the kernel hands out nothing on its own; only another
// pick, one in thousands, could take the same port.
func FreePorts(n int) ([]int, error) {
	lo, hi := belowEphemeral()
	ports := make([]int, 0, n)
	for range n {
		l, err := listenFree(lo, hi)
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// listenFree listens on a random free port of [lo, hi], or on one the kernel picks
// when the range is empty or every try is taken.
func listenFree(lo, hi int) (net.Listener, error) {
	if hi > lo {
		for range 64 {
			port := lo + mrand.IntN(hi-lo+1)
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				return l, nil
			}
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// belowEphemeral is the port range tests pick from: 10000 up to just below the
// kernel's ephemeral range (Linux's ip_local_port_range), or an empty range when that
// cannot be read or leaves too little room.
func belowEphemeral() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	first, err := strconv.Atoi(f[0])
	if err != nil || first-1 < 10000+1000 {
		return 0, 0
	}
	return 10000, first - 1
}

// ID returns a short random identifier for names that must not collide between tests.
func ID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Prefix returns a Redis key prefix private to the test and deletes its keys afterwards.
func Prefix(t testing.TB, rdb redis.UniversalClient) string {
	t.Helper()
	p := "rbt" + ID() + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		DeletePrefix(ctx, rdb, p)
	})
	return p
}

// DeletePrefix removes every key that starts with prefix.
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) {
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 500 {
				c.Unlink(ctx, batch...)
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			c.Unlink(ctx, batch...)
		}
		return iter.Err()
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		_ = c.ForEachMaster(ctx, del)
	case *redis.Client:
		_ = del(ctx, c)
	}
}

// RedisClient returns a client for the shared Redis, closed when the test ends.
func RedisClient(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Names returns stream, consumer and subject names private to the test and deletes
// its streams afterwards.
func Names(t testing.TB, js jetstream.JetStream) events.Names {
	t.Helper()
	id := ID()
	n := events.Names{SubjectPrefix: "rbt" + id, Stream: "RBT_" + strings.ToUpper(id), DeadStream: "RBT_" + strings.ToUpper(id) + "_DEAD", Consumer: "rbt-" + id}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, n.Stream)
		_ = js.DeleteStream(ctx, n.DeadStream)
		_ = js.DeleteStream(ctx, n.AdvisoryStream())
	})
	return n
}

// JetStream connects to the shared NATS and returns a JetStream context, closed when
// the test ends.
func JetStream(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(NATS(t))
	if err != nil {
		t.Fatalf("connect NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// RedisClientAt returns a client for a Redis at addr (a private server), closed when the test ends.
func RedisClientAt(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
