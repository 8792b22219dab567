package testsvc

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
)

// TestRedisPortTakenDetected: a redis-server started on a port another server holds
// cannot bind and exits, while the other answers the ping; the start must say so, not
// hand the test the other server.
func TestRedisPortTakenDetected(t *testing.T) {
	other := StartRedis(t)
	_, _, err := startRedisProcess(t.TempDir(), other.Port())
	if !errors.Is(err, errPortTaken) {
		t.Fatalf("start on a held port: %v, want %v", err, errPortTaken)
	}
}

// TestNATSPortTakenDetected: the same for nats-server, whose launch compares the ID
// of the server that answers with the one its own log gives.
func TestNATSPortTakenDetected(t *testing.T) {
	other := StartNATSServer(t)
	s := newNATSServerOn(t, "n1", other.Port)
	err := s.launch()
	if err == nil || !strings.Contains(err.Error(), "exited at start") {
		t.Fatalf("launch on a held port: %v, want an exit at start", err)
	}
}

// TestFreePortsBelowEphemeral: the ports are distinct, free once returned, and, where
// the kernel's ephemeral range can be read, below it, so that no ":0" listener or
// outgoing connection takes one before the child process binds it.
func TestFreePortsBelowEphemeral(t *testing.T) {
	ports, err := FreePorts(20)
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := belowEphemeral()
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d handed out twice in %v", p, ports)
		}
		seen[p] = true
		if hi > lo && (p < lo || p > hi) {
			t.Errorf("port %d outside [%d, %d], the range below the ephemeral ports", p, lo, hi)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d not free after FreePorts: %v", p, err)
		}
		l.Close()
	}
	if _, err := os.Stat("/proc/sys/net/ipv4/ip_local_port_range"); err == nil && hi <= lo {
		t.Errorf("the ephemeral range is readable but no range below it was found")
	}
}
