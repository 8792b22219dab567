package testsvc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The topologies below are real redis-server processes on free loopback ports, private
// to one test and killed when it ends: a Sentinel setup (master, replica, one sentinel)
// and a three-master Redis Cluster. They exist so the state suite can run against every
// topology go-redis's UniversalClient covers, not only a single server.

// Sentinel is a master, a replica of it and one sentinel watching them.
type Sentinel struct {
	Addr       string // the sentinel's address, for redis.FailoverOptions.SentinelAddrs
	MasterName string // the monitored master's name, for redis.FailoverOptions.MasterName

	// Master and Replica are the servers as started; a failover changes their roles
	// (ask MasterAddr which one leads now).
	Master, Replica *RedisProcess

	sentinel *redis.Client
}

// StartSentinel starts a master, a replica and a sentinel monitoring them with quorum 1,
// and returns once the sentinel knows the replica, so a failover can be forced at once.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	// Redis 7 waits 5 s for more replicas before a diskless full sync; there is only
	// ever one (the replica now, the old master after a failover).
	master := StartRedis(t, "--repl-diskless-sync-delay", "0")
	replica := StartRedis(t, "--repl-diskless-sync-delay", "0", "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
	rc := RedisClientAt(t, replica.Addr)
	waitFor(t, 10*time.Second, "replica "+replica.Addr+" in sync with "+master.Addr, func(ctx context.Context) error {
		info, err := rc.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if v := infoField(info, "master_link_status"); v != "up" {
			return fmt.Errorf("master_link_status %q", v)
		}
		return nil
	})

	name := "rbt" + ID()
	dir := t.TempDir()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// Sentinel rewrites its config file at run time, so it gets its own writable copy.
	// down-after is short so that a killed master is noticed within about a second.
	conf := fmt.Sprintf(`port %d
bind 127.0.0.1
daemonize no
dir %s
logfile %s
sentinel monitor %s 127.0.0.1 %d 1
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 10000
sentinel parallel-syncs %s 1
`, port, dir, filepath.Join(dir, "sentinel.log"), name, master.Port(), name, name, name)
	confPath := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	bin, args := sentinelCommand(t, confPath)
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis sentinel: %v (install redis-sentinel or a redis-server with --sentinel support: apt-get install redis-server redis-sentinel)", err)
	}
	proc := &RedisProcess{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	t.Cleanup(proc.Kill)

	s := &Sentinel{Addr: proc.Addr, MasterName: name, Master: master, Replica: replica,
		sentinel: redis.NewClient(&redis.Options{Addr: proc.Addr, MaxRetries: 1, DialTimeout: time.Second})}
	t.Cleanup(func() { _ = s.sentinel.Close() })

	err = poll(15*time.Second, func(ctx context.Context) error {
		replicas, err := s.sentinel.Do(ctx, "SENTINEL", "REPLICAS", name).Slice()
		if err != nil {
			return err
		}
		for _, r := range replicas {
			m := sentinelMap(r)
			if m["ip"]+":"+m["port"] == replica.Addr && m["flags"] == "slave" && m["master-link-status"] == "ok" {
				return nil
			}
		}
		return fmt.Errorf("replica not (yet) usable: %v", replicas)
	})
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "sentinel.log"))
		t.Fatalf("sentinel %s did not come up knowing replica %s: %v\n(a sentinel that exits at start may lack --sentinel support: install redis-sentinel)\nsentinel log:\n%s", proc.Addr, replica.Addr, err, log)
	}
	return s
}

// sentinelCommand returns how to start a sentinel: redis-sentinel when it is on PATH,
// else redis-server in sentinel mode (the same binary on every packaging we know).
func sentinelCommand(t testing.TB, conf string) (string, []string) {
	t.Helper()
	if bin, err := exec.LookPath("redis-sentinel"); err == nil {
		return bin, []string{conf}
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("neither redis-sentinel nor redis-server is on PATH: install them (Debian/Ubuntu: apt-get install redis-server redis-sentinel)")
	}
	return bin, []string{conf, "--sentinel"}
}

// MasterAddr asks the sentinel which server is the master now.
func (s *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	v, err := s.sentinel.Do(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.MasterName).StringSlice()
	if err != nil {
		return "", fmt.Errorf("sentinel get-master-addr-by-name %s: %w", s.MasterName, err)
	}
	if len(v) != 2 {
		return "", fmt.Errorf("sentinel get-master-addr-by-name %s: %v", s.MasterName, v)
	}
	return v[0] + ":" + v[1], nil
}

// WaitReplicated waits until the replica has received every write the master had
// accepted when it was called. Replication is asynchronous: a failover right after a
// write may otherwise lose it, which is Redis's documented behaviour, not Rebound's.
// (WAIT would only cover the writes of the connection it runs on; a pooled client
// spreads writes over many.)
func (s *Sentinel) WaitReplicated(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	masterAddr, err := s.MasterAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	replicaAddr := s.Replica.Addr
	if masterAddr == s.Replica.Addr {
		replicaAddr = s.Master.Addr
	}
	info, err := RedisClientAt(t, masterAddr).Info(ctx, "replication").Result()
	if err != nil {
		t.Fatalf("master %s: %v", masterAddr, err)
	}
	want, _ := strconv.ParseInt(infoField(info, "master_repl_offset"), 10, 64)
	replica := RedisClientAt(t, replicaAddr)
	waitFor(t, 10*time.Second, fmt.Sprintf("replica %s at offset %d", replicaAddr, want), func(ctx context.Context) error {
		info, err := replica.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		got, _ := strconv.ParseInt(infoField(info, "slave_repl_offset"), 10, 64)
		if got < want {
			return fmt.Errorf("at offset %d", got)
		}
		return nil
	})
}

// Failover waits until the replica has every write (WaitReplicated), forces a failover
// with SENTINEL FAILOVER and returns the new master's address once it is promoted.
func (s *Sentinel) Failover(t testing.TB) string {
	t.Helper()
	s.WaitReplicated(t)
	ctx := context.Background()
	old, err := s.MasterAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Right after start (or a previous failover) the sentinel may still refuse with
	// NOGOODSLAVE or INPROG until it has fresh INFO from the replica.
	waitFor(t, 15*time.Second, "sentinel to accept SENTINEL FAILOVER", func(ctx context.Context) error {
		return s.sentinel.Do(ctx, "SENTINEL", "FAILOVER", s.MasterName).Err()
	})
	return s.WaitPromoted(t, old)
}

// KillMaster kills the current master (SIGKILL, as a crash) and returns the new
// master's address once the sentinel has promoted the replica. Writes the replica had
// not received are lost; call WaitReplicated first to rule that out.
func (s *Sentinel) KillMaster(t testing.TB) string {
	t.Helper()
	old, err := s.MasterAddr(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	switch old {
	case s.Master.Addr:
		s.Master.Kill()
	case s.Replica.Addr:
		s.Replica.Kill()
	default:
		t.Fatalf("sentinel names master %s, neither of the servers started", old)
	}
	return s.WaitPromoted(t, old)
}

// WaitPromoted waits until the sentinel names a master other than old and that server
// says it is a master, and returns its address.
func (s *Sentinel) WaitPromoted(t testing.TB, old string) string {
	t.Helper()
	var addr string
	waitFor(t, 30*time.Second, "a new master in place of "+old, func(ctx context.Context) error {
		a, err := s.MasterAddr(ctx)
		if err != nil {
			return err
		}
		if a == old {
			return fmt.Errorf("sentinel still names %s", a)
		}
		var role []any
		if err := withClient(a, func(c *redis.Client) (err error) { role, err = c.Do(ctx, "ROLE").Slice(); return err }); err != nil {
			return err
		}
		if len(role) == 0 || role[0] != "master" {
			return fmt.Errorf("%s has role %v", a, role)
		}
		addr = a
		return nil
	})
	return addr
}

// Cluster is a Redis Cluster of three masters and no replicas.
type Cluster struct {
	Addrs []string // the masters, for redis.ClusterOptions.Addrs
	Nodes []*RedisProcess
}

// StartCluster starts three redis-server processes with --cluster-enabled yes, each in
// its own directory with its own nodes.conf, joins them with redis-cli --cluster create
// and returns once every node reports cluster_state:ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("redis-cli is not on PATH; Cluster tests need it to create the cluster: install it (Debian/Ubuntu: apt-get install redis-tools)")
	}
	if v := redisServerVersion(); majorVersion(v) > 0 && majorVersion(v) < 7 {
		t.Fatalf("redis-server %s on PATH; Cluster tests need Redis 7 or newer (for --cluster-port): install a newer redis-server", v)
	}
	c := &Cluster{}
	for range 3 {
		// The cluster bus defaults to port+10000, which may be taken or beyond 65535 for
		// an ephemeral port; Redis 7 lets us name a free one.
		bus, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		n := StartRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(bus), "--cluster-node-timeout", "2000")
		c.Nodes = append(c.Nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, n := range c.Nodes {
		node := RedisClientAt(t, n.Addr)
		waitFor(t, 20*time.Second, "cluster_state:ok on "+n.Addr, func(ctx context.Context) error {
			info, err := node.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if infoField(info, "cluster_state") != "ok" || infoField(info, "cluster_known_nodes") != "3" {
				return fmt.Errorf("cluster_state %s, %s known nodes", infoField(info, "cluster_state"), infoField(info, "cluster_known_nodes"))
			}
			return nil
		})
	}
	return c
}

// Client returns a cluster client for the cluster, closed when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, DialTimeout: time.Second})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// redisServerVersion returns the version of the redis-server on PATH ("7.0.15"), or ""
// when it cannot tell (StartRedis then reports what is missing).
func redisServerVersion() string {
	out, err := exec.Command("redis-server", "--version").Output()
	if err != nil {
		return ""
	}
	_, v, ok := strings.Cut(string(out), " v=")
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, " ")
	return v
}

// majorVersion returns the leading number of a version such as "7.0.15".
func majorVersion(v string) int {
	major, _, _ := strings.Cut(v, ".")
	n, _ := strconv.Atoi(major)
	return n
}

// waitFor retries check until it returns nil, failing the test with what it waited for
// and the last error when timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, check func(ctx context.Context) error) {
	t.Helper()
	if err := poll(timeout, check); err != nil {
		t.Fatalf("waited %s for %s: %v", timeout, what, err)
	}
}

// poll retries check until it returns nil or timeout passes, and returns the last error.
func poll(timeout time.Duration, check func(ctx context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := check(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// withClient runs f with a short-lived client of the server at addr.
func withClient(addr string, f func(c *redis.Client) error) error {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	return f(c)
}

// infoField returns one "name:value" field of an INFO or CLUSTER INFO reply.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// sentinelMap turns one entry of SENTINEL REPLICAS (RESP2 flat list or RESP3 map) into a map.
func sentinelMap(v any) map[string]string {
	m := map[string]string{}
	switch e := v.(type) {
	case []any:
		for i := 0; i+1 < len(e); i += 2 {
			m[fmt.Sprint(e[i])] = fmt.Sprint(e[i+1])
		}
	case map[any]any:
		for k, v := range e {
			m[fmt.Sprint(k)] = fmt.Sprint(v)
		}
	}
	return m
}
