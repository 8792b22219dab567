package process

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
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
	redisUp quietLog // "redis batch failed" during an outage: once per change or per 30 s
}

// quietLog logs a failure that repeats every batch when it starts, when its message
// changes, and then at most every 30 seconds with how often it repeated.
type quietLog struct {
	mu       sync.Mutex
	last     string
	at       time.Time
	repeated int
}

func (q *quietLog) warn(log *zap.Logger, msg string, err error, fields ...zap.Field) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
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
	return &Processor{cfg: cfg}
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
	cc, err := p.cfg.Consumer.Consume(func(m jetstream.Msg) { msgs <- m },
		jetstream.PullMaxMessages((workers+1)*p.cfg.BatchSize),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			p.cfg.Log.Warn("consume", zap.Error(err))
		}))
	if err != nil {
		return fmt.Errorf("start consuming: %w", err)
	}
	// Batches in flight finish even during shutdown: their Redis step is idempotent
	// and their acks must reach the server.
	work := context.WithoutCancel(ctx)
	closed := cc.Closed()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]jetstream.Msg, 0, p.cfg.BatchSize)
			for {
				select {
				case m := <-msgs:
					batch = drain(msgs, append(batch[:0], m), p.cfg.BatchSize)
					p.processBatch(work, batch)
				case <-closed:
					// Stopped: finish what was handed over. Anything still buffered in the
					// client is redelivered to another replica after AckWait.
					for {
						batch = drain(msgs, batch[:0], p.cfg.BatchSize)
						if len(batch) == 0 {
							return
						}
						p.processBatch(work, batch)
					}
				}
			}
		}()
	}
	<-ctx.Done()
	// Workers keep taking what the callback hands over until the consumer has closed:
	// a callback blocked on a full channel would otherwise never let it close.
	cc.Stop()
	wg.Wait()
	return nil
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

// pending is one decoded event of a batch on its way to Redis.
type pending struct {
	msg jetstream.Msg
	res Result
	obs int // index of the event's incident observation, -1 when none
	// shadow is the shadow policy's decision (when one is configured); it is compared
	// with the live one once the live outcome (the soft count) is known.
	shadow *policy.Decision
}

func (p *Processor) processBatch(ctx context.Context, batch []jetstream.Msg) {
	start := time.Now()
	m := p.cfg.Metrics
	pol := p.cfg.Policy()
	var shadow *policy.Policy
	if p.cfg.Shadow != nil {
		shadow = p.cfg.Shadow()
	}
	work := make([]pending, 0, len(batch))
	changes := make([]suppress.Change, 0, len(batch))
	var obs []alert.Observation
	var unknown, unknownESP []string // replies no rule recognised, for review
	for _, msg := range batch {
		ev, err := events.Decode(msg.Data())
		if err != nil {
			p.poison(ctx, msg, "decode", err)
			continue
		}
		// From here on the ID is in its stored form: with addresses hashed, no part of
		// it names the recipient (SES and Resend IDs do).
		ev.ID = p.cfg.Store.EventID(ev.ID)
		reply := ev.Reply.String()
		cl := p.cfg.Catalog.Classify(reply, catalog.Hints{Code: ev.Reply.Code, Enhanced: ev.Reply.Enhanced, RemoteHost: ev.MTA})
		d := pol.Decide(&ev, cl)
		w := pending{msg: msg, res: Result{Event: ev, Classification: cl, Decision: d}, obs: -1}
		if shadow != nil {
			sd := shadow.Decide(&ev, cl)
			w.shadow = &sd
		}
		if d.Action == policy.ActionAlert {
			w.obs = len(obs)
			obs = append(obs, p.observation(&ev, reply, cl, pol))
		}
		work = append(work, w)
		changes = append(changes, p.change(&ev, reply, cl, d, pol))
	}
	var disagreements []suppress.ShadowEntry
	if len(changes) > 0 {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := p.guard(rctx, pol, work, changes, &obs)
		var outs []suppress.Outcome
		var incs []alert.Outcome
		if err == nil {
			outs, incs, err = p.apply(rctx, changes, obs)
		}
		cancel()
		if err != nil {
			p.redisUp.warn(p.cfg.Log, "redis batch failed; retrying the batch later", err, zap.Int("events", len(work)))
			for _, w := range work {
				p.retry(ctx, w.msg, "redis", err)
			}
		} else {
			for i := range work {
				w := &work[i]
				w.res.Outcome = outs[i]
				failed := outs[i].Err
				if w.obs >= 0 {
					w.res.Incident = &incs[w.obs]
					failed = errors.Join(failed, incs[w.obs].Err)
				}
				if failed != nil {
					p.retry(ctx, w.msg, "redis", failed)
					continue
				}
				if w.shadow != nil && !w.res.Outcome.Duplicate {
					if e, ok := disagreement(pol, shadow, &w.res, *w.shadow); ok {
						disagreements = append(disagreements, e)
					}
				}
				p.done(w)
				if w.res.Classification.Class == catalog.ClassUnknown && !w.res.Outcome.Duplicate {
					unknown = append(unknown, w.res.Event.Reply.String())
					unknownESP = append(unknownESP, w.res.Event.ESP)
				}
			}
		}
	}
	if len(unknown) > 0 {
		p.recordUnknown(ctx, unknown, unknownESP)
	}
	if len(disagreements) > 0 {
		p.recordShadow(ctx, disagreements)
	}
	if m != nil {
		m.BatchSeconds.Observe(time.Since(start).Seconds())
		m.BatchSize.Observe(float64(len(batch)))
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

// guard runs the mass-bounce guard over the batch (package guard decides; complaints
// are never held). A held suppression becomes a history-only change whose entry reads
// "held" (the pending suppression is the guard's), and every held event counts into
// its domain's mass_bounce incident, which its first one opens.
func (p *Processor) guard(ctx context.Context, pol *policy.Policy, work []pending, changes []suppress.Change, obs *[]alert.Observation) error {
	if p.cfg.Guard == nil {
		return nil
	}
	verdicts, err := p.cfg.Guard.Check(ctx, pol.MassBounce, changes, func(i int) bool {
		return work[i].res.Event.Type != events.TypeComplaint
	})
	if err != nil {
		return err
	}
	for i, v := range verdicts {
		if !v.Held {
			continue
		}
		c := &changes[i]
		c.Action = suppress.ActionHeld
		work[i].res.Held = true
		// Every held suppression counts into the domain's incident, so it shows how many
		// recipients the hold is protecting.
		ev := &work[i].res.Event
		work[i].obs = len(*obs)
		*obs = append(*obs, alert.Observation{
			EventID: ev.ID, Class: alert.ClassMassBounce, Severity: pol.Incidents.Severity(alert.ClassMassBounce),
			ReceivingDomain: v.Domain, Recipient: ev.Recipient, Code: c.Code, Rule: "mass_bounce_guard", ESP: ev.ESP,
			Reply: events.RedactAddresses(c.Reply), Fix: guard.FixSteps(v.Domain),
		})
		if v.NewlyHeld {
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
			m.SuppressionsHeld.Inc()
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
		p.redisUp.warn(p.cfg.Log, "unknown replies not recorded", err)
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
		p.redisUp.warn(p.cfg.Log, "shadow statistics not stored", err)
	}
}

// change turns a decision into the store's change for that event.
func (p *Processor) change(ev *events.Event, reply string, cl catalog.Classification, d policy.Decision, pol *policy.Policy) suppress.Change {
	ns := ev.Tenant // the state namespace: "" when the policy makes this global
	if d.Global {
		ns = ""
	}
	c := suppress.Change{
		EventID: ev.ID, ESP: ev.ESP, Tenant: ns, EventTenant: ev.Tenant, Address: ev.Recipient,
		Reason: d.Reason, Class: string(cl.Class), Rule: cl.Rule, Code: cl.Code, Reply: reply,
		SuppressTTL: d.SuppressTTL, SoftWindow: pol.SoftWindow, SoftThreshold: pol.SoftThreshold, SoftTTL: pol.SoftSuppressionTTL,
	}
	switch d.Action {
	case policy.ActionSuppress:
		c.Action = suppress.ActionSuppress
	case policy.ActionSoft:
		c.Action = suppress.ActionSoft
	case policy.ActionReset:
		c.Action = suppress.ActionReset
	default:
		c.Action = suppress.ActionRecord
	}
	return c
}

// observation is what a sender-side event tells its incident.
func (p *Processor) observation(ev *events.Event, reply string, cl catalog.Classification, pol *policy.Policy) alert.Observation {
	return alert.Observation{
		EventID: ev.ID, Tenant: ev.Tenant, Class: string(cl.Class), Severity: pol.Incidents.Severity(string(cl.Class)),
		SendingDomain: ev.SendingDomain, SendingIP: ev.SendingIP, Recipient: ev.Recipient,
		// The incident is shown to on-call and sent to chat: no recipient address in it.
		Code: cl.Code, Rule: cl.Rule, ESP: ev.ESP, Reply: events.RedactAddresses(reply), Fix: p.cfg.Catalog.FixSteps(cl),
	}
}

// apply writes the batch's recipient changes and its incident observations, at the
// same time: they are independent, and each is idempotent by event ID, so an event
// whose one half failed is retried whole and its other half counts once.
func (p *Processor) apply(ctx context.Context, changes []suppress.Change, obs []alert.Observation) ([]suppress.Outcome, []alert.Outcome, error) {
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

func (p *Processor) done(w *pending) {
	if err := w.msg.Ack(); err != nil {
		// The effect is stored; a lost ack only means a harmless redelivery.
		p.cfg.Log.Warn("ack", zap.String("event_id", w.res.Event.ID), zap.Error(err))
	}
	r := &w.res
	if m := p.cfg.Metrics; m != nil {
		if r.Outcome.Duplicate {
			m.EventsDuplicate.WithLabelValues(r.Event.ESP).Inc()
		} else {
			m.EventsProcessed.WithLabelValues(r.Event.ESP, string(r.Classification.Class), string(r.Classification.Scope), string(r.Decision.Action)).Inc()
			if r.Outcome.Suppressed && (r.Decision.Action == policy.ActionSuppress || r.Decision.Action == policy.ActionSoft) {
				m.Suppressions.WithLabelValues(reasonLabel(r)).Inc()
			}
			if inc := r.Incident; inc != nil && !inc.Duplicate {
				switch {
				case inc.Opened:
					m.IncidentsOpened.WithLabelValues(inc.Class).Inc()
				case inc.Reopened:
					m.IncidentsReopened.WithLabelValues(inc.Class).Inc()
				}
			}
		}
	}
	if ce := p.cfg.Log.Check(zap.DebugLevel, "decision"); ce != nil {
		ce.Write(zap.String("event_id", r.Event.ID), zap.String("esp", r.Event.ESP), zap.String("class", string(r.Classification.Class)),
			zap.String("scope", string(r.Classification.Scope)), zap.String("rule", r.Classification.Rule), zap.String("action", string(r.Decision.Action)),
			zap.Bool("duplicate", r.Outcome.Duplicate), zap.Bool("suppressed", r.Outcome.Suppressed), zap.Int("soft_count", r.Outcome.SoftCount))
	}
	if inc := r.Incident; inc != nil && (inc.Opened || inc.Reopened) {
		what := "incident opened"
		if inc.Reopened {
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
