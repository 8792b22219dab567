package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/reboundhq/rebound/internal/loadgen"
)

// loadgenCmd measures the process role against the ideal worker on the configured
// servers (docs/performance.md): `worker loadgen -events 200000`.
func loadgenCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("worker loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opt loadgen.Options
	fs.StringVar(&opt.NATSURL, "nats-url", orDefault(getenv("REBOUND_NATS_URL"), "nats://127.0.0.1:4222"), "NATS server with JetStream (a private stream is created and removed)")
	fs.StringVar(&opt.RedisURL, "redis-url", orDefault(getenv("REBOUND_REDIS_URL"), "redis://127.0.0.1:6379/0"), "Redis server (a private key prefix is used and removed)")
	fs.IntVar(&opt.Events, "events", 200_000, "events each worker drains (about 5 % are re-sent duplicates)")
	fs.IntVar(&opt.Tenants, "tenants", 50, "tenants the events belong to")
	fs.IntVar(&opt.Domains, "domains", 5000, "receiving domains of the recipients")
	fs.IntVar(&opt.BatchSize, "batch-size", 256, "events per batch, both workers")
	fs.IntVar(&opt.Concurrency, "concurrency", 2, "batches in flight, both workers")
	fs.Float64Var(&opt.PacedSeconds, "paced-seconds", 10, "length of the latency phase (0 skips it)")
	fs.Float64Var(&opt.PacedRate, "paced-rate", 0, "events/s offered in the latency phase (0: half the process role's drain rate)")
	fs.StringVar(&opt.PolicyFile, "policy", getenv("REBOUND_POLICY_FILE"), "the process role's policy file (default: the built-in policy)")
	fs.BoolVar(&opt.SkipIdeal, "skip-ideal", false, "measure the process role only")
	fs.BoolVar(&opt.IdealFirst, "ideal-first", false, "drain with the ideal worker before the process role")
	fs.StringVar(&opt.CPUProfile, "cpuprofile", "", "write the process role's CPU profile (its drain) to this file")
	fs.StringVar(&opt.MemProfile, "memprofile", "", "write the allocations of the process role's drain to this file (FILE.base is the start: go tool pprof -base FILE.base FILE)")
	fs.Func("pids", "server processes whose CPU per event to report, e.g. redis=1234,nats=5678", func(v string) error {
		opt.ServerPIDs = map[string]int{}
		for _, kv := range strings.Split(v, ",") {
			name, pid, ok := strings.Cut(kv, "=")
			n, err := strconv.Atoi(pid)
			if !ok || err != nil {
				return fmt.Errorf("want NAME=PID, got %q", kv)
			}
			opt.ServerPIDs[name] = n
		}
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := orDefault(getenv("REBOUND_LOG_LEVEL"), "warn")
	log, err := newLogger(level, "console", stderr)
	if err != nil {
		return err
	}
	opt.Log = log
	rep, err := loadgen.Run(ctx, opt)
	if err != nil {
		return err
	}
	rep.Print(stdout)
	// The collector's setting changes the worker's CPU per event by about a sixth
	// (docs/performance.md), so the report says which one ran.
	fmt.Fprintf(stdout, "GOGC         : %s\n", orDefault(getenv("GOGC"), "100 (the runtime's default)"))
	return nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
