// Package loadgen measures the process role end to end against the servers it runs on:
// it publishes canonical events with a realistic mix, drains them with the process role
// (the app, as `worker serve` runs it) and with an "ideal worker" that does only what any
// worker must (decode, one pipelined Lua round trip per batch with five Redis writes per
// event, explicit acks), and reports both rates, their ratio, the process role's latency
// from publish to applied at a paced rate, and its resident memory.
//
// Both workers run in one process, one after the other, on the same stream (one
// consumer each) and the same Redis: a ratio taken in one run is what the comparison
// is about, since absolute rates on a shared machine move by ±15 % between runs.
package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/app"
	"github.com/reboundhq/rebound/internal/config"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/process"
	"github.com/reboundhq/rebound/internal/stream"
)

// Options say what to run.
type Options struct {
	NATSURL  string
	RedisURL string
	Events   int // events drained by each worker (duplicates included)
	// Tenants and Domains spread the events: recipients live on Domains receiving
	// domains, sending paths belong to Tenants tenants.
	Tenants, Domains int
	BatchSize        int
	Concurrency      int // batches in flight, for both workers
	// PacedSeconds is how long the latency phase publishes at PacedRate events/s (0: half
	// the process role's drain rate); 0 seconds skips the phase.
	PacedSeconds float64
	PacedRate    float64
	PolicyFile   string // the process role's policy (default: the built-in one)
	SkipIdeal    bool
	IdealFirst   bool   // drain with the ideal worker first (order effects)
	CPUProfile   string // file for the process role's CPU profile (its drain only)
	MemProfile   string // file for the allocations made during the process role's drain
	Seed         uint64
	Log          *zap.Logger
	// ServerPIDs names server processes on this machine (e.g. "redis" and "nats") whose
	// CPU time is reported per phase, from /proc: CPU per event is steadier than rates
	// on a shared machine.
	ServerPIDs map[string]int
}

// Report is what one run measured.
type Report struct {
	Events       int
	ProcessRate  float64 // events/s
	ProcessDrain time.Duration
	IdealRate    float64
	IdealDrain   time.Duration
	PacedRate    float64 // events/s offered in the latency phase
	PacedEvents  int
	LatencyP50   time.Duration
	LatencyP99   time.Duration
	LatencyMax   time.Duration
	// IdealLatencyP50 and IdealLatencyP99 are the ideal worker's, at the same rate.
	IdealLatencyP50, IdealLatencyP99 time.Duration
	PeakRSS                          int64 // bytes, sampled during the process role's phases
	LoadBefore                       string
	LoadAfter                        string
	ProcessConsumer                  jetstream.ConsumerInfo
	StallRecoveries                  float64
	ProcessedReported                int64
	// ProcessCPU and IdealCPU are the CPU seconds each drain took, per process: "self"
	// (this process: the worker under test) and each of Options.ServerPIDs.
	ProcessCPU, IdealCPU map[string]float64
}

// Ratio is the process role's rate over the ideal worker's.
func (r Report) Ratio() float64 {
	if r.IdealRate == 0 {
		return 0
	}
	return r.ProcessRate / r.IdealRate
}

// CPURatio is the ideal worker's CPU per event over the process role's, over the same
// parts (the worker itself and each server named with -pids), 0 when either was not
// measured or they differ in parts. When everything shares the machine's cores, as here,
// it bounds the rate ratio and moves much less from run to run: other work on the
// machine changes how fast a run goes more than what each event costs.
func (r Report) CPURatio() float64 {
	if len(r.ProcessCPU) == 0 || len(r.ProcessCPU) != len(r.IdealCPU) {
		return 0
	}
	var role, ideal float64
	for n, v := range r.ProcessCPU {
		w, ok := r.IdealCPU[n]
		if !ok {
			return 0
		}
		role += v
		ideal += w
	}
	if role == 0 {
		return 0
	}
	return ideal / role
}

// Print writes the report for a reader.
func (r Report) Print(w io.Writer) {
	fmt.Fprintf(w, "load average before: %s, after: %s\n", r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(w, "process role : %d events in %s = %.0f events/s\n", r.Events, r.ProcessDrain.Round(time.Millisecond), r.ProcessRate)
	if r.IdealRate > 0 {
		fmt.Fprintf(w, "ideal worker : %d events in %s = %.0f events/s\n", r.Events, r.IdealDrain.Round(time.Millisecond), r.IdealRate)
		fmt.Fprintf(w, "ratio        : %.2f\n", r.Ratio())
	}
	for _, c := range []struct {
		name string
		cpu  map[string]float64
	}{{"process role", r.ProcessCPU}, {"ideal worker", r.IdealCPU}} {
		if len(c.cpu) == 0 {
			continue
		}
		names := slices.Sorted(maps.Keys(c.cpu))
		var parts []string
		var total float64
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s %.1f", n, c.cpu[n]/float64(r.Events)*1e6))
			total += c.cpu[n]
		}
		fmt.Fprintf(w, "CPU µs/event, %s: %s; total %.1f\n", c.name, strings.Join(parts, ", "), total/float64(r.Events)*1e6)
	}
	if cr := r.CPURatio(); cr > 0 {
		fmt.Fprintf(w, "CPU ratio    : %.2f (the ideal worker's CPU per event over the process role's)\n", cr)
	}
	if r.PacedEvents > 0 {
		fmt.Fprintf(w, "latency at %.0f events/s (%d events): p50 %s, p99 %s, max %s (publish to applied)\n",
			r.PacedRate, r.PacedEvents, r.LatencyP50.Round(10*time.Microsecond), r.LatencyP99.Round(10*time.Microsecond), r.LatencyMax.Round(time.Millisecond))
	}
	if r.IdealLatencyP50 > 0 {
		fmt.Fprintf(w, "ideal worker latency at the same rate: p50 %s, p99 %s\n", r.IdealLatencyP50.Round(10*time.Microsecond), r.IdealLatencyP99.Round(10*time.Microsecond))
	}
	fmt.Fprintf(w, "peak RSS     : %.1f MiB (the whole loadgen process, sampled during the process role's phases)\n", float64(r.PeakRSS)/(1<<20))
	fmt.Fprintf(w, "stall recoveries: %.0f\n", r.StallRecoveries)
}

func (o *Options) defaults() {
	if o.NATSURL == "" {
		o.NATSURL = "nats://127.0.0.1:4222"
	}
	if o.RedisURL == "" {
		o.RedisURL = "redis://127.0.0.1:6379/0"
	}
	if o.Events <= 0 {
		o.Events = 200_000
	}
	if o.Tenants <= 0 {
		o.Tenants = 50
	}
	if o.Domains <= 0 {
		o.Domains = 5000
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.Seed == 0 {
		o.Seed = 12
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
}

// Run performs one measurement on private stream, consumer and key names, and removes
// them afterwards.
func Run(ctx context.Context, opt Options) (Report, error) {
	opt.defaults()
	rep := Report{Events: opt.Events, LoadBefore: loadAvg()}
	id := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	names := events.Names{SubjectPrefix: "lg" + id, Stream: "LG_" + strings.ToUpper(id), DeadStream: "LG_" + strings.ToUpper(id) + "_DEAD", Consumer: "lg-" + id}
	prefix := "lg" + id + ":"

	nc, err := nats.Connect(opt.NATSURL, nats.Name("rebound-loadgen"))
	if err != nil {
		return rep, fmt.Errorf("connect NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return rep, err
	}
	ropt, err := redis.ParseURL(opt.RedisURL)
	if err != nil {
		return rep, fmt.Errorf("redis url: %w", err)
	}
	rdb := redis.NewClient(ropt)
	defer rdb.Close()
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		_ = js.DeleteStream(cctx, names.Stream)
		_ = js.DeleteStream(cctx, names.DeadStream)
		_ = js.DeleteStream(cctx, names.AdvisoryStream())
		deletePrefix(cctx, rdb, prefix)
	}()

	settings := stream.DefaultSettings()
	if _, err := stream.Provision(ctx, js, names, settings); err != nil {
		return rep, err
	}
	idealName := names.Consumer + "-ideal"
	if !opt.SkipIdeal {
		if _, err := js.CreateOrUpdateConsumer(ctx, names.Stream, jetstream.ConsumerConfig{
			Durable: idealName, FilterSubject: names.EventSubjects(), AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: settings.AckWait, MaxDeliver: settings.MaxDeliver, MaxAckPending: settings.MaxAckPending, DeliverPolicy: jetstream.DeliverAllPolicy,
		}); err != nil {
			return rep, fmt.Errorf("ideal consumer: %w", err)
		}
	}

	gen := newGenerator(opt, id)
	// Prefill: both workers drain the same N events from the stream.
	if err := gen.publish(ctx, js, names, opt.Events, 0, nil); err != nil {
		return rep, err
	}

	// The process role, configured as `worker serve` with REBOUND_ROLES=process.
	cfg := config.Default()
	cfg.NATSURL, cfg.RedisURL, cfg.RedisPrefix, cfg.Names = opt.NATSURL, opt.RedisURL, prefix, names
	cfg.Roles = []config.Role{config.RoleProcess}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.AdminAddr = "127.0.0.1:0" // any free port: the default 9090 may be taken
	cfg.BatchSize, cfg.Concurrency = opt.BatchSize, opt.Concurrency
	cfg.PolicyFile = opt.PolicyFile
	lat := newLatencies(gen)
	a, err := app.New(ctx, cfg, opt.Log, app.Hooks{OnProcessed: lat.applied})
	if err != nil {
		return rep, err
	}
	defer a.Close()

	drainIdeal := func() error {
		if opt.SkipIdeal {
			return nil
		}
		start := time.Now()
		cpu0 := cpuTimes(opt.ServerPIDs)
		defer func() { rep.IdealCPU = cpuSince(cpu0, opt.ServerPIDs) }()
		if err := runIdeal(ctx, js, rdb, names, idealName, prefix+"ideal:", opt, opt.Events, nil); err != nil {
			return err
		}
		rep.IdealDrain = time.Since(start)
		rep.IdealRate = float64(opt.Events) / rep.IdealDrain.Seconds()
		return nil
	}
	if opt.IdealFirst {
		if err := drainIdeal(); err != nil {
			return rep, err
		}
	}

	rss := sampleRSS()
	stopProfile, err := startProfiles(opt)
	if err != nil {
		return rep, err
	}
	runCtx, stopApp := context.WithCancel(context.WithoutCancel(ctx))
	runErr := make(chan error, 1)
	start := time.Now()
	cpu0 := cpuTimes(opt.ServerPIDs)
	go func() { runErr <- a.Run(runCtx) }()
	if err := lat.waitCount(ctx, int64(opt.Events), runErr); err != nil {
		stopApp()
		return rep, err
	}
	rep.ProcessCPU = cpuSince(cpu0, opt.ServerPIDs)
	rep.ProcessDrain = lat.last().Sub(start)
	rep.ProcessRate = float64(opt.Events) / rep.ProcessDrain.Seconds()
	if err := stopProfile(); err != nil {
		stopApp()
		return rep, err
	}
	stopRole := sync.OnceFunc(func() {
		stopApp()
		<-runErr
	})
	defer stopRole()

	if !opt.IdealFirst {
		if err := drainIdeal(); err != nil {
			return rep, err
		}
	}

	if opt.PacedSeconds > 0 {
		rate := opt.PacedRate
		if rate <= 0 {
			rate = rep.ProcessRate / 2
		}
		n := int(rate * opt.PacedSeconds)
		rep.PacedRate, rep.PacedEvents = rate, n
		lat.startRecording()
		if err := gen.publish(ctx, js, names, n, rate, lat.published); err != nil {
			return rep, err
		}
		if err := lat.waitCount(ctx, int64(opt.Events+n), runErr); err != nil {
			return rep, err
		}
		rep.LatencyP50, rep.LatencyP99, rep.LatencyMax = lat.percentiles()
	}
	rep.PeakRSS = rss()
	rep.ProcessedReported = lat.count.Load()
	// Acks travel asynchronously: the consumer is read once they have all landed (or
	// after ten seconds, and the report shows what was left).
	if c, err := js.Consumer(ctx, names.Stream, names.Consumer); err == nil {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			info, err := c.Info(ctx)
			if err != nil {
				break
			}
			rep.ProcessConsumer = *info
			if (info.NumAckPending == 0 && info.NumPending == 0) || time.Now().After(deadline) {
				break
			}
		}
	}
	rep.StallRecoveries = counterValue(a.Metrics().Registry, "rebound_consumer_stall_recoveries_total")

	// The ideal worker's latency at the same offered rate, with the process role
	// stopped: what the machine and the servers allow, to read the role's tail against.
	if rep.PacedEvents > 0 && !opt.SkipIdeal {
		stopRole()
		// A consumer of its own that starts after everything published so far.
		latName := idealName + "-latency"
		if _, err := js.CreateOrUpdateConsumer(ctx, names.Stream, jetstream.ConsumerConfig{
			Durable: latName, FilterSubject: names.EventSubjects(), AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: settings.AckWait, MaxDeliver: settings.MaxDeliver, MaxAckPending: settings.MaxAckPending, DeliverPolicy: jetstream.DeliverNewPolicy,
		}); err != nil {
			return rep, fmt.Errorf("ideal latency consumer: %w", err)
		}
		n := rep.PacedEvents
		ideal := newLatencies(gen)
		ideal.startRecording()
		done := make(chan error, 1)
		go func() {
			done <- runIdeal(ctx, js, rdb, names, latName, prefix+"ideal:", opt, n, func(id string) {
				ideal.applied(process.Result{Event: events.Event{ID: id}})
			})
		}()
		if err := gen.publish(ctx, js, names, n, rep.PacedRate, ideal.published); err != nil {
			return rep, err
		}
		if err := <-done; err != nil {
			return rep, err
		}
		rep.IdealLatencyP50, rep.IdealLatencyP99, _ = ideal.percentiles()
	}
	rep.LoadAfter = loadAvg()
	return rep, nil
}

// generator makes the event mix: deterministic for a seed, one event per call.
type generator struct {
	opt    Options
	run    string
	rnd    *rand.Rand
	next   int      // events generated so far
	recent [][]byte // recently published payloads, re-sent as duplicates
}

func newGenerator(opt Options, run string) *generator {
	return &generator{opt: opt, run: run, rnd: rand.New(rand.NewPCG(opt.Seed, 0x5eed))}
}

// The replies of the mix, each as an ESP would report it.
var (
	hardReplies = []events.Reply{
		{Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 The email account that you tried to reach does not exist."},
		{Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 <x>: Recipient address rejected: User unknown in virtual mailbox table"},
		{Code: 554, Enhanced: "5.1.2", Text: "554 5.1.2 Bad destination host: domain does not exist"},
		{Code: 550, Enhanced: "5.2.1", Text: "550 5.2.1 The email account that you tried to reach is disabled."},
	}
	softReplies = []events.Reply{
		{Code: 452, Enhanced: "4.2.2", Text: "452 4.2.2 The email account that you tried to reach is over quota."},
		{Code: 552, Enhanced: "5.2.2", Text: "552 5.2.2 Mailbox full"},
		{Code: 421, Enhanced: "4.7.0", Text: "421 4.7.0 Temporary System Problem. Try again later."},
		{Code: 451, Enhanced: "4.3.0", Text: "451 4.3.0 Mail server temporarily rejected message."},
	}
	senderReplies = []events.Reply{
		{Code: 530, Enhanced: "5.7.0", Text: "530 5.7.0 Authentication required"},
		{Code: 554, Enhanced: "5.7.1", Text: "554 5.7.1 Service unavailable; Client host [203.0.113.9] blocked using zen.spamhaus.org"},
		{Code: 550, Enhanced: "5.7.26", Text: "550 5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked. DMARC policy."},
	}
)

// event makes event n of the mix: 35 % hard bounces, 22 % soft bounces and deferrals,
// 6 % sender-side faults, 4 % complaints, 30 % deliveries, 3 % replies no rule knows.
// Duplicates are added by publish.
func (g *generator) event(n int) events.Event {
	r := g.rnd
	tenant := r.IntN(g.opt.Tenants)
	domain := r.IntN(g.opt.Domains)
	e := events.Event{
		ID: "generic:lg-" + g.run + "-" + strconv.Itoa(n), ESP: "generic", Type: events.TypeBounce,
		OccurredAt: time.Now().UTC(), Recipient: "user" + strconv.Itoa(r.IntN(40)) + "@d" + strconv.Itoa(domain) + ".example",
		Sender: "news@mail.t" + strconv.Itoa(tenant) + ".example", SendingDomain: "mail.t" + strconv.Itoa(tenant) + ".example",
		SendingIP: "198.51.100." + strconv.Itoa(tenant%250+1), Tenant: "t" + strconv.Itoa(tenant), MTA: "mx.d" + strconv.Itoa(domain) + ".example",
		MessageID: "<" + strconv.Itoa(n) + "@mail.example>",
	}
	switch p := r.IntN(100); {
	case p < 35:
		e.Reply = hardReplies[r.IntN(len(hardReplies))]
	case p < 57:
		e.Reply = softReplies[r.IntN(len(softReplies))]
		if e.Reply.Code < 500 {
			e.Type = events.TypeDeferral
		}
	case p < 63:
		e.Reply = senderReplies[r.IntN(len(senderReplies))]
	case p < 67:
		e.Type = events.TypeComplaint
	case p < 97:
		e.Type = events.TypeDelivered
	default:
		e.Reply = events.Reply{Code: 550, Text: "550 message refused by local policy rule " + strconv.Itoa(r.IntN(20))}
	}
	return e
}

// publish sends n messages (about 5 % of them re-sends of a recent event, as an ESP's
// retry or a redelivery would produce), paced at rate events/s when rate > 0, and
// waits for every acknowledgement. onPublish, if set, learns each new event's number.
func (g *generator) publish(ctx context.Context, js jetstream.JetStream, names events.Names, n int, rate float64, onPublish func(n int, at time.Time)) error {
	subject := names.EventSubject("generic")
	start := time.Now()
	for i := range n {
		if rate > 0 {
			if due := start.Add(time.Duration(float64(i) / rate * float64(time.Second))); time.Until(due) > 0 {
				time.Sleep(time.Until(due))
			}
		}
		var data []byte
		msgID := ""
		if len(g.recent) > 16 && g.rnd.IntN(100) < 5 {
			data = g.recent[g.rnd.IntN(len(g.recent))]
			msgID = "dup-" + strconv.Itoa(i) + "-" + g.run + strconv.Itoa(g.next) // JetStream must store it: the worker absorbs it
		} else {
			e := g.event(g.next)
			var err error
			if data, err = events.Marshal(&e); err != nil {
				return err
			}
			msgID = e.ID
			if onPublish != nil {
				onPublish(g.next, time.Now())
			}
			g.next++
			if len(g.recent) < 256 {
				g.recent = append(g.recent, data)
			} else {
				g.recent[g.rnd.IntN(len(g.recent))] = data
			}
		}
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{jetstream.MsgIDHeader: []string{msgID}}}
		if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(10*time.Second)); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Minute):
		return errors.New("publish: acknowledgements missing after a minute")
	}
	return nil
}

// latencies counts the process role's applied events and, in the paced phase, the time
// from each new event's publication to its first application.
type latencies struct {
	gen       *generator
	prefix    string
	count     atomic.Int64
	lastNanos atomic.Int64
	recording atomic.Bool
	mu        sync.Mutex
	pubAt     map[int]int64
	took      []time.Duration
}

func newLatencies(g *generator) *latencies {
	return &latencies{gen: g, prefix: "generic:lg-" + g.run + "-", pubAt: map[int]int64{}}
}

func (l *latencies) published(n int, at time.Time) {
	l.mu.Lock()
	l.pubAt[n] = at.UnixNano()
	l.mu.Unlock()
}

func (l *latencies) startRecording() { l.recording.Store(true) }

func (l *latencies) applied(r process.Result) {
	now := time.Now().UnixNano()
	l.lastNanos.Store(now)
	l.count.Add(1)
	if !l.recording.Load() || r.Outcome.Duplicate {
		return
	}
	n, err := strconv.Atoi(strings.TrimPrefix(r.Event.ID, l.prefix))
	if err != nil {
		return
	}
	l.mu.Lock()
	if at, ok := l.pubAt[n]; ok {
		l.took = append(l.took, time.Duration(now-at))
		delete(l.pubAt, n)
	}
	l.mu.Unlock()
}

func (l *latencies) last() time.Time { return time.Unix(0, l.lastNanos.Load()) }

// waitCount waits until n events have been reported applied; it fails when the role
// stops or nothing is applied for a minute.
func (l *latencies) waitCount(ctx context.Context, n int64, runErr chan error) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	seen, since := l.count.Load(), time.Now()
	for l.count.Load() < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-runErr:
			runErr <- err
			return fmt.Errorf("process role stopped after %d of %d events: %v", l.count.Load(), n, err)
		case <-t.C:
		}
		if c := l.count.Load(); c != seen {
			seen, since = c, time.Now()
		} else if time.Since(since) > time.Minute {
			return fmt.Errorf("process role applied nothing for a minute (%d of %d)", c, n)
		}
	}
	return nil
}

func (l *latencies) percentiles() (p50, p99, maxd time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.took) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(l.took)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.50), at(0.99), s[len(s)-1]
}

// startProfiles starts the CPU profile and notes the allocations so far; the returned
// function stops the CPU profile and writes the allocations made in between.
func startProfiles(opt Options) (func() error, error) {
	var cpu *os.File
	if opt.CPUProfile != "" {
		f, err := os.Create(opt.CPUProfile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		cpu = f
	}
	if opt.MemProfile != "" {
		runtime.GC()
		if err := writeHeap(opt.MemProfile + ".base"); err != nil {
			return nil, err
		}
	}
	return func() error {
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				return err
			}
		}
		if opt.MemProfile != "" {
			return writeHeap(opt.MemProfile)
		}
		return nil
	}, nil
}

func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

// sampleRSS samples this process's resident set until the returned function is called,
// which returns the peak.
func sampleRSS() func() int64 {
	var peak atomic.Int64
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v := rss(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		return peak.Load()
	}
}

func rss() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func deletePrefix(ctx context.Context, rdb *redis.Client, prefix string) {
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			rdb.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		rdb.Unlink(ctx, keys...)
	}
}

// counterValue sums a counter's series in a registry (0 when it is not there).
func counterValue(g prometheus.Gatherer, name string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// cpuTimes reads the CPU seconds (user + system) used so far by this process and by
// each of pids.
func cpuTimes(pids map[string]int) map[string]float64 {
	out := map[string]float64{"self": procCPU("self")}
	for name, pid := range pids {
		out[name] = procCPU(strconv.Itoa(pid))
	}
	return out
}

func cpuSince(before map[string]float64, pids map[string]int) map[string]float64 {
	now := cpuTimes(pids)
	for k, v := range before {
		now[k] -= v
	}
	return now
}

// procCPU is utime + stime of /proc/<pid>/stat in seconds (USER_HZ is 100 on Linux).
func procCPU(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields are counted after its closing ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}
