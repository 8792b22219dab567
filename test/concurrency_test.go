package test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/process"
	"github.com/reboundhq/rebound/internal/stream"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// The replies of the workload, each with the action the default policy must take.
const (
	replyHard    = "550 5.1.1 user unknown"            // suppress, permanent
	replySoft    = "452 4.2.2 Mailbox full"            // soft
	replySender  = "530 5.7.0 Authentication required" // sender-side incident, never suppress
	replyUnknown = "554 zork blarg frobnicated"        // unknown: record only
)

// sendingDomains are the sending paths the 530s come from: one incident each.
var sendingDomains = []string{"mail-a.example.org", "mail-b.example.org", "mail-c.example.org"}

// expected is one recipient's final state, whatever the order of its events.
type expected struct {
	suppressed bool
	reason     string
	permanent  bool
	events     int // the record's event count
	soft       int // soft bounces in the window
	history    int // history entries (capped at 20)
}

// plannedRecipient is one recipient's events: phase 1 is published at once and may be
// applied in any order by any worker; phase 2 is published only after every phase-1
// event is acknowledged.
type plannedRecipient struct {
	addr           string
	phase1, phase2 []events.Event
	want           expected
}

// workload builds n recipients whose expected final state does not depend on the order
// in which their events are applied — events of one recipient go to different workers
// and are applied in any order:
//   - a hard bounce is permanent and keeps its reason whatever comes before or after
//     it; soft bounces around it still count into the window, and the record's event
//     count is 1 + one per soft bounce at or past the threshold, in any order;
//   - soft bounces alone: the window count is their number; the record appears at the
//     third and counts one event per soft bounce from the third on;
//   - delivered clears the window and lifts a soft-threshold suppression, so it is never
//     mixed with soft bounces of the same phase: it comes in phase 2, after the barrier;
//   - delivered after a hard bounce changes nothing but the history, in any order;
//   - 530s and unknown replies only add history (and count into an incident).
//
// Every distinct event adds one history entry; the history shows the last 20.
func workload(rng *rand.Rand, n int) []plannedRecipient {
	var out []plannedRecipient
	for i := range n {
		// Ten receiving domains keep every domain far below the mass-bounce threshold.
		p := plannedRecipient{addr: fmt.Sprintf("c%03d@d%d.example", i, i%10)}
		seq := 0
		add := func(phase int, typ events.Type, reply, sendingDomain string) {
			seq++
			e := events.Event{ID: fmt.Sprintf("generic:c%03d-%02d", i, seq), ESP: "generic", Type: typ,
				OccurredAt: time.Now().UTC(), Recipient: p.addr, SendingDomain: sendingDomain}
			if reply != "" {
				e.Reply = events.Reply{Text: reply}
			}
			if e.SendingDomain == "" {
				e.SendingDomain = "mail.example.org"
			}
			if phase == 1 {
				p.phase1 = append(p.phase1, e)
			} else {
				p.phase2 = append(p.phase2, e)
			}
		}
		times := func(k int, f func()) {
			for range k {
				f()
			}
		}
		bounce := func(reply string) func() { return func() { add(1, events.TypeBounce, reply, "") } }
		sender := func() { add(1, events.TypeBounce, replySender, sendingDomains[rng.IntN(len(sendingDomains))]) }
		switch i % 8 {
		case 0: // hard bounce, unknown replies, maybe a delivered in the same phase
			bounce(replyHard)()
			times(rng.IntN(4), bounce(replyUnknown))
			if rng.IntN(2) == 0 {
				add(1, events.TypeDelivered, "", "")
			}
			p.want = expected{suppressed: true, reason: "recipient_unknown", permanent: true, events: 1}
		case 1: // hard bounce mixed with soft bounces
			s := 1 + rng.IntN(4)
			bounce(replyHard)()
			times(s, bounce(replySoft))
			p.want = expected{suppressed: true, reason: "recipient_unknown", permanent: true, events: 1 + max(0, s-2), soft: s}
		case 2: // soft bounces below the threshold
			s := 1 + rng.IntN(2)
			times(s, bounce(replySoft))
			p.want = expected{soft: s}
		case 3: // soft bounces at or past the threshold
			s := 3 + rng.IntN(3)
			times(s, bounce(replySoft))
			p.want = expected{suppressed: true, reason: "soft_bounce_threshold", events: s - 2, soft: s}
		case 4: // soft bounces (maybe enough to suppress), then delivered after the barrier
			times(1+rng.IntN(4), bounce(replySoft))
			add(2, events.TypeDelivered, "", "")
		case 5: // sender-side 530s: an incident, never a suppression
			times(1+rng.IntN(3), sender)
		case 6: // a long run of unknown replies: history is capped at 20
			times(18+rng.IntN(8), bounce(replyUnknown))
		case 7: // a bit of everything that must not suppress
			sender()
			times(rng.IntN(3), bounce(replySoft))
			bounce(replyUnknown)()
			p.want.soft = len(p.phase1) - 2
		}
		p.want.history = min(20, len(p.phase1)+len(p.phase2))
		out = append(out, p)
	}
	return out
}

// actionOf is what the default policy does with an event.
func actionOf(cat *catalog.Catalog, e *events.Event) policy.Action {
	cl := cat.Classify(e.Reply.String(), catalog.Hints{Code: e.Reply.Code, Enhanced: e.Reply.Enhanced, RemoteHost: e.MTA})
	return policy.Default().Decide(e, cl).Action
}

// TestConcurrencyWorkersReachExactState runs three process-role workers on one durable
// consumer over a generated workload, with true duplicates (re-published without
// Nats-Msg-Id), ESP retries (same Nats-Msg-Id, dropped by JetStream), deliveries
// abandoned by a crashed worker before any effect, and acknowledgements lost after the
// effect (a worker that dies between Redis and the ack). It proves that every event
// takes effect exactly once and that the final Redis state is exactly the expected one.
func TestConcurrencyWorkersReachExactState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A failure names its seed; REBOUND_TEST_SEED replays that workload.
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("REBOUND_TEST_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("REBOUND_TEST_SEED: %v", err)
		}
		seed = n
	}
	t.Logf("workload seed %d (REBOUND_TEST_SEED)", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	plan := workload(rng, 200)

	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	// The expected state rests on what the policy does with each reply: check it first,
	// so a catalog change shows up here and not as a puzzling state mismatch.
	for reply, want := range map[string]policy.Action{replyHard: policy.ActionSuppress, replySoft: policy.ActionSoft, replySender: policy.ActionAlert, replyUnknown: policy.ActionNone} {
		e := events.Event{Type: events.TypeBounce, Recipient: "a@b.example", Reply: events.Reply{Text: reply}}
		if got := actionOf(cat, &e); got != want {
			t.Fatalf("policy action for %q = %s, the workload assumes %s", reply, got, want)
		}
	}

	_, js := testsvc.JetStream(t)
	names := testsvc.Names(t, js)
	rdb := testsvc.RedisClient(t)
	prefix := testsvc.Prefix(t, rdb)
	settings := stream.DefaultSettings()
	// Short, so deliveries that are abandoned or whose ack is lost come back in time.
	settings.AckWait = 2 * time.Second
	cons, err := stream.Provision(ctx, js, names, settings)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	store := suppress.New(rdb, suppress.Options{Prefix: prefix})
	alerts := alert.NewStore(rdb, alert.StoreOptions{Prefix: prefix})
	if err := store.Load(ctx); err != nil {
		t.Fatal(err)
	}

	// Phase 1: every event once with its Nats-Msg-Id; a tenth again with the same ID
	// (an ESP retry: JetStream stores it once); a sixth again without an ID (a second
	// producer or a replay: the workers see a true duplicate). Shuffled together, so a
	// duplicate may even arrive before its original.
	var phase1, phase2 []events.Event
	for _, p := range plan {
		phase1 = append(phase1, p.phase1...)
		phase2 = append(phase2, p.phase2...)
	}
	var stored atomic.Int64 // messages the stream must hold
	msgs1 := mixDuplicates(rng, phase1, nil)
	publishMessages(t, js, names, msgs1, &stored)

	// A worker that fetched some events and crashed before doing anything: they are
	// redelivered after AckWait and take effect then.
	abandoned, err := cons.Fetch(25, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var abandonedSeqs []uint64
	for m := range abandoned.Messages() {
		md, _ := m.Metadata()
		abandonedSeqs = append(abandonedSeqs, md.Sequence.Stream)
	}
	if len(abandonedSeqs) == 0 {
		t.Fatalf("the crashed worker fetched nothing: %v", abandoned.Error())
	}

	// Three workers on the one durable consumer. The first loses the ack of its first
	// 30 deliveries after their effect is in Redis, as a worker killed between the
	// Redis step and the ack would.
	obs := &observer{acked: map[uint64]uint64{}, applied: map[string]int{}, created: map[string]int{}}
	var cancels []context.CancelFunc
	var dones []chan error
	for w := range 3 {
		c := &observedConsumer{Consumer: cons, obs: obs}
		if w == 0 {
			c.loseAcks.Store(30)
		}
		p := process.New(process.Config{
			Consumer: c, Store: store, Alerts: alerts, Catalog: cat, Policy: policy.Default,
			Publisher: stream.NewPublisher(js, names, 5*time.Second), Metrics: metrics.New(),
			Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), BatchSize: 32, MaxDeliver: settings.MaxDeliver, MaxBackoff: time.Second,
			OnProcessed: obs.processed,
		})
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(runCtx) }()
		cancels, dones = append(cancels, cancel), append(dones, done)
	}
	stopWorkers := func() {
		for _, c := range cancels {
			c()
		}
		for _, d := range dones {
			select {
			case err := <-d:
				if err != nil {
					t.Errorf("worker Run = %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("worker did not stop within 10s")
			}
		}
		cancels = nil
	}
	t.Cleanup(func() {
		if cancels != nil {
			stopWorkers()
		}
	})

	start := time.Now()
	waitDrained(t, js, names, 30*time.Second)
	t.Logf("phase 1: %d messages drained in %s", len(msgs1), time.Since(start).Round(time.Millisecond))

	// Phase 2, after the barrier: the delivered events, plus late redeliveries of
	// phase-1 events (they must change nothing, not even re-count a lifted soft bounce).
	msgs2 := mixDuplicates(rng, phase2, phase1)
	publishMessages(t, js, names, msgs2, &stored)
	waitDrained(t, js, names, 30*time.Second)
	stopWorkers()
	t.Logf("both phases: %d messages in %s", len(msgs1)+len(msgs2), time.Since(start).Round(time.Millisecond))

	// The stream holds every message but the ESP retries; nothing was dead-lettered.
	if n := streamMsgs(t, js, names.Stream); n != uint64(stored.Load()) {
		t.Fatalf("stream holds %d messages, want %d (ESP retries with the same Nats-Msg-Id dropped)", n, stored.Load())
	}
	if n := streamMsgs(t, js, names.DeadStream); n != 0 {
		t.Fatalf("dead-letter stream holds %d messages, want 0", n)
	}

	// Every stream message was acknowledged; the abandoned ones and those whose ack was
	// lost were acknowledged on a later delivery.
	obs.mu.Lock()
	defer obs.mu.Unlock()
	for seq := uint64(1); seq <= uint64(stored.Load()); seq++ {
		if obs.acked[seq] == 0 {
			t.Fatalf("stream message %d was never acknowledged", seq)
		}
	}
	for _, seq := range append(slices.Clone(abandonedSeqs), obs.lost...) {
		if obs.acked[seq] < 2 {
			t.Fatalf("stream message %d was abandoned or its ack lost, but was acknowledged on delivery %d", seq, obs.acked[seq])
		}
	}
	if len(obs.lost) == 0 {
		t.Fatal("no ack was lost: the worker that loses acks got no message")
	}

	// Exactly-once effect: each distinct event took effect once, however many times it
	// was delivered.
	all := append(slices.Clone(phase1), phase2...)
	for _, e := range all {
		if n := obs.applied[e.ID]; n != 1 {
			t.Fatalf("event %s took effect %d times, want once", e.ID, n)
		}
	}
	if len(obs.applied) != len(all) {
		t.Fatalf("%d distinct events took effect, want %d", len(obs.applied), len(all))
	}
	t.Logf("%d events, %d messages, %d duplicate outcomes, %d abandoned deliveries, %d lost acks",
		len(all), stored.Load(), obs.duplicates, len(abandonedSeqs), len(obs.lost))
	if want := len(msgs1) + len(msgs2) - len(all) - countRetries(msgs1, msgs2) + len(obs.lost); obs.duplicates < want {
		t.Fatalf("%d duplicate outcomes, want at least %d (true duplicates and lost acks)", obs.duplicates, want)
	}

	// The final state, recipient by recipient.
	suppressed := 0
	for _, p := range plan {
		st, err := store.Recipient(ctx, "", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		got := expected{soft: st.SoftBounces, history: len(st.History)}
		if r := st.Suppression; r != nil {
			got.suppressed, got.reason, got.permanent, got.events = true, r.Reason, r.ExpiresAt == nil, r.Events
		}
		if got != p.want {
			t.Errorf("%s: state %+v, want %+v", p.addr, got, p.want)
		}
		if p.want.suppressed {
			suppressed++
		}
	}
	recs, err := store.ListSuppressions(ctx, "", 0, 1000)
	if err != nil || len(recs) != suppressed {
		t.Errorf("ListSuppressions = %d records, %v, want %d", len(recs), err, suppressed)
	}

	// One incident per sending domain, counting each 530 once, opened once.
	wantInc := map[string]int{}
	for _, e := range all {
		if e.Reply.Text == replySender {
			wantInc[alert.Fingerprint("", "auth_required", e.SendingDomain, "")]++
		}
	}
	incs, err := alerts.List(ctx, alert.Filter{State: "open"})
	if err != nil {
		t.Fatal(err)
	}
	gotInc := map[string]int{}
	for _, inc := range incs {
		gotInc[inc.ID] = int(inc.Messages)
	}
	if fmt.Sprint(gotInc) != fmt.Sprint(wantInc) {
		t.Errorf("incident counts = %v, want %v", gotInc, wantInc)
	}
	for fp := range wantInc {
		if obs.created[fp] != 1 {
			t.Errorf("incident %s opened %d times, want once", fp, obs.created[fp])
		}
	}
	for _, inc := range incs {
		if inc, err = alerts.Get(ctx, inc.ID); err != nil {
			t.Fatal(err)
		}
		if inc.Seq != 1 || len(inc.Transitions) != 1 || inc.Transitions[0].Kind != "trigger" {
			t.Errorf("incident %s: seq %d, transitions %+v, want exactly one trigger queued", inc.ID, inc.Seq, inc.Transitions)
		}
	}
}

// pubMessage is one publication: an event, with or without its Nats-Msg-Id.
type pubMessage struct {
	event events.Event
	msgID bool // published with Nats-Msg-Id (a retry of it is dropped by JetStream)
	retry bool // a re-publication with the same Nats-Msg-Id as an earlier message
}

// mixDuplicates returns evs, each once with its ID, plus ESP retries (same Nats-Msg-Id)
// of about a tenth of them and true duplicates (no Nats-Msg-Id) of about a sixth of
// them and of late, a few events of earlier — shuffled.
func mixDuplicates(rng *rand.Rand, evs, earlier []events.Event) []pubMessage {
	var out []pubMessage
	for _, e := range evs {
		out = append(out, pubMessage{event: e, msgID: true})
		if rng.IntN(6) == 0 {
			out = append(out, pubMessage{event: e})
		}
	}
	for _, e := range earlier {
		if rng.IntN(10) == 0 {
			out = append(out, pubMessage{event: e})
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	// Retries go after the originals so that JetStream sees the ID a second time.
	for _, e := range evs {
		if rng.IntN(10) == 0 {
			out = append(out, pubMessage{event: e, msgID: true, retry: true})
		}
	}
	return out
}

func countRetries(lists ...[]pubMessage) int {
	n := 0
	for _, l := range lists {
		for _, m := range l {
			if m.retry {
				n++
			}
		}
	}
	return n
}

// publishMessages sends the messages asynchronously and waits for every PubAck, counting the
// ones the stream stores.
func publishMessages(t *testing.T, js jetstream.JetStream, names events.Names, msgs []pubMessage, stored *atomic.Int64) {
	t.Helper()
	var futures []jetstream.PubAckFuture
	for _, m := range msgs {
		data, err := json.Marshal(m.event)
		if err != nil {
			t.Fatal(err)
		}
		msg := &nats.Msg{Subject: names.EventSubject(m.event.ESP), Data: data, Header: nats.Header{}}
		if m.msgID {
			msg.Header.Set(jetstream.MsgIDHeader, m.event.ID)
		}
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate != msgs[i].retry {
				t.Fatalf("publish %s: duplicate %v, want %v", msgs[i].event.ID, ack.Duplicate, msgs[i].retry)
			}
			if !ack.Duplicate {
				stored.Add(1)
			}
		case err := <-f.Err():
			t.Fatalf("publish %s: %v", msgs[i].event.ID, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("publish %s: no PubAck within 30s", msgs[i].event.ID)
		}
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return info.State.Msgs
}

// waitDrained waits until the consumer has nothing pending and nothing unacknowledged.
func waitDrained(t *testing.T, js jetstream.JetStream, names events.Names, timeout time.Duration) {
	t.Helper()
	cons, err := js.Consumer(context.Background(), names.Stream, names.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		info, err := cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer not drained after %s: pending %d, ack pending %d", timeout, info.NumPending, info.NumAckPending)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// observer records what the workers did: acknowledged deliveries by stream sequence,
// effects and incident openings by event, and acks lost on purpose.
type observer struct {
	mu         sync.Mutex
	acked      map[uint64]uint64 // stream sequence → delivery count at its (real) ack
	lost       []uint64          // stream sequences whose ack was lost on purpose
	applied    map[string]int    // event ID → non-duplicate outcomes
	created    map[string]int    // incident fingerprint → outcomes that opened it
	duplicates int
}

func (o *observer) processed(r process.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if r.Outcome.Duplicate {
		o.duplicates++
		return
	}
	o.applied[r.Event.ID]++
	if opened, _ := r.OpenedHere(); opened {
		o.created[r.Incident.Fingerprint]++
	}
}

// observedConsumer is the real durable consumer, with every message it hands to the
// worker watched: the real ack is recorded, or — for the first loseAcks messages —
// not sent at all, as if the worker died right after its Redis step.
type observedConsumer struct {
	jetstream.Consumer
	obs      *observer
	loseAcks atomic.Int64
}

func (c *observedConsumer) Consume(h jetstream.MessageHandler, opts ...jetstream.PullConsumeOpt) (jetstream.ConsumeContext, error) {
	return c.Consumer.Consume(func(m jetstream.Msg) {
		h(&observedMsg{Msg: m, c: c})
	}, opts...)
}

type observedMsg struct {
	jetstream.Msg
	c *observedConsumer
}

func (m *observedMsg) Ack() error {
	md, err := m.Metadata()
	if err != nil {
		return err
	}
	if m.c.loseAcks.Add(-1) >= 0 {
		m.c.obs.mu.Lock()
		m.c.obs.lost = append(m.c.obs.lost, md.Sequence.Stream)
		m.c.obs.mu.Unlock()
		return nil
	}
	if err := m.Msg.Ack(); err != nil {
		return err
	}
	m.c.obs.mu.Lock()
	m.c.obs.acked[md.Sequence.Stream] = max(m.c.obs.acked[md.Sequence.Stream], md.NumDelivered)
	m.c.obs.mu.Unlock()
	return nil
}
