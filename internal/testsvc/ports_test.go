package testsvc

import (
	"errors"
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
