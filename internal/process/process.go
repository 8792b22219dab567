package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/stats"
	"github.com/reboundhq/rebound/internal/stream"
	"github.com/reboundhq/rebound/internal/suppress"
)

// Config wires a Processor.
type Config struct {
	Consumer jetstream.Consumer
	Store    *suppress.Store
	Alerts   *alert.Store // sender-side incidents
	// Guard is the mass-bounce guard (the policy's mass_bounce settings apply per
	// batch); nil runs without one.
	Guard   *guard.Guard
	Catalog *catalog.Catalog
	Policy  func() *policy.Policy // read per batch so a reloaded policy applies at once
	// Shadow, if set, returns a second policy that is evaluated on every event but never
	// applied; where it disagrees with the live one, the disagreement is recorded.
	Shadow    func() *policy.Policy
	Publisher *stream.Publisher // for dead letters
	Metrics   *metrics.Metrics
	Log       *zap.Logger
	BatchSize int
	// Concurrency is how many batches are processed at once (default 2): with one,
	// NATS, Redis and the worker take turns and the cores idle between them.
	Concurrency int
	MaxDeliver  int           // the consumer's MaxDeliver: the last delivery is dead-lettered instead of retried
	MaxBackoff  time.Duration // cap of the retry delay (default 1 minute)
	// OnProcessed, if set, is called after each event is acknowledged (the demo waits on it).
	OnProcessed func(Result)

	// Clock is the time the processor reads and waits on (default: the real one).
	Clock Clock
	// Ping checks Redis while consumption is paused (default Store.Ping).
	Ping func(context.Context) error
	// StallCheck is how often the consumer is checked for a stall: nothing received for
	// that long while the stream has pending events (default 5 s).
	StallCheck time.Duration
}

// Result is what happened to one event; the demo prints it and tests inspect it.
type Result struct {
	Event          events.Event
	Classification catalog.Classification
	Decision       policy.Decision
	Outcome        suppress.Outcome
	Held           bool // a suppression held by the mass-bounce guard
	// Incident is what the event did to its sender-side incident, when it has one
	// (a sender-side event, or the event that made the guard hold a domain).
	Incident *alert.Outcome
}

// Processor runs the process role.
type Processor struct {
	cfg     Config
	clock   Clock
	redisUp quietLog // "redis batch failed" during an outage: once per change or per 30 s

	// paused is set when a batch's Redis step fails as a whole (Redis unreachable): the
	// consumer stops pulling and what was already handed over goes back undelivered
	// until Ping succeeds, so an outage costs each event one delivery, not MaxDeliver.
	paused   atomic.Bool
	pauseErr atomic.Pointer[string]
	pauseReq chan struct{}
	// recreateReq asks the controller to re-create the consumer at once: its pull
	// found no responder.
	recreateReq chan struct{}
	// received counts messages handed over by the client and inflight the batches being
	// processed: the stall check looks at both.
	received atomic.Uint64
	inflight atomic.Int32
	// asideSlots bounds the statistics writes running beside the batches (aside).
	asideSlots chan struct{}
	asideWG    sync.WaitGroup
	// tally adds up the hourly statistics of the batches applied since statsWritten;
	// they are written at most every statsEvery (and when Run returns).
	statsMu      sync.Mutex
	tally        stats.Tally
	statsWritten time.Time
	// The per-event counters' series, looked up once (see counterCache).
	processed, suppressions counterCache
	// plans holds the buffers of finished batches' plans for the next batches: a plan
	// of 256 events is about 200 KB, allocated per batch it was the largest single part
	// of the worker's allocations.
	plans sync.Pool
}

// counterCache keeps the series of one counter vector by label values: WithLabelValues
// hashes and checks its labels and takes the vector's lock on every call, and the
// process role counts every event. Nothing deletes these series, so a cached one stays
// the vector's own.
type counterCache struct {
	mu sync.RWMutex
	m  map[[4]string]prometheus.Counter
}

// get returns vec's series of the first n labels of l.
func (c *counterCache) get(vec *prometheus.CounterVec, l [4]string, n int) prometheus.Counter {
	c.mu.RLock()
	ctr, ok := c.m[l]
	c.mu.RUnlock()
	if ok {
		return ctr
	}
	ctr = vec.WithLabelValues(l[:n]...)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[[4]string]prometheus.Counter{}
	}
	c.m[l] = ctr
	c.mu.Unlock()
	return ctr
}

// statsEvery is how often the hourly statistics are written while events flow: once a
// second rather than once a batch (a pipeline of about ten commands each time).
const statsEvery = time.Second

// quietLog logs a failure that repeats every batch when it starts, when its message
// changes, and then at most every 30 seconds with how often it repeated.
type quietLog struct {
	mu       sync.Mutex
	last     string
	at       time.Time
	repeated int
}

func (q *quietLog) warn(log *zap.Logger, now time.Time, msg string, err error, fields ...zap.Field) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err.Error() == q.last && now.Sub(q.at) < 30*time.Second {
		q.repeated++
		return
	}
	log.Warn(msg, append(fields, zap.Error(err), zap.Int("repeats_since_last_log", q.repeated))...)
	q.last, q.at, q.repeated = err.Error(), now, 0
}

// New returns a Processor.
func New(cfg Config) *Processor {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 256
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Ping == nil && cfg.Store != nil {
		cfg.Ping = cfg.Store.Ping
	}
	if cfg.StallCheck <= 0 {
		cfg.StallCheck = 5 * time.Second
	}
	return &Processor{cfg: cfg, clock: cfg.Clock, pauseReq: make(chan struct{}, 1), recreateReq: make(chan struct{}, 1), asideSlots: make(chan struct{}, 2)}
}

// Ready reports whether the processor is consuming: an error while it has paused for
// a Redis outage (the readiness probe reports it).
func (p *Processor) Ready() error {
	if p.paused.Load() {
		why := "redis unavailable"
		if s := p.pauseErr.Load(); s != nil {
			why = *s
		}
		return fmt.Errorf("consumption paused: %s", why)
	}
	return nil
}

// Run consumes until ctx is cancelled, then stops pulling, finishes and acknowledges
// the batches in flight and every message already handed over, and returns nil.
func (p *Processor) Run(ctx context.Context) error {
	// The buffer holds what the client has pulled; batches are cut from it without
	// waiting for a full batch, so latency stays low when traffic is light. It holds
	// one batch per worker plus one, so every worker finds a batch while the client
	// refills.
	workers := p.cfg.Concurrency
	msgs := make(chan jetstream.Msg, (workers+1)*p.cfg.BatchSize)
	cc, err := p.consume(msgs)
	if err != nil {
		return err
	}
	// Batches in flight finish even during shutdown: their Redis step is idempotent
	// and their acks must reach the server.
	work := context.WithoutCancel(ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work(work, msgs, stop)
		}()
	}
	p.control(ctx, cc, msgs)
	// The consumer is closed: workers finish what was handed over. Anything still
	// buffered in the client is redelivered to another replica after AckWait.
	close(stop)
	wg.Wait()
	p.asideWG.Wait()
	// What the last batches added to the statistics.
	if t, ok := p.takeStats(p.clock.Now(), true); ok {
		p.writeStats(work, t)
	}
	return nil
}

func (p *Processor) consume(msgs chan jetstream.Msg) (jetstream.ConsumeContext, error) {
	cc, err := p.cfg.Consumer.Consume(func(m jetstream.Msg) {
		p.received.Add(1)
		msgs <- m
	},
		jetstream.PullMaxMessages(cap(msgs)),
		jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { p.consumeError(err) }))
	if err != nil {
		return nil, fmt.Errorf("start consuming: %w", err)
	}
	return cc, nil
}

// consumeError handles what the client reports while consuming.
func (p *Processor) consumeError(err error) {
	if errors.Is(err, nats.ErrNoResponders) {
		p.cfg.Log.Debug("consume", zap.Error(err)) // control logs the re-creation
		// The pull went to a consumer leader that has gone (a JetStream leader change).
		// nats.go still counts it as outstanding and pulls no more until its heartbeat
		// check gives up, about a minute later: re-create the consumer now.
		select {
		case p.recreateReq <- struct{}{}:
		default:
		}
		return
	}
	p.cfg.Log.Warn("consume", zap.Error(err))
}

// work cuts batches from what the client handed over until stop, then finishes what is
// left.
func (p *Processor) work(ctx context.Context, msgs chan jetstream.Msg, stop <-chan struct{}) {
	batch := make([]jetstream.Msg, 0, p.cfg.BatchSize)
	for {
		select {
		case m := <-msgs:
			batch = drain(msgs, append(batch[:0], m), p.cfg.BatchSize)
			p.handle(ctx, batch)
		case <-stop:
			for {
				batch = drain(msgs, batch[:0], p.cfg.BatchSize)
				if len(batch) == 0 {
					return
				}
				p.handle(ctx, batch)
			}
		}
	}
}

func (p *Processor) handle(ctx context.Context, batch []jetstream.Msg) {
	p.inflight.Add(1)
	defer p.inflight.Add(-1)
	if p.paused.Load() {
		// Handed over before the consumer stopped: back to the server without trying
		// Redis, to be delivered again once consumption resumes.
		for _, m := range batch {
			p.giveBack(ctx, m)
		}
		return
	}
	p.processBatch(ctx, batch)
}

func drain(msgs chan jetstream.Msg, batch []jetstream.Msg, max int) []jetstream.Msg {
	for len(batch) < max {
		select {
		case m := <-msgs:
			batch = append(batch, m)
		default:
			return batch
		}
	}
	return batch
}

// Why the controller stopped the consumer.
type stopReason int

const (
	stopShutdown stopReason = iota
	stopPaused
	stopStalled
	stopUnanswered // a pull request found no responder
)

// pullHeartbeat is how often the server confirms an open pull request. Two missed
// heartbeats make the client drop the request and pull again: that is how a pull lost
// with a JetStream leader (its new leader never saw it) comes back within seconds
// rather than after the client's default 15 s heartbeat, twice over.
const pullHeartbeat = 2 * time.Second

// recreatePause is how long the controller waits before re-creating a consumer whose
// pull found no responder, so a stream without a leader for a while costs a few
// requests a second, not a busy loop.
const recreatePause = 250 * time.Millisecond

// control keeps one consumer running until ctx ends: it stops it while Redis is down
// and re-creates it when it stalls.
func (p *Processor) control(ctx context.Context, cc jetstream.ConsumeContext, msgs chan jetstream.Msg) {
	var (
		unanswered     int // re-creations for unanswered pulls in a row
		lastUnanswered time.Time
	)
	for {
		why := p.watch(ctx, msgs)
		// Workers keep taking what the callback hands over until the consumer has
		// closed: a callback blocked on a full channel would otherwise never let it close.
		cc.Stop()
		<-cc.Closed()
		switch why {
		case stopShutdown:
			return
		case stopStalled:
			if m := p.cfg.Metrics; m != nil {
				m.ConsumerStallRecoveries.Inc()
			}
			p.cfg.Log.Warn("consumer stalled: nothing delivered while events are pending; re-creating it",
				zap.Duration("quiet_for", p.cfg.StallCheck))
		case stopUnanswered:
			if m := p.cfg.Metrics; m != nil {
				m.ConsumerStallRecoveries.Inc()
			}
			// While the consumer has no leader every new pull is unanswered too: wait
			// longer each time (to 2 s), and log the first of a run only.
			now := p.clock.Now()
			if now.Sub(lastUnanswered) > 10*time.Second {
				unanswered = 0
			}
			lastUnanswered = now
			unanswered++
			wait := min(recreatePause<<min(unanswered-1, 3), 2*time.Second)
			if unanswered == 1 {
				p.cfg.Log.Warn("consumer's pull found no responder (JetStream leader change?); re-creating it")
			} else {
				p.cfg.Log.Debug("consumer's pull found no responder again; re-creating it", zap.Int("times", unanswered), zap.Duration("after", wait))
			}
			select {
			case <-ctx.Done():
				return
			case <-p.clock.After(wait):
			}
		case stopPaused:
			if !p.awaitRedis(ctx) {
				return
			}
		}
		for {
			var err error
			if cc, err = p.consume(msgs); err == nil {
				break
			}
			p.cfg.Log.Warn("consumer not re-created; retrying", zap.Error(err))
			select {
			case <-ctx.Done():
				return
			case <-p.clock.After(time.Second):
			}
		}
	}
}

// watch returns when the consumer must stop: shutdown, a pause for Redis, or a stall.
// A stall is a check interval in which nothing was handed over while no batch was in
// work and the stream had pending events the consumer could take: the client has
// stopped pulling (PERFORMANCE-NOTES §2.8, nats.go #1622).
func (p *Processor) watch(ctx context.Context, msgs chan jetstream.Msg) stopReason {
	last := p.received.Load()
	stallCheck := p.clock.After(p.cfg.StallCheck)
	for {
		select {
		case <-ctx.Done():
			return stopShutdown
		case <-p.pauseReq:
			return stopPaused
		case <-p.recreateReq:
			return stopUnanswered
		case <-p.clock.After(statsEvery):
			// Statistics the last batches left when events stopped flowing: written
			// within about statsEvery, not at the next stall check, so the console's
			// overview is never more than a second or two behind.
			if t, ok := p.takeStats(p.clock.Now(), false); ok {
				p.aside(func() { p.writeStats(context.WithoutCancel(ctx), t) })
			}
			continue
		case <-stallCheck:
		}
		stallCheck = p.clock.After(p.cfg.StallCheck)
		now := p.received.Load()
		if now != last || len(msgs) > 0 || p.inflight.Load() > 0 {
			last = now
			continue
		}
		if p.stalled(ctx) {
			return stopStalled
		}
	}
}

func (p *Processor) stalled(ctx context.Context) bool {
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := p.cfg.Consumer.Info(ictx)
	if err != nil {
		return false // NATS itself is unavailable: re-creating the consumer would not help
	}
	// At MaxAckPending the server delivers nothing by design.
	room := info.Config.MaxAckPending <= 0 || info.NumAckPending < info.Config.MaxAckPending
	return info.NumPending > 0 && room
}

// redisUnavailable says whether err means Redis could not be reached or is not
// serving (connection refused or lost, a timeout, the pool exhausted, a replica
// loading or a failover under way), as opposed to Redis answering with an error.
func redisUnavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed):
		return true
	}
	for _, busy := range []string{"LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY"} {
		if redis.HasErrorPrefix(err, busy) {
			return true
		}
	}
	return false
}

// pause stops consumption after a batch failed on Redis as a whole.
func (p *Processor) pause(err error) {
	msg := err.Error()
	p.pauseErr.Store(&msg)
	if p.paused.CompareAndSwap(false, true) {
		if m := p.cfg.Metrics; m != nil {
			m.ProcessPaused.Set(1)
			m.ProcessPauses.Inc()
		}
		p.cfg.Log.Warn("redis unavailable: consumption paused until it answers", zap.Error(err))
		select {
		case p.pauseReq <- struct{}{}:
		default:
		}
	}
}

// awaitRedis probes Redis with a growing delay, at most a second, until it answers
// (true) or ctx ends: a probe a second costs Redis nothing, and the delay is how long
// consumption stays paused after Redis is back.
func (p *Processor) awaitRedis(ctx context.Context) bool {
	since := p.clock.Now()
	delay := 250 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return false
		case <-p.clock.After(delay):
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := p.cfg.Ping(pctx)
		cancel()
		if err == nil {
			break
		}
		msg := err.Error()
		p.pauseErr.Store(&msg)
		delay = min(2*delay, time.Second)
	}
	// A batch that failed just before the consumer stopped may have asked again.
	select {
	case <-p.pauseReq:
	default:
	}
	p.paused.Store(false)
	if m := p.cfg.Metrics; m != nil {
		m.ProcessPaused.Set(0)
	}
	p.cfg.Log.Info("redis answers again: consumption resumed", zap.Duration("paused_for", p.clock.Now().Sub(since)))
	return true
}

func (p *Processor) processBatch(ctx context.Context, batch []jetstream.Msg) {
	start := p.clock.Now()
	pol := p.cfg.Policy()
	var shadow *policy.Policy
	if p.cfg.Shadow != nil {
		shadow = p.cfg.Shadow()
	}
	data := make([][]byte, len(batch))
	for i, m := range batch {
		data[i] = m.Data()
	}
	pl, _ := p.plans.Get().(*plan)
	if pl == nil {
		pl = &plan{}
	}
	*pl = p.planInto(pl, pol, shadow, data)
	defer func() { pl.reset(); p.plans.Put(pl) }()
	for _, x := range pl.poison {
		p.poison(ctx, batch[x.msg], "decode", x.err)
	}
	if len(pl.items) > 0 {
		p.applyPlan(ctx, batch, pl)
	}
	if m := p.cfg.Metrics; m != nil {
		m.BatchSeconds.Observe(p.clock.Now().Sub(start).Seconds())
		m.BatchSize.Observe(float64(len(batch)))
	}
}

// applyPlan is the batch's I/O: the mass-bounce guard, the recipients' changes and the
// incident observations in Redis, then an ack (or a retry) per message. When Redis
// fails as a whole the batch goes back and consumption pauses.
func (p *Processor) applyPlan(ctx context.Context, batch []jetstream.Msg, pl *plan) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := p.guard(rctx, pl)
	var outs []suppress.Outcome
	var incs []alert.Outcome
	if err == nil {
		outs, incs, err = p.write(rctx, pl.changes, pl.obs)
	}
	cancel()
	if err != nil {
		if redisUnavailable(err) {
			p.redisUp.warn(p.cfg.Log, p.clock.Now(), "redis batch failed; the batch goes back and consumption pauses", err, zap.Int("events", len(pl.items)))
			p.pause(err)
		} else {
			// Redis answered with an error (a script error, WRONGTYPE, OOM): a PING
			// would pass at once, so pausing would only loop. The batch is retried
			// with the usual back-off and dead-lettered if it keeps failing.
			p.redisUp.warn(p.cfg.Log, p.clock.Now(), "redis refused the batch; it is retried", err, zap.Int("events", len(pl.items)))
		}
		for _, it := range pl.items {
			p.retry(ctx, batch[it.msg], "redis", err)
		}
		return
	}
	var (
		disagreements       []suppress.ShadowEntry
		unknown, unknownESP []string // replies no rule recognised, for review
		// The batch's newly applied events, for the console's hourly aggregates.
		hourly = make([]stats.Decision, 0, len(pl.items))
	)
	for i := range pl.items {
		it := &pl.items[i]
		it.res.Outcome = outs[i]
		failed := outs[i].Err
		if it.obs >= 0 {
			it.res.Incident = &incs[it.obs]
			failed = errors.Join(failed, incs[it.obs].Err)
		}
		if failed != nil {
			p.retry(ctx, batch[it.msg], "redis", failed)
			continue
		}
		it.applied = true
		if it.shadow != nil && !it.res.Outcome.Duplicate {
			if e, ok := disagreement(pl.policy, pl.shadow, &it.res, *it.shadow); ok {
				disagreements = append(disagreements, e)
			}
		}
		if it.res.Outcome.Duplicate {
			continue
		}
		hourly = append(hourly, stats.Of(&it.res.Event, it.res.Classification, string(it.res.Decision.Action), it.res.Held))
		if it.res.Classification.Unrecognised() {
			unknown = append(unknown, it.res.Event.Reply.String())
			unknownESP = append(unknownESP, it.res.Event.ESP)
		}
	}
	// Statistics only (a failure costs the statistic, never the batch): written beside
	// the next batch rather than before it, so the worker does not wait a round trip.
	if len(unknown) > 0 {
		p.aside(func() { p.recordUnknown(ctx, unknown, unknownESP) })
	}
	if len(disagreements) > 0 {
		p.aside(func() { p.recordShadow(ctx, disagreements) })
	}
	// Hourly aggregates for the console's overview (package stats): added up here and
	// written at most once a second, beside the next batch like the above.
	if len(hourly) > 0 {
		at := p.clock.Now()
		p.statsMu.Lock()
		p.tally.Add(at, hourly)
		p.statsMu.Unlock()
		if t, ok := p.takeStats(at, false); ok {
			p.aside(func() { p.writeStats(ctx, t) })
		}
	}
	// Acknowledged last, so an event that is acknowledged (and reported to OnProcessed)
	// is in the statistics too: a watcher that saw it done and then a quiet interval's
	// write found it missing (TestHourlyStatisticsAreAddedUp, under load).
	for i := range pl.items {
		if it := &pl.items[i]; it.applied {
			p.done(batch[it.msg], &it.res)
		}
	}
}

// takeStats takes the statistics added up since the last write when statsEvery has
// passed since it (or with all), and leaves an empty tally in their place.
func (p *Processor) takeStats(now time.Time, all bool) (stats.Tally, bool) {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	if p.tally.Empty() || (!all && now.Sub(p.statsWritten) < statsEvery) {
		return stats.Tally{}, false
	}
	t := p.tally
	p.tally, p.statsWritten = stats.Tally{}, now
	return t, true
}

// writeStats writes statistics taken by takeStats. A failure costs them, never a batch.
func (p *Processor) writeStats(ctx context.Context, t stats.Tally) {
	if err := t.Write(ctx, p.cfg.Store); err != nil {
		p.redisUp.warn(p.cfg.Log, p.clock.Now(), "hourly statistics not recorded", err)
	}
}

// aside runs a statistics write in the background, at most two at a time; beyond that
// the worker writes it itself, which slows it down rather than piling writes up. Run
// waits for them before it returns.
func (p *Processor) aside(write func()) {
	select {
	case p.asideSlots <- struct{}{}:
		p.asideWG.Add(1)
		go func() {
			defer func() { <-p.asideSlots; p.asideWG.Done() }()
			write()
		}()
	default:
		write()
	}
}

// disagreement compares the live decision's effect with the shadow's for one applied
// event, and returns the entry to record when they differ.
//
// A soft bounce's effect depends on the recipient's soft count, which only the live
// policy's state has. The shadow's is predicted from the live outcome: N, the
// recipient's soft bounces in the live window after this event (this one included),
// is taken as the shadow's count too, so under the shadow's threshold T' the event
// suppresses iff N ≥ T' (for the shadow's soft TTL). When the live policy did not count
// the event, N is 1 (the event alone: a lower bound). The shadow's window and scope are
// part of its effect: a different window or scope is a disagreement in itself, since the
// count under it cannot be told from the live state. Duplicates are not compared (their
// first delivery was).
func disagreement(live, shadow *policy.Policy, r *Result, sd policy.Decision) (suppress.ShadowEntry, bool) {
	n := 1
	if r.Decision.Action == policy.ActionSoft {
		n = max(r.Outcome.SoftCount, 1)
	}
	le, se := live.Effect(r.Decision, n), shadow.Effect(sd, n)
	if !policy.Differs(le, se) {
		return suppress.ShadowEntry{}, false
	}
	ev, class := &r.Event, string(r.Classification.Class)
	return suppress.ShadowEntry{
		Class: class, Live: string(le.Kind()), Shadow: string(se.Kind()),
		Sample: policy.Disagreement{EventID: ev.ID, Recipient: events.RedactAddresses(ev.Recipient), Class: class,
			Live: le.Kind(), Shadow: se.Kind(), LiveEffect: le.String(), ShadowEffect: se.String(),
			LiveRule: r.Decision.Rule, ShadowRule: sd.Rule},
	}, true
}

// guard runs the mass-bounce guard over the batch's changes (package guard decides)
// and marks its verdicts on the plan.
func (p *Processor) guard(ctx context.Context, pl *plan) error {
	if p.cfg.Guard == nil {
		return nil
	}
	verdicts, err := p.cfg.Guard.Check(ctx, pl.policy.MassBounce, pl.changes, pl.guardEligible)
	if err != nil {
		return err
	}
	for _, v := range pl.markHeld(verdicts) {
		// recipients_in_window is the hold's count after the batch: what
		// `worker mass-bounce list` shows for it.
		fields := []zap.Field{zap.String("class", alert.ClassMassBounce), zap.String("receiving_domain", v.Domain),
			zap.String("scope", v.Scope), zap.Int("recipients_in_window", v.Count)}
		if v.Scope == guard.ScopeTenant {
			fields = append(fields, zap.String("tenant", v.Tenant))
		}
		p.cfg.Log.Warn("mass-bounce guard: holding new suppressions", fields...)
	}
	if m := p.cfg.Metrics; m != nil {
		for _, v := range verdicts {
			if v.Held {
				m.SuppressionsHeld.Inc()
			}
		}
	}
	return nil
}

// recordUnknown counts the batch's unrecognised replies (metric and the reviewable list
// in Redis). A failure costs only that list, never the batch.
func (p *Processor) recordUnknown(ctx context.Context, replies, esps []string) {
	if m := p.cfg.Metrics; m != nil {
		for _, e := range esps {
			m.UnknownReplies.WithLabelValues(e).Inc()
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.cfg.Store.RecordUnknown(rctx, replies, esps); err != nil {
		p.redisUp.warn(p.cfg.Log, p.clock.Now(), "unknown replies not recorded", err)
	}
}

// recordShadow stores the batch's disagreements with the shadow policy and logs one
// of them as a sample. A failure costs only shadow statistics, never the batch.
func (p *Processor) recordShadow(ctx context.Context, ds []suppress.ShadowEntry) {
	if m := p.cfg.Metrics; m != nil {
		for _, d := range ds {
			m.ShadowDisagreements.WithLabelValues(d.Class, d.Live, d.Shadow).Inc()
		}
	}
	first := ds[0].Sample.(policy.Disagreement)
	p.cfg.Log.Info("shadow policy disagrees", zap.Int("events", len(ds)), zap.String("sample_event_id", first.EventID),
		zap.String("class", first.Class), zap.String("live", string(first.Live)), zap.String("shadow", string(first.Shadow)),
		zap.String("live_effect", first.LiveEffect), zap.String("shadow_effect", first.ShadowEffect))
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.cfg.Store.RecordShadow(rctx, ds); err != nil {
		p.redisUp.warn(p.cfg.Log, p.clock.Now(), "shadow statistics not stored", err)
	}
}

// OpenedHere says whether this delivery of the event is the one that reports the
// incident it opened (or reopened): the delivery whose recipients' write counted the
// event (not a duplicate) and whose observation either opened the incident or found
// that this event had opened it (its earlier delivery stopped after the observation).
// Both writes are idempotent by event ID and run side by side, and exactly one delivery
// of an event finds its recipients' write not a duplicate, so the report is made once
// even when two deliveries of the opening event (a true duplicate on two workers) race:
// one may open the incident and find its recipients' write already done, the other
// then reports it. Asking for the observation's own "opened" alone reported that race
// twice. An opening event redelivered after its ack was lost finds both writes counted
// and reports nothing again. The one case left unreported is an observation that
// failed after the recipients' write succeeded (the event is retried and its
// recipients' write is then a duplicate): the incident's page is queued by the
// observation itself, so only this report (the metric and the log line) is lost.
func (r *Result) OpenedHere() (opened, reopened bool) {
	inc := r.Incident
	if inc == nil || r.Outcome.Duplicate {
		return false, false
	}
	return inc.Opened || inc.OpenedEarlier, inc.Reopened || inc.ReopenedEarlier
}

// write writes the batch's recipient changes and its incident observations, at the
// same time: they are independent, and each is idempotent by event ID, so an event
// whose one half failed is retried whole and its other half counts once.
func (p *Processor) write(ctx context.Context, changes []suppress.Change, obs []alert.Observation) ([]suppress.Outcome, []alert.Outcome, error) {
	if len(obs) == 0 || p.cfg.Alerts == nil {
		outs, err := p.cfg.Store.Apply(ctx, changes)
		return outs, make([]alert.Outcome, len(obs)), err
	}
	var (
		incs   []alert.Outcome
		incErr error
		done   = make(chan struct{})
	)
	go func() {
		defer close(done)
		incs, incErr = p.cfg.Alerts.Observe(ctx, obs)
	}()
	outs, err := p.cfg.Store.Apply(ctx, changes)
	<-done
	if err != nil {
		return nil, nil, err
	}
	if incErr != nil {
		return nil, nil, incErr
	}
	return outs, incs, nil
}

func (p *Processor) done(msg jetstream.Msg, r *Result) {
	if err := msg.Ack(); err != nil {
		// The effect is stored; a lost ack only means a harmless redelivery.
		p.cfg.Log.Warn("ack", zap.String("event_id", r.Event.ID), zap.Error(err))
	}
	opened, reopened := r.OpenedHere()
	if m := p.cfg.Metrics; m != nil {
		if r.Outcome.Duplicate {
			m.EventsDuplicate.WithLabelValues(r.Event.ESP).Inc()
		} else {
			p.processed.get(m.EventsProcessed, [4]string{r.Event.ESP, string(r.Classification.Class), string(r.Classification.Scope), string(r.Decision.Action)}, 4).Inc()
			if r.Outcome.Suppressed && (r.Decision.Action == policy.ActionSuppress || r.Decision.Action == policy.ActionSoft) {
				p.suppressions.get(m.Suppressions, [4]string{reasonLabel(r)}, 1).Inc()
			}
		}
		switch {
		case opened:
			m.IncidentsOpened.WithLabelValues(r.Incident.Class).Inc()
		case reopened:
			m.IncidentsReopened.WithLabelValues(r.Incident.Class).Inc()
		}
	}
	if ce := p.cfg.Log.Check(zap.DebugLevel, "decision"); ce != nil {
		ce.Write(zap.String("event_id", r.Event.ID), zap.String("esp", r.Event.ESP), zap.String("class", string(r.Classification.Class)),
			zap.String("scope", string(r.Classification.Scope)), zap.String("rule", r.Classification.Rule), zap.String("action", string(r.Decision.Action)),
			zap.Bool("duplicate", r.Outcome.Duplicate), zap.Bool("suppressed", r.Outcome.Suppressed), zap.Int("soft_count", r.Outcome.SoftCount))
	}
	if inc := r.Incident; opened || reopened {
		what := "incident opened"
		if reopened {
			what = "incident reopened"
		}
		fields := []zap.Field{zap.String("id", inc.Fingerprint), zap.String("class", inc.Class)}
		if inc.Class == alert.ClassMassBounce {
			// The guard's incident is about the receiving domain, across tenants and
			// sending paths: the event's own class, sending domain and tenant are not its.
			fields = append(fields, zap.String("receiving_domain", events.Domain(r.Event.Recipient)))
		} else {
			fields = append(fields, zap.String("sending_domain", r.Event.SendingDomain), zap.String("tenant", r.Event.Tenant))
		}
		p.cfg.Log.Info(what, append(fields, zap.String("event_id", r.Event.ID))...)
	}
	if p.cfg.OnProcessed != nil {
		p.cfg.OnProcessed(*r)
	}
}

func reasonLabel(r *Result) string {
	if r.Decision.Action == policy.ActionSoft {
		return "soft_bounce_threshold"
	}
	return r.Decision.Reason
}

// retry hands the message back with a delay that grows with each delivery. On the
// consumer's last delivery it is dead-lettered instead, so it is never silently dropped.
func (p *Processor) retry(ctx context.Context, msg jetstream.Msg, stage string, cause error) {
	if p.cfg.Metrics != nil {
		p.cfg.Metrics.EventsFailed.WithLabelValues("process", stage).Inc()
	}
	md, err := msg.Metadata()
	delivered := uint64(1)
	if err == nil {
		delivered = md.NumDelivered
	}
	if p.cfg.MaxDeliver > 0 && delivered >= uint64(p.cfg.MaxDeliver) {
		p.poison(ctx, msg, stage, fmt.Errorf("gave up after %d deliveries: %w", delivered, cause))
		return
	}
	if err := msg.NakWithDelay(Backoff(delivered, p.cfg.MaxBackoff)); err != nil {
		p.cfg.Log.Warn("nak", zap.Error(err))
	}
}

// giveBack returns a message that was handed over after consumption paused, without
// trying Redis. The short delay keeps it among the first redelivered once the consumer
// pulls again (nothing is redelivered while it does not). On the consumer's last
// delivery it is dead-lettered instead, as retry does.
func (p *Processor) giveBack(ctx context.Context, msg jetstream.Msg) {
	if md, err := msg.Metadata(); err == nil && p.cfg.MaxDeliver > 0 && md.NumDelivered >= uint64(p.cfg.MaxDeliver) {
		p.poison(ctx, msg, "redis", fmt.Errorf("gave up after %d deliveries: consumption paused", md.NumDelivered))
		return
	}
	if err := msg.NakWithDelay(time.Second); err != nil {
		p.cfg.Log.Warn("nak", zap.Error(err))
	}
}

// Backoff is the delay before delivery n+1: 1s, 2s, 4s, … capped at max.
func Backoff(delivered uint64, max time.Duration) time.Duration {
	if delivered > 16 {
		return max
	}
	d := time.Second << (delivered - 1)
	if d > max || d <= 0 {
		return max
	}
	return d
}

// poison dead-letters a message with the reason and terminates it. If the dead-letter
// stream cannot be written, the message is retried instead: it is never dropped.
func (p *Processor) poison(ctx context.Context, msg jetstream.Msg, stage string, cause error) {
	var seq uint64
	if md, err := msg.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	// The ESP is the subject's last token (<prefix>.events.<esp>): known even for bytes
	// that do not decode, so `deadletter list` shows it for every process-stage letter.
	esp := msg.Subject()
	if i := strings.LastIndexByte(esp, '.'); i >= 0 {
		esp = esp[i+1:]
	}
	err := p.cfg.Publisher.DeadLetter(ctx, stream.DeadLetter{Stage: "process", ESP: esp, Reason: stage + ": " + cause.Error(), Raw: msg.Data(), Subject: msg.Subject(), Sequence: seq})
	if err != nil {
		p.cfg.Log.Error("dead-letter failed; will retry the message", zap.Uint64("stream_seq", seq), zap.Error(err))
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	if p.cfg.Metrics != nil {
		p.cfg.Metrics.DeadLetters.WithLabelValues("process").Inc()
		p.cfg.Metrics.EventsFailed.WithLabelValues("process", stage).Inc()
	}
	p.cfg.Log.Warn("event dead-lettered", zap.Uint64("stream_seq", seq), zap.String("stage", stage), zap.String("reason", cause.Error()))
	// Term, not TermWithReason: NATS 2.9 does not understand "+TERM <reason>" and would
	// leave the message pending. The reason is in the dead letter.
	if err := msg.Term(); err != nil {
		p.cfg.Log.Warn("term", zap.Uint64("stream_seq", seq), zap.Error(err))
	}
}
