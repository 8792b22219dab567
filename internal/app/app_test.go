package app

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/config"
	"github.com/reboundhq/rebound/internal/testsvc"
)

func TestRedisClientCarriesCredentialsToEveryTopology(t *testing.T) {
	t.Parallel()
	srv := testsvc.StartRedis(t, "--requirepass", "s3cret")
	ctx := context.Background()

	cfg := config.Default()
	cfg.RedisURL = "redis://:s3cret@" + srv.Addr + "/0"
	c, err := RedisClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("single Redis with the password from the URL: %v", err)
	}
	cfg.RedisURL = "redis://:wrong@" + srv.Addr + "/0"
	bad, _ := RedisClient(cfg)
	defer bad.Close()
	if err := bad.Ping(ctx).Err(); err == nil {
		t.Fatal("a wrong password was accepted: the test would prove nothing")
	}

	cfg.RedisURL = "rediss://rebound:s3cret@127.0.0.1:6379/2"
	cfg.RedisSentinelAddrs, cfg.RedisSentinelMaster = []string{"127.0.0.1:26379"}, "mymaster"
	fc, err := RedisClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	if o := fc.(*redis.Client).Options(); o.Username != "rebound" || o.Password != "s3cret" || o.DB != 2 || o.TLSConfig == nil {
		t.Fatalf("sentinel client options = user %q db %d tls %v: want the URL's credentials, database and TLS", o.Username, o.DB, o.TLSConfig != nil)
	}
	cfg.RedisSentinelAddrs, cfg.RedisClusterAddrs = nil, []string{"127.0.0.1:7000"}
	cc, err := RedisClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if o := cc.(*redis.ClusterClient).Options(); o.Username != "rebound" || o.Password != "s3cret" || o.TLSConfig == nil {
		t.Fatalf("cluster client options: want the URL's credentials and TLS")
	}
}

// A webhook adapter's bad setting stops the process before it connects to anything: the
// error names the setting, not an unreachable server (NATS and Redis here point at a
// loopback port nobody listens on).
func TestNewRefusesBadWebhookSettingsBeforeConnecting(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()

	for _, tc := range []struct {
		name, env, value, want string
	}{
		{"body limit", "REBOUND_SENDGRID_MAX_BODY_BYTES", "12", "REBOUND_SENDGRID_MAX_BODY_BYTES"},
		{"adapter secret", "REBOUND_BREVO_TOKEN", "two words", "REBOUND_BREVO_TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Roles = []config.Role{config.RoleIngest, config.RoleProcess}
			cfg.NATSURL = "nats://" + dead
			cfg.RedisURL = "redis://" + dead
			cfg.Getenv = func(k string) string {
				if k == tc.env {
					return tc.value
				}
				return ""
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			a, err := New(ctx, cfg, zap.NewNop(), Hooks{})
			if err == nil {
				a.Close()
				t.Fatal("New accepted the setting")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v; want an error naming %s (found before connecting)", err, tc.want)
			}
		})
	}
}
