package test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/stream"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// The chaos suite (chaos_*_test.go) runs the worker binary as an operator would and
// breaks what it depends on in the middle of a workload: the worker itself (kill -9),
// Redis, the NATS server, a NATS cluster's stream leader, JetStream under ingest. Each
// test computes the exact final state from its inputs — per recipient: suppressed or
// not, why, the record's event count, the soft-bounce window, the history length; per
// sending domain: the incident's count — and asserts it equal. Each logs (go test -v)
// the events in, the events applied, the duplicates absorbed and the time to recover.
// docs/operations.md ("Chaos tests") says what each proves and how to run one.

// chaosAckWait is the workers' REBOUND_ACK_WAIT: what a killed worker held comes back
// after it, so it bounds the time to recover from a kill; short, to keep the suite fast.
const chaosAckWait = 5 * time.Second

// chaosEvents scales a test's workload down under -short.
func chaosEvents(n int) int {
	if testing.Short() {
		return n / 10
	}
	return n
}

// chaosPlan is a workload (workload in concurrency_test.go: the expected final state
// does not depend on the order in which events are applied) spread over enough
// receiving domains that none comes near the mass-bounce guard's threshold, with its
// messages: phase 1 with true duplicates and ESP retries mixed in, phase 2 (delivered
// events and late duplicates of phase 1) to publish once phase 1 is applied.
type chaosPlan struct {
	seed           uint64
	recipients     []plannedRecipient
	phase1, phase2 []events.Event
	msgs1, msgs2   []pubMessage
}

// recipientsPerDomain keeps every receiving domain far below the default policy's
// mass-bounce threshold (100 hard-bounced recipients in 10 minutes): about a quarter
// of the recipients hard-bounce.
const recipientsPerDomain = 40

// newChaosPlan builds a workload of at least minEvents distinct events. A failure names
// its seed; REBOUND_TEST_SEED replays that workload.
func newChaosPlan(t *testing.T, minEvents int) *chaosPlan {
	t.Helper()
	checkWorkloadPolicy(t)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("REBOUND_TEST_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("REBOUND_TEST_SEED: %v", err)
		}
		seed = n
	}
	t.Logf("workload seed %d (REBOUND_TEST_SEED)", seed)
	rng := rand.New(rand.NewPCG(seed, 12))
	p := &chaosPlan{seed: seed}
	total := 0
	for total < minEvents {
		for _, r := range workload(rng, 200) {
			// Renamed by their global index: the generator names them by its own.
			i := len(p.recipients)
			r.addr = fmt.Sprintf("c%05d@d%04d.example", i, i/recipientsPerDomain)
			rename := func(evs []events.Event, seq int) {
				for k := range evs {
					evs[k].Recipient = r.addr
					evs[k].ID = fmt.Sprintf("generic:c%05d-%02d", i, seq+k+1)
				}
			}
			rename(r.phase1, 0)
			rename(r.phase2, len(r.phase1))
			p.recipients = append(p.recipients, r)
			p.phase1 = append(p.phase1, r.phase1...)
			p.phase2 = append(p.phase2, r.phase2...)
			total += len(r.phase1) + len(r.phase2)
		}
	}
	p.msgs1 = mixDuplicates(rng, p.phase1, nil)
	p.msgs2 = mixDuplicates(rng, p.phase2, p.phase1)
	return p
}

// events is the number of distinct events.
func (p *chaosPlan) events() int { return len(p.phase1) + len(p.phase2) }

// checkWorkloadPolicy checks what the workload assumes of the default policy, so that a
// catalog change shows up here and not as a puzzling state mismatch.
func checkWorkloadPolicy(t *testing.T) {
	t.Helper()
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	for reply, want := range map[string]policy.Action{replyHard: policy.ActionSuppress, replySoft: policy.ActionSoft, replySender: policy.ActionAlert, replyUnknown: policy.ActionNone} {
		e := events.Event{Type: events.TypeBounce, Recipient: "a@b.example", Reply: events.Reply{Text: reply}}
		if got := actionOf(cat, &e); got != want {
			t.Fatalf("policy action for %q = %s, the workload assumes %s", reply, got, want)
		}
	}
}

// chaosPublish publishes messages in windows of a thousand PubAcks (a run of tens of
// thousands would overrun the client's async window) and returns how many the stream
// stored: all but the ESP retries, which JetStream drops by their Nats-Msg-Id. The
// retries go out once every original is acknowledged, as an ESP's retry comes later:
// a replicated stream answers a retry of a message it is still storing with an error
// ("duplicate message id is in process"), not with a duplicate acknowledgement.
func chaosPublish(t *testing.T, js jetstream.JetStream, names events.Names, msgs []pubMessage) int {
	t.Helper()
	var originals, retries []pubMessage
	for _, m := range msgs {
		if m.retry {
			retries = append(retries, m)
		} else {
			originals = append(originals, m)
		}
	}
	return chaosPublishWindows(t, js, names, originals) + chaosPublishWindows(t, js, names, retries)
}

func chaosPublishWindows(t *testing.T, js jetstream.JetStream, names events.Names, msgs []pubMessage) int {
	t.Helper()
	// Windows of 1,000 messages, each waited for: an R3 stream under a leader change
	// would otherwise hold tens of thousands of unacknowledged publishes.
	var stored atomic.Int64
	for start := 0; start < len(msgs); start += 1000 {
		publishMessages(t, js, names, msgs[start:min(start+1000, len(msgs))], &stored)
	}
	return int(stored.Load())
}

// chaosDeployment is what the worker replicas of one test share: the servers, the
// stream, consumer and subject names, the key prefix and the worker settings.
type chaosDeployment struct {
	natsURL, redisURL string
	names             events.Names
	prefix            string
	env               []string // REBOUND_* settings beyond the connection and names
}

// newChaosDeployment provisions the streams and the consumer as the workers will (so
// events can be published before the first worker starts) on the given servers.
func newChaosDeployment(t *testing.T, natsURL, redisURL string, replicas int) (*chaosDeployment, jetstream.JetStream, *redis.Client) {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect %s: %v", natsURL, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	d := &chaosDeployment{natsURL: natsURL, redisURL: redisURL, names: testsvc.Names(t, js), prefix: testsvc.Prefix(t, rdb)}
	settings := stream.DefaultSettings()
	settings.AckWait, settings.Replicas = chaosAckWait, replicas
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := stream.Provision(ctx, js, d.names, settings); err != nil {
		t.Fatalf("provision: %v", err)
	}
	d.env = []string{"REBOUND_ROLES=process", "REBOUND_ACK_WAIT=" + chaosAckWait.String(), fmt.Sprintf("REBOUND_STREAM_REPLICAS=%d", replicas)}
	return d, js, rdb
}

var (
	chaosBinOnce sync.Once
	chaosBin     string
	chaosBinErr  error
)

// chaosWorkerBin is the worker built without -race, once per test run: the chaos tests
// push tens of thousands of events through it, which the race detector would slow
// several times over (the in-process tests cover the same code with -race).
func chaosWorkerBin(t *testing.T) string {
	t.Helper()
	chaosBinOnce.Do(func() {
		chaosBin = filepath.Join(filepath.Dir(workerBin), "worker-norace")
		out, err := exec.Command("go", "build", "-o", chaosBin, "../cmd/worker").CombinedOutput()
		if err != nil {
			chaosBinErr = fmt.Errorf("go build ../cmd/worker: %v\n%s", err, out)
		}
	})
	if chaosBinErr != nil {
		t.Fatal(chaosBinErr)
	}
	return chaosBin
}

// chaosWorker is one worker process of a chaos test. Its log goes to a file, so that
// what it logged before a kill -9 is all there.
type chaosWorker struct {
	name    string
	base    string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// start starts one replica and waits until /readyz answers 200.
func (d *chaosDeployment) start(t *testing.T, name string, extraEnv ...string) *chaosWorker {
	t.Helper()
	port, err := testsvc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	adminPort, err := testsvc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	w := &chaosWorker{name: name, base: fmt.Sprintf("http://127.0.0.1:%d", port), logPath: filepath.Join(t.TempDir(), name+".log"), exited: make(chan struct{})}
	logf, err := os.Create(w.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own descriptor
	w.cmd = exec.Command(chaosWorkerBin(t), "serve")
	w.cmd.Env = append(os.Environ(),
		"REBOUND_NATS_URL="+d.natsURL,
		"REBOUND_REDIS_URL="+d.redisURL,
		"REBOUND_REDIS_PREFIX="+d.prefix,
		"REBOUND_STREAM="+d.names.Stream,
		"REBOUND_DEADLETTER_STREAM="+d.names.DeadStream,
		"REBOUND_CONSUMER="+d.names.Consumer,
		"REBOUND_SUBJECT_PREFIX="+d.names.SubjectPrefix,
		fmt.Sprintf("REBOUND_HTTP_ADDR=127.0.0.1:%d", port),
		fmt.Sprintf("REBOUND_ADMIN_ADDR=127.0.0.1:%d", adminPort),
		// Debug: one "decision" line per event, which is how duplicates are counted.
		"REBOUND_LOG_LEVEL=debug",
	)
	w.cmd.Env = append(append(w.cmd.Env, d.env...), extraEnv...)
	w.cmd.Stdout, w.cmd.Stderr = logf, logf
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.cmd.Wait(); close(w.exited) }()
	t.Cleanup(func() {
		w.kill()
		if t.Failed() {
			t.Logf("worker %s log (last lines):\n%s", w.name, w.tail(60))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for w.ready() != http.StatusOK {
		select {
		case <-w.exited:
			t.Fatalf("worker %s exited before ready: %v\n%s", name, w.cmd.ProcessState, w.tail(60))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %s not ready within 60s:\n%s", name, w.tail(60))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return w
}

// kill sends SIGKILL and waits until the process is gone.
func (w *chaosWorker) kill() {
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.exited
}

// running reports whether the process has not exited.
func (w *chaosWorker) running() bool {
	select {
	case <-w.exited:
		return false
	default:
		return true
	}
}

// ready is the status of GET /readyz (0 when it does not answer).
func (w *chaosWorker) ready() int {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(w.base + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// logCounts counts the worker's log lines: events it acknowledged ("decision" lines)
// of which duplicates (an event whose effect was already stored), and dead letters.
type logCounts struct{ decisions, duplicates, deadLetters int }

func (c logCounts) add(o logCounts) logCounts {
	return logCounts{c.decisions + o.decisions, c.duplicates + o.duplicates, c.deadLetters + o.deadLetters}
}

func (w *chaosWorker) counts(t *testing.T) logCounts {
	t.Helper()
	f, err := os.Open(w.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var c logCounts
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, `"msg":"decision"`):
			c.decisions++
			if strings.Contains(line, `"duplicate":true`) {
				c.duplicates++
			}
		case strings.Contains(line, `"msg":"event dead-lettered"`):
			c.deadLetters++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", w.logPath, err)
	}
	return c
}

// logged reports whether a line the worker logged after byte *offset contains what,
// and moves *offset to the end of the last whole line read: a long log is read once.
func (w *chaosWorker) logged(offset *int64, what string) bool {
	f, err := os.Open(w.logPath)
	if err != nil {
		return false
	}
	defer f.Close()
	if _, err := f.Seek(*offset, 0); err != nil {
		return false
	}
	b, _ := io.ReadAll(f)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	*offset += int64(len(b))
	return bytes.Contains(b, []byte(what))
}

// tail returns the last n lines of the worker's log.
func (w *chaosWorker) tail(n int) string {
	b, _ := os.ReadFile(w.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// consumerAcked is how many of the stream's stored messages the consumer has had
// acknowledged: neither pending nor awaiting an ack. It tolerates a server that does
// not answer (it is being broken): ok is false then.
func consumerAcked(js jetstream.JetStream, names events.Names, stored int) (acked int, info *jetstream.ConsumerInfo, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, names.Stream, names.Consumer)
	if err != nil {
		return 0, nil, false
	}
	info, err = cons.Info(ctx)
	if err != nil {
		return 0, nil, false
	}
	return stored - int(info.NumPending) - info.NumAckPending, info, true
}

// waitAcked waits until at least n messages are acknowledged and returns when that was.
func waitAcked(t *testing.T, js jetstream.JetStream, names events.Names, stored, n int, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := -1
	for {
		acked, _, ok := consumerAcked(js, names, stored)
		if ok {
			last = acked
		}
		if ok && acked >= n {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages acknowledged after %s, want %d", last, stored, timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recovery is how long the pipeline took to come back from a fault: from the moment
// the fault ended (the worker or server was back) until the consumer acknowledged a
// message again, and until it had nothing left.
type recovery struct{ resumed, drained time.Duration }

func (r recovery) String() string {
	return fmt.Sprintf("acknowledging again after %s, drained after %s", r.resumed.Round(time.Millisecond), r.drained.Round(time.Millisecond))
}

// measureRecovery polls the consumer from the end of a fault (from) until everything
// stored is acknowledged; base is how many were acknowledged when the fault ended (-1:
// what the first poll finds).
func measureRecovery(t *testing.T, js jetstream.JetStream, names events.Names, stored, base int, from time.Time, timeout time.Duration) recovery {
	t.Helper()
	var r recovery
	deadline := from.Add(timeout)
	for {
		acked, info, ok := consumerAcked(js, names, stored)
		if ok {
			if base < 0 {
				base = acked
			}
			if r.resumed == 0 && (acked > base || acked == stored) {
				r.resumed = time.Since(from)
			}
			if acked == stored && info.NumAckPending == 0 {
				r.drained = time.Since(from)
				return r
			}
		}
		if time.Now().After(deadline) {
			if info != nil {
				t.Fatalf("not drained %s after the fault: %d of %d acknowledged, pending %d, ack pending %d, redelivered %d",
					timeout, acked, stored, info.NumPending, info.NumAckPending, info.NumRedelivered)
			}
			t.Fatalf("not drained %s after the fault: the consumer does not answer", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chaosStreamMsgs is the number of messages in a stream, retried while the servers
// settle after a fault.
func chaosStreamMsgs(t *testing.T, js jetstream.JetStream, name string) int {
	t.Helper()
	var last error
	for range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := js.Stream(ctx, name)
		if err == nil {
			var info *jetstream.StreamInfo
			if info, err = s.Info(ctx); err == nil {
				cancel()
				return int(info.State.Msgs)
			}
		}
		cancel()
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("stream %s: %v", name, last)
	return 0
}

// assertChaosState compares the Redis state with the plan's, recipient by recipient
// and incident by incident, and returns the number of distinct events applied (the
// entries of every recipient's log: one per event whose effect is stored).
func assertChaosState(t *testing.T, rdb *redis.Client, prefix string, p *chaosPlan) int {
	t.Helper()
	ctx := context.Background()
	store := suppress.New(rdb, suppress.Options{Prefix: prefix})
	alerts := alert.NewStore(rdb, alert.StoreOptions{Prefix: prefix})

	// Recipients, eight at a time: tens of thousands of round trips otherwise.
	var (
		mu         sync.Mutex
		mismatches []string
		wg         sync.WaitGroup
		next       = make(chan int)
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := &p.recipients[i]
				st, err := store.Recipient(ctx, "", r.addr)
				var got expected
				if err == nil {
					got = expected{soft: st.SoftBounces, history: len(st.History)}
					if rec := st.Suppression; rec != nil {
						got.suppressed, got.reason, got.permanent, got.events = true, rec.Reason, rec.ExpiresAt == nil, rec.Events
					}
				}
				if err != nil || got != r.want {
					mu.Lock()
					mismatches = append(mismatches, fmt.Sprintf("%s: state %+v (%v), want %+v", r.addr, got, err, r.want))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range p.recipients {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(mismatches) > 0 {
		t.Errorf("%d of %d recipients differ from the expected state, e.g.:\n%s", len(mismatches), len(p.recipients),
			strings.Join(mismatches[:min(10, len(mismatches))], "\n"))
	}
	suppressed := 0
	for _, r := range p.recipients {
		if r.want.suppressed {
			suppressed++
		}
	}
	if recs, err := store.ListSuppressions(ctx, "", 0, suppressed+100); err != nil || len(recs) != suppressed {
		t.Errorf("ListSuppressions = %d records, %v, want %d", len(recs), err, suppressed)
	}

	// Every distinct event is in its recipient's log exactly once (the log keeps the
	// newest 200; no recipient has more than 25).
	keys := store.Keys()
	applied := 0
	for start := 0; start < len(p.recipients); start += 1000 {
		pipe := rdb.Pipeline()
		var lens []*redis.IntCmd
		for _, r := range p.recipients[start:min(start+1000, len(p.recipients))] {
			lens = append(lens, pipe.HLen(ctx, keys.Log("", r.addr)))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("HLEN of the recipient logs: %v", err)
		}
		for _, l := range lens {
			applied += int(l.Val())
		}
	}
	if applied != p.events() {
		t.Errorf("%d distinct events in the recipients' logs, want %d", applied, p.events())
	}

	// One incident per sending domain, counting each 530 once, its trigger queued once.
	wantInc := map[string]int{}
	for _, e := range append(p.phase1[:len(p.phase1):len(p.phase1)], p.phase2...) {
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
		full, err := alerts.Get(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if full.Seq != 1 || len(full.Transitions) != 1 || full.Transitions[0].Kind != "trigger" {
			t.Errorf("incident %s: seq %d, transitions %+v, want exactly one trigger queued", inc.ID, full.Seq, full.Transitions)
		}
	}
	if fmt.Sprint(gotInc) != fmt.Sprint(wantInc) {
		t.Errorf("incident counts = %v, want %v", gotInc, wantInc)
	}
	return applied
}

// chaosReport logs a test's figures: events in, events applied, duplicates absorbed
// and the time to recover, in one line.
func chaosReport(t *testing.T, p *chaosPlan, stored, applied int, c logCounts, recovered string) {
	t.Helper()
	t.Logf("CHAOS %s: events in %d (%d messages in the stream), events applied %d, duplicates absorbed %d (of %d acknowledged deliveries), dead letters %d; %s",
		t.Name(), p.events(), stored, applied, c.duplicates, c.decisions, c.deadLetters, recovered)
}
