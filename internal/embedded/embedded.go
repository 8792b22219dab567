// Package embedded starts in-process stand-ins for the services Rebound needs, for the
// demo and for tests that need a server of their own: a real nats-server (the Go
// module, JetStream on a directory) and an in-memory Redis-protocol server. The Redis
// stand-in is for the demo only: it keeps nothing, is not Redis, and tests never use it.
package embedded

import (
	"fmt"
	"os"
	"time"

	"github.com/alicebob/miniredis/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
)

// NATS starts a nats-server with JetStream on a free loopback port, storing in dir (a
// fresh temporary directory when dir is empty). Shutdown stops it.
func NATS(dir string) (*natsserver.Server, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "rebound-nats-")
		if err != nil {
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
		dir = d
	}
	s, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready within 10s")
	}
	return s, nil
}

// Redis starts the in-memory Redis-protocol stand-in (miniredis: it runs the Lua
// scripts Rebound uses) on a free loopback port. Close stops it.
func Redis() (*miniredis.Miniredis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	return m, nil
}
