package alert_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// fp530 is the incident of every obs530 event.
var fp530 = func() string { o := obs530("", ""); return o.Fingerprint() }()

func TestObserveOpensOnceAndCountsEachEventOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	opened := e.clk.Now()

	// One batch: the first event opens the incident, the repeat of an event ID inside
	// the batch (a redelivery that landed in the same fetch) counts once.
	out := e.observe(t, obs530("sg:1", "a@example.com"), obs530("sg:2", "b@example.com"), obs530("sg:1", "a@example.com"))
	for i, want := range []struct{ opened, dup bool }{{true, false}, {false, false}, {false, true}} {
		o := out[i]
		if o.Opened != want.opened || o.Reopened || o.Duplicate != want.dup || o.Count != 2 || o.Fingerprint != fp530 || o.Class != "auth_required" {
			t.Errorf("batch 1 event %d = %+v, want opened %v, duplicate %v, count 2", i, o, want.opened, want.dup)
		}
	}

	// A later batch: an event counted before is a duplicate, the incident is not
	// opened again, new events add up.
	e.clk.Add(time.Minute)
	out = e.observe(t, obs530("sg:2", "b@example.com"), obs530("sg:3", "c@example.com"), obs530("sg:4", "c@example.com"))
	for i, want := range []bool{true, false, false} {
		if o := out[i]; o.Opened || o.Reopened || o.Duplicate != want || o.Count != 4 {
			t.Errorf("batch 2 event %d = %+v, want duplicate %v, count 4, not opened", i, o, want)
		}
	}
	// A batch of nothing but duplicates reports the count and changes nothing. The
	// event that opened the incident says so (its first delivery may have failed after
	// the observation, owing the opening its log line and metric); the others do not.
	e.clk.Add(time.Minute)
	out = e.observe(t, obs530("sg:1", "a@example.com"), obs530("sg:2", "b@example.com"))
	if o := out[0]; !o.Duplicate || o.Opened || !o.OpenedEarlier || o.ReopenedEarlier || o.Count != 4 {
		t.Errorf("replayed opener = %+v, want a duplicate that opened the incident earlier, count 4", o)
	}
	if o := out[1]; !o.Duplicate || o.Opened || o.OpenedEarlier || o.ReopenedEarlier {
		t.Errorf("replayed event = %+v, want a plain duplicate", o)
	}

	inc := e.get(t, fp530)
	if inc.ID != fp530 || inc.State != alert.StateOpen || inc.Messages != 4 || inc.TotalMessages != 4 || inc.Recipients != 3 || inc.Seq != 1 {
		t.Errorf("incident = %+v, want open, 4 messages, 3 recipients, seq 1", inc)
	}
	if !inc.FirstSeen.Equal(opened) || !inc.CreatedAt.Equal(opened) || !inc.LastSeen.Equal(opened.Add(time.Minute)) {
		t.Errorf("first/created/last seen = %v/%v/%v, want %v/%v/%v (the duplicates-only batch is not an event)",
			inc.FirstSeen, inc.CreatedAt, inc.LastSeen, opened, opened, opened.Add(time.Minute))
	}
	if len(inc.Transitions) != 1 || inc.Transitions[0] != (alert.Transition{Seq: 1, Kind: "trigger", At: opened}) {
		t.Errorf("transitions = %+v, want one trigger at %v", inc.Transitions, opened)
	}
}

func TestObserveStoresTheIncidentsFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := obs530("sg:1", "a@example.com")
	e.observe(t, o)
	inc := e.get(t, fp530)
	got := []string{inc.Tenant, inc.Class, inc.Severity, inc.SendingDomain, inc.SendingIP, inc.ReceivingDomain, inc.Code, inc.Rule, inc.ESP}
	want := []string{"acme", "auth_required", "critical", "mail.example.com", "192.0.2.10", "", "530", "smtp-530", "sendgrid"}
	if !slices.Equal(got, want) {
		t.Errorf("tenant, class, severity, sending domain/IP, receiving domain, code, rule, esp = %q, want %q", got, want)
	}
	if !slices.Equal(inc.Fix, o.Fix) {
		t.Errorf("fix = %q, want %q", inc.Fix, o.Fix)
	}

	// The mass-bounce guard's incident is about a receiving domain, for every tenant.
	mb := alert.Observation{EventID: "sg:m1", Class: alert.ClassMassBounce, Severity: "high", ReceivingDomain: "example.net",
		Recipient: "x@example.net", Code: "5.1.1", Reply: "550 5.1.1 user unknown"}
	e.observe(t, mb)
	m := e.get(t, mb.Fingerprint())
	if m.Class != alert.ClassMassBounce || m.ReceivingDomain != "example.net" || m.Severity != "high" || m.Tenant != "" || m.SendingDomain != "" {
		t.Errorf("mass-bounce incident = %+v", m)
	}
	if len(m.Fix) != 0 || m.Fix == nil || m.Examples[0] != "550 5.1.1 user unknown" {
		t.Errorf("fix = %#v, examples = %q: want an empty (not nil) fix and the reply", m.Fix, m.Examples)
	}
}

func TestObserveRecipientsDomainsAndExamples(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var batch []alert.Observation
	// 5 messages to 4 distinct recipients: example.net 3, example.com 2.
	for i, rcpt := range []string{"a@example.com", "a@example.com", "b@example.net", "c@example.net", "d@example.net"} {
		o := obs530(fmt.Sprintf("sg:%d", i), rcpt)
		o.Reply = fmt.Sprintf("530 5.7.0 reply %d", i%3) // three distinct replies
		batch = append(batch, o)
	}
	batch[1].Reply = "" // an event without a reply gives no example
	e.observe(t, batch...)
	inc := e.get(t, fp530)
	if inc.Recipients != 4 {
		t.Errorf("recipients = %d, want 4 distinct", inc.Recipients)
	}
	if !slices.Equal(inc.Domains, []string{"example.net", "example.com"}) {
		t.Errorf("receiving domains = %q, want example.net (3) before example.com (2)", inc.Domains)
	}
	if want := []string{"530 5.7.0 reply 0", "530 5.7.0 reply 2", "530 5.7.0 reply 1"}; !slices.Equal(inc.Examples, want) {
		t.Errorf("examples = %q, want %q", inc.Examples, want)
	}

	// Further batches add distinct examples up to 5, keep the first ones, never repeat.
	var more []alert.Observation
	for i := range 8 {
		o := obs530(fmt.Sprintf("sg:more%d", i), "a@example.com")
		o.Reply = fmt.Sprintf("530 5.7.0 reply %d", i)
		more = append(more, o)
	}
	e.observe(t, more[:2]...)
	e.observe(t, more[2:]...)
	inc = e.get(t, fp530)
	if want := []string{"530 5.7.0 reply 0", "530 5.7.0 reply 2", "530 5.7.0 reply 1", "530 5.7.0 reply 3", "530 5.7.0 reply 4"}; !slices.Equal(inc.Examples, want) {
		t.Errorf("examples = %q, want %q", inc.Examples, want)
	}
	if inc.Recipients != 4 || inc.Messages != 13 {
		t.Errorf("recipients, messages = %d, %d, want 4, 13", inc.Recipients, inc.Messages)
	}
}

func TestObserveSeveralIncidentsInOneBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := obs530("sg:o1", "a@example.com")
	other.SendingIP = "192.0.2.11" // another sending path: another incident
	tenant := obs530("sg:t1", "a@example.com")
	tenant.Tenant = "beta"
	out := e.observe(t, obs530("sg:1", "a@example.com"), other, obs530("sg:2", "b@example.com"), tenant, obs530("sg:3", "c@example.com"))
	opened := map[string]int{}
	for _, o := range out {
		if o.Opened {
			opened[o.Fingerprint]++
		}
	}
	want := map[string]int{fp530: 1, other.Fingerprint(): 1, tenant.Fingerprint(): 1}
	if fmt.Sprint(opened) != fmt.Sprint(want) {
		t.Errorf("opened per incident = %v, want each once: %v", opened, want)
	}
	if out[4].Count != 3 || out[1].Count != 1 || out[3].Count != 1 {
		t.Errorf("counts = %d, %d, %d, want 3, 1, 1", out[4].Count, out[1].Count, out[3].Count)
	}
}

// Several process replicas observe events of one incident at once: exactly one of all
// the events opens it, and every event counts once.
func TestObserveConcurrentOpensOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const workers, batches, size = 6, 5, 4
	var (
		mu     sync.Mutex
		opened int
		fresh  int
		wg     sync.WaitGroup
	)
	for w := range workers {
		st := e.store()
		wg.Go(func() {
			for b := range batches {
				var batch []alert.Observation
				for i := range size {
					// Every event is sent by two workers: a redelivery racing the original.
					id := fmt.Sprintf("sg:%d-%d-%d", w/2, b, i)
					batch = append(batch, obs530(id, fmt.Sprintf("r%d@example.com", i)))
				}
				out, err := st.Observe(t.Context(), batch)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, o := range out {
					if o.Err != nil {
						t.Error(o.Err)
					}
					if o.Opened {
						opened++
					}
					if !o.Duplicate {
						fresh++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	const distinct = workers / 2 * batches * size
	if opened != 1 || fresh != distinct {
		t.Errorf("opened %d times, %d fresh events, want 1 and %d", opened, fresh, distinct)
	}
	if inc := e.get(t, fp530); inc.Messages != distinct || inc.Seq != 1 || len(inc.Transitions) != 1 {
		t.Errorf("incident = %d messages, seq %d, %d transitions, want %d, 1, 1", inc.Messages, inc.Seq, len(inc.Transitions), distinct)
	}
}

// One incident's observation fails inside the script (its hash key holds a string:
// WRONGTYPE). Its events fail alone: the incidents before and after it in the call are
// counted and opened as if it were not there, not run again to show as duplicates,
// and once the key is repaired the failed events' redelivery counts and opens it.
func TestObserveOneFailingIncidentFailsItsEventsOnly(t *testing.T) {
	t.Parallel()
	for _, perIncident := range []bool{false, true} {
		t.Run(fmt.Sprintf("per incident %v", perIncident), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := t.Context()
			st := alert.NewStore(e.rdb, alert.StoreOptions{Prefix: e.prefix, Now: e.clk.Now, PerIncidentScripts: perIncident})
			first, broken, third := obs530("sg:a1", "a@example.com"), obs530("sg:b1", "b@example.com"), obs530("sg:c1", "c@example.com")
			broken.SendingIP, third.SendingIP = "192.0.2.11", "192.0.2.12"
			broken2 := broken
			broken2.EventID, broken2.Recipient = "sg:b2", "d@example.com"
			batch := []alert.Observation{first, broken, third, broken2}
			// The incident hash's key (keys.incident) holds a string.
			key := e.prefix + "alerts{a}:inc:" + broken.Fingerprint()
			if err := e.rdb.Set(ctx, key, "not a hash", 0).Err(); err != nil {
				t.Fatal(err)
			}

			out, err := st.Observe(ctx, batch)
			if err != nil {
				t.Fatalf("Observe: %v, want the failure on the broken incident's events only", err)
			}
			for _, i := range []int{0, 2} {
				if o := out[i]; o.Err != nil || !o.Opened || o.Reopened || o.Duplicate || o.Count != 1 {
					t.Errorf("event %d (incident %d of 3) = %+v, want it to open its incident, count 1", i, i+1, o)
				}
			}
			for _, i := range []int{1, 3} {
				var re redis.Error
				if o := out[i]; o.Err == nil || !errors.As(o.Err, &re) || !strings.Contains(o.Err.Error(), "WRONGTYPE") || o.Opened || o.Duplicate {
					t.Errorf("event %d (the broken incident) = %+v, want a WRONGTYPE redis.Error, not opened", i, o)
				}
			}
			for _, o := range []alert.Observation{first, third} {
				if inc := e.get(t, o.Fingerprint()); inc.Messages != 1 || inc.State != alert.StateOpen || len(inc.Transitions) != 1 {
					t.Errorf("incident %s = %d messages, %s, %d transitions, want 1, open, 1", inc.ID, inc.Messages, inc.State, len(inc.Transitions))
				}
			}

			// Repaired, the batch is redelivered whole (its failed events were not acked).
			if err := e.rdb.Del(ctx, key).Err(); err != nil {
				t.Fatal(err)
			}
			e.clk.Add(time.Second)
			out, err = st.Observe(ctx, batch)
			if err != nil {
				t.Fatal(err)
			}
			want := []alert.Outcome{
				{Duplicate: true, Count: 1},
				{Opened: true, Count: 2},
				{Duplicate: true, Count: 1},
				{Count: 2},
			}
			for i, o := range out {
				if o.Err != nil || o.Opened != want[i].Opened || o.Reopened || o.Duplicate != want[i].Duplicate || o.Count != want[i].Count {
					t.Errorf("redelivered event %d = %+v, want opened %v, duplicate %v, count %d", i, o, want[i].Opened, want[i].Duplicate, want[i].Count)
				}
			}
			inc := e.get(t, broken.Fingerprint())
			if inc.Messages != 2 || inc.Recipients != 2 || inc.State != alert.StateOpen || !slices.Equal(kinds(inc.Transitions), []string{"trigger"}) {
				t.Errorf("repaired incident = %d messages, %d recipients, %s, transitions %q, want 2, 2, open, one trigger",
					inc.Messages, inc.Recipients, inc.State, kinds(inc.Transitions))
			}
			list, err := st.List(ctx, alert.Filter{})
			if err != nil || len(list) != 3 {
				t.Errorf("List = %d incidents, %v, want the 3", len(list), err)
			}
		})
	}
}

func TestResolveIfQuietThenReopen(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	start := e.clk.Now()
	e.observe(t, obs530("sg:1", "a@example.com"), obs530("sg:2", "b@other.example"))
	e.clk.Add(10 * time.Minute)
	e.observe(t, obs530("sg:3", "c@example.com"))
	lastSeen := e.clk.Now()

	// 29 minutes after the last event the incident is not quiet for 30 yet.
	e.clk.Add(29 * time.Minute)
	if ok, err := e.st.ResolveIfQuiet(ctx, fp530, 30*time.Minute); ok || err != nil {
		t.Fatalf("ResolveIfQuiet before the quiet period = %v, %v, want false", ok, err)
	}
	if inc := e.get(t, fp530); inc.State != alert.StateOpen || inc.Seq != 1 {
		t.Fatalf("incident = %s seq %d, want still open at seq 1", inc.State, inc.Seq)
	}
	e.clk.Add(time.Minute)
	resolvedAt := e.clk.Now()
	if ok, err := e.st.ResolveIfQuiet(ctx, fp530, 30*time.Minute); !ok || err != nil {
		t.Fatalf("ResolveIfQuiet after the quiet period = %v, %v, want true", ok, err)
	}
	if ok, err := e.st.ResolveIfQuiet(ctx, fp530, 30*time.Minute); ok || err != nil {
		t.Fatalf("ResolveIfQuiet again = %v, %v, want false: it is resolved", ok, err)
	}
	inc := e.get(t, fp530)
	if inc.State != alert.StateResolved || !inc.ResolvedAt.Equal(resolvedAt) || inc.ResolvedBy != "quiet for 30m0s" || inc.Seq != 2 {
		t.Fatalf("resolved incident = %+v", inc)
	}
	if !slices.Equal(kinds(inc.Transitions), []string{"trigger", "resolve"}) || !inc.Transitions[1].At.Equal(resolvedAt) {
		t.Fatalf("transitions = %+v, want trigger then resolve at %v", inc.Transitions, resolvedAt)
	}
	if active, _ := e.st.Active(ctx, 100); len(active) != 0 {
		t.Fatalf("active after resolve = %v, want none", active)
	}

	// A redelivered old event is no new fault: it does not reopen.
	if o := e.observe(t, obs530("sg:2", "b@other.example"))[0]; !o.Duplicate || o.Reopened {
		t.Fatalf("old event after resolve = %+v, want a duplicate that reopens nothing", o)
	}

	// A new event reopens it: a new episode with its own count, recipients, domains
	// and examples, a new trigger, the same identity.
	e.clk.Add(time.Hour)
	reopenedAt := e.clk.Now()
	r := obs530("sg:4", "d@example.org")
	r.Reply = "530 5.7.1 Client was not authenticated"
	out := e.observe(t, r, obs530("sg:5", "e@example.org"))
	if !out[0].Reopened || out[0].Opened || out[1].Reopened || out[1].Opened || out[1].Count != 2 {
		t.Fatalf("reopening batch = %+v, want the first event to reopen, count 2", out)
	}
	// Redelivered: the reopening event says it reopened this episode; the event that
	// opened the first episode no longer claims anything.
	if out := e.observe(t, obs530("sg:4", "d@example.org"), obs530("sg:1", "a@example.com")); !out[0].ReopenedEarlier || out[0].OpenedEarlier ||
		out[1].OpenedEarlier || out[1].ReopenedEarlier || !out[0].Duplicate || !out[1].Duplicate {
		t.Fatalf("redelivered reopener and first opener = %+v", out)
	}
	inc = e.get(t, fp530)
	if inc.State != alert.StateReopened || inc.Reopened != 1 || inc.Messages != 2 || inc.TotalMessages != 5 || inc.Seq != 3 {
		t.Errorf("reopened incident: state %s, reopened %d, messages %d, total %d, seq %d; want reopened, 1, 2, 5, 3",
			inc.State, inc.Reopened, inc.Messages, inc.TotalMessages, inc.Seq)
	}
	if inc.Recipients != 2 || !slices.Equal(inc.Domains, []string{"example.org"}) {
		t.Errorf("recipients %d, domains %q, want this episode's: 2, [example.org]", inc.Recipients, inc.Domains)
	}
	if !slices.Equal(inc.Examples, []string{r.Reply, "530 5.7.0 Authentication required"}) {
		t.Errorf("examples = %q, want this episode's", inc.Examples)
	}
	if !inc.FirstSeen.Equal(reopenedAt) || !inc.CreatedAt.Equal(start) || !inc.ResolvedAt.IsZero() || inc.ResolvedBy != "" {
		t.Errorf("first seen %v, created %v, resolved %v by %q; want %v, %v, none", inc.FirstSeen, inc.CreatedAt, inc.ResolvedAt, inc.ResolvedBy, reopenedAt, start)
	}
	if !slices.Equal(kinds(inc.Transitions), []string{"trigger", "resolve", "trigger"}) || !inc.Transitions[2].At.Equal(reopenedAt) {
		t.Errorf("transitions = %+v, want a new trigger at %v", inc.Transitions, reopenedAt)
	}
	_ = lastSeen
	// Quiet again: it resolves again, measured from the new last event.
	e.clk.Add(29 * time.Minute)
	if ok, _ := e.st.ResolveIfQuiet(ctx, fp530, 30*time.Minute); ok {
		t.Error("resolved 29 minutes after the reopening event, want 30")
	}
	e.clk.Add(time.Minute)
	if ok, _ := e.st.ResolveIfQuiet(ctx, fp530, 30*time.Minute); !ok {
		t.Error("not resolved 30 minutes after the reopening event")
	}
}

func TestAck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.observe(t, obs530("sg:1", "a@example.com"))
	e.clk.Add(5 * time.Minute)
	ackedAt := e.clk.Now()
	if ok, err := e.st.Ack(ctx, fp530, "token:alice"); !ok || err != nil {
		t.Fatalf("Ack = %v, %v, want true", ok, err)
	}
	if ok, err := e.st.Ack(ctx, fp530, "token:bob"); ok || err != nil {
		t.Fatalf("second Ack = %v, %v, want false (already acknowledged)", ok, err)
	}
	inc := e.get(t, fp530)
	if inc.AckedBy != "token:alice" || !inc.AckedAt.Equal(ackedAt) || inc.State != alert.StateOpen {
		t.Errorf("acked incident: by %q at %v, state %s; want token:alice at %v, still open", inc.AckedBy, inc.AckedAt, inc.State, ackedAt)
	}
	if want := (alert.Transition{Seq: 2, Kind: "ack", At: ackedAt, By: "token:alice"}); len(inc.Transitions) != 2 || inc.Transitions[1] != want {
		t.Errorf("transitions = %+v, want the ack %+v", inc.Transitions, want)
	}
	// Acknowledged: no more reminders, however long it stays open.
	e.clk.Add(24 * time.Hour)
	if ok, err := e.st.Remind(ctx, fp530, time.Hour); ok || err != nil {
		t.Errorf("Remind after ack = %v, %v, want false", ok, err)
	}
	// Resolved: nothing to acknowledge.
	if _, err := e.st.Resolve(ctx, fp530, "token:alice"); err != nil {
		t.Fatal(err)
	}
	e.observe(t, obs530("sg:2", "a@example.com")) // reopens: the ack was for the last episode
	if inc := e.get(t, fp530); inc.AckedBy != "" || !inc.AckedAt.IsZero() {
		t.Errorf("reopened incident keeps the old ack: %q at %v", inc.AckedBy, inc.AckedAt)
	}
	if _, err := e.st.Resolve(ctx, fp530, "token:alice"); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.st.Ack(ctx, fp530, "token:alice"); ok || err != nil {
		t.Errorf("Ack of a resolved incident = %v, %v, want false", ok, err)
	}
}

func TestRemind(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.observe(t, obs530("sg:1", "a@example.com"))
	steps := []struct {
		advance time.Duration
		every   time.Duration
		want    bool
	}{
		{59 * time.Minute, time.Hour, false}, // not yet an hour since it opened
		{time.Minute, time.Hour, true},       // an hour since it opened
		{0, time.Hour, false},                // just reminded
		{59 * time.Minute, time.Hour, false}, // not yet an hour since the reminder
		{time.Minute, 0, false},              // reminders off
		{0, time.Hour, true},                 // an hour since the last reminder
	}
	for i, s := range steps {
		e.clk.Add(s.advance)
		if ok, err := e.st.Remind(ctx, fp530, s.every); ok != s.want || err != nil {
			t.Fatalf("step %d: Remind(%s) at +%s = %v, %v, want %v", i, s.every, e.clk.Now().Sub(newClock().Now()), ok, err, s.want)
		}
	}
	inc := e.get(t, fp530)
	if !slices.Equal(kinds(inc.Transitions), []string{"trigger", "reminder", "reminder"}) || inc.State != alert.StateOpen {
		t.Errorf("transitions = %v, state %s, want two reminders, still open", kinds(inc.Transitions), inc.State)
	}
	if _, err := e.st.Resolve(ctx, fp530, "ops"); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(10 * time.Hour)
	if ok, err := e.st.Remind(ctx, fp530, time.Hour); ok || err != nil {
		t.Errorf("Remind of a resolved incident = %v, %v, want false", ok, err)
	}
}

func TestResolveByHand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.observe(t, obs530("sg:1", "a@example.com"))
	e.clk.Add(time.Minute) // far from quiet: by hand it resolves all the same
	if ok, err := e.st.Resolve(ctx, fp530, "token:ops"); !ok || err != nil {
		t.Fatalf("Resolve = %v, %v, want true", ok, err)
	}
	if ok, err := e.st.Resolve(ctx, fp530, "token:ops"); ok || err != nil {
		t.Fatalf("second Resolve = %v, %v, want false", ok, err)
	}
	inc := e.get(t, fp530)
	if inc.State != alert.StateResolved || inc.ResolvedBy != "token:ops" || !inc.ResolvedAt.Equal(e.clk.Now()) {
		t.Errorf("incident = %s by %q at %v", inc.State, inc.ResolvedBy, inc.ResolvedAt)
	}
	if want := (alert.Transition{Seq: 2, Kind: "resolve", At: e.clk.Now(), By: "token:ops"}); inc.Transitions[len(inc.Transitions)-1] != want {
		t.Errorf("last transition = %+v, want %+v", inc.Transitions[len(inc.Transitions)-1], want)
	}
}

// An incident keeps its last transitions only; Get shows what is kept, oldest first.
func TestTransitionsAreBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.observe(t, obs530("sg:1", "a@example.com"))
	for range 40 {
		e.clk.Add(time.Hour)
		if ok, err := e.st.Remind(t.Context(), fp530, time.Hour); !ok || err != nil {
			t.Fatalf("Remind = %v, %v", ok, err)
		}
	}
	inc := e.get(t, fp530)
	if inc.Seq != 41 || len(inc.Transitions) != 16 || inc.Transitions[0].Seq != 26 || inc.Transitions[15].Seq != 41 {
		t.Errorf("seq %d, %d transitions from %d, want 41 and the last 16 (26..41)", inc.Seq, len(inc.Transitions), inc.Transitions[0].Seq)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	a := obs530("sg:a", "a@example.com")
	b := obs530("sg:b", "a@example.com")
	b.Tenant = "beta"
	c := alert.Observation{EventID: "sg:c", Class: alert.ClassMassBounce, Severity: "high", ReceivingDomain: "example.net", Recipient: "x@example.net"}
	d := obs530("sg:d", "a@example.com")
	d.Class, d.Code, d.Severity = "throttled", "421", "warning"
	for _, o := range []alert.Observation{a, b, c, d} { // seen in this order
		e.clk.Add(time.Minute)
		e.observe(t, o)
	}
	if _, err := e.st.Resolve(ctx, b.Fingerprint(), "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Ack(ctx, d.Fingerprint(), "ops"); err != nil {
		t.Fatal(err)
	}
	name := map[string]string{a.Fingerprint(): "a", b.Fingerprint(): "b", c.Fingerprint(): "c", d.Fingerprint(): "d"}
	for _, tc := range []struct {
		f    alert.Filter
		want string
	}{
		{alert.Filter{}, "dcba"}, // most recently seen first
		{alert.Filter{State: "open"}, "dca"},
		{alert.Filter{State: "resolved"}, "b"},
		{alert.Filter{State: "notified"}, ""},
		{alert.Filter{Class: "auth_required"}, "ba"},
		{alert.Filter{Class: alert.ClassMassBounce}, "c"},
		{alert.Filter{Tenant: "beta"}, "b"},
		{alert.Filter{Tenant: "acme", State: "open"}, "da"},
		{alert.Filter{Limit: 2}, "dc"},
		{alert.Filter{State: "open", Limit: 1}, "d"},
	} {
		incs, err := e.st.List(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, inc := range incs {
			got += name[inc.ID]
			if len(inc.Transitions) != 0 || len(inc.Deliveries) != 0 {
				t.Errorf("List returned details of %s: the listing leaves them out", inc.ID)
			}
		}
		if got != tc.want {
			t.Errorf("List(%+v) = %q, want %q", tc.f, got, tc.want)
		}
	}

	// An incident that expired leaves the listing and the indexes.
	if err := e.rdb.Del(ctx, e.prefix+"alerts{a}:inc:"+a.Fingerprint()).Err(); err != nil {
		t.Fatal(err)
	}
	if incs, _ := e.st.List(ctx, alert.Filter{}); len(incs) != 3 {
		t.Errorf("List after an expiry = %d incidents, want 3", len(incs))
	}
	if n, _ := e.rdb.ZScore(ctx, e.prefix+"alerts{a}:index", a.Fingerprint()).Result(); n != 0 {
		t.Errorf("the expired incident is still indexed")
	}
	if _, err := e.st.Get(ctx, a.Fingerprint()); !errors.Is(err, alert.ErrNotFound) {
		t.Errorf("Get of the expired incident = %v, want ErrNotFound", err)
	}
}

func TestUnknownAndInvalidIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.observe(t, obs530("sg:1", "a@example.com"))
	ops := map[string]func(id string) error{
		"Get":            func(id string) error { _, err := e.st.Get(ctx, id); return err },
		"Resolve":        func(id string) error { _, err := e.st.Resolve(ctx, id, "ops"); return err },
		"Ack":            func(id string) error { _, err := e.st.Ack(ctx, id, "ops"); return err },
		"Remind":         func(id string) error { _, err := e.st.Remind(ctx, id, time.Nanosecond); return err },
		"ResolveIfQuiet": func(id string) error { _, err := e.st.ResolveIfQuiet(ctx, id, time.Nanosecond); return err },
	}
	for _, id := range []string{
		alert.Fingerprint("nobody", "auth_required", "example.com", ""), // well formed, unknown
		"",
		"x}:foo",                  // would leave the hash tag and name another key
		"*",                       // a pattern
		strings.ToUpper(fp530),    // IDs are lower-case hex
		fp530 + "}",               // a valid ID with a tail
		fp530 + " " + fp530,       // a space
		strings.Repeat("a", 65),   // too long
		"../" + fp530,             // a path
		fp530[:10] + "\n" + fp530, // a line break
	} {
		for name, op := range ops {
			if err := op(id); !errors.Is(err, alert.ErrNotFound) {
				t.Errorf("%s(%q) = %v, want ErrNotFound", name, id, err)
			}
		}
	}
	// The refused IDs wrote nothing: the prefix holds the one incident's keys only.
	keys, err := e.rdb.Keys(ctx, e.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, "foo") || strings.Contains(k, "nobody") || strings.Contains(k, "*") {
			t.Errorf("key %q written for a refused ID", k)
		}
	}
	if inc := e.get(t, fp530); inc.State != alert.StateOpen || inc.Seq != 1 {
		t.Errorf("the real incident changed: %s seq %d", inc.State, inc.Seq)
	}
}

// Redis loses its script cache on a restart or failover; Observe (which pipelines
// EVALSHA) and the transitions must load the scripts again rather than fail.
func TestObserveSurvivesAFlushedScriptCache(t *testing.T) {
	t.Parallel()
	srv := testsvc.StartRedis(t)
	rdb := testsvc.RedisClientAt(t, srv.Addr)
	ctx := t.Context()
	clk := newClock()
	st := alert.NewStore(rdb, alert.StoreOptions{Prefix: "t:", Now: clk.Now})
	other := obs530("sg:o1", "a@example.com")
	other.SendingIP = "192.0.2.99"

	// Never loaded: the very first call finds no scripts.
	if out, err := st.Observe(ctx, []alert.Observation{obs530("sg:1", "a@example.com"), other}); err != nil || out[0].Err != nil || !out[0].Opened || !out[1].Opened {
		t.Fatalf("Observe before Load = %+v, %v, want both incidents opened", out, err)
	}
	for round := range 3 {
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Minute)
		id := fmt.Sprintf("sg:%d", round+2)
		out, err := st.Observe(ctx, []alert.Observation{obs530(id, "b@example.com"), obs530("sg:1", "a@example.com"), other})
		if err != nil {
			t.Fatalf("round %d: Observe after SCRIPT FLUSH: %v", round, err)
		}
		for i, o := range out {
			if o.Err != nil {
				t.Fatalf("round %d: event %d: %v", round, i, o.Err)
			}
		}
		if out[0].Duplicate || !out[1].Duplicate || !out[2].Duplicate || out[0].Count != int64(round+2) {
			t.Fatalf("round %d: outcomes = %+v, want the new event counted (count %d), the old ones duplicates", round, out, round+2)
		}
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Resolve(ctx, fp530, "ops"); !ok || err != nil {
		t.Fatalf("Resolve after SCRIPT FLUSH = %v, %v", ok, err)
	}
	inc, err := st.Get(ctx, fp530)
	if err != nil || inc.Messages != 4 || inc.State != alert.StateResolved {
		t.Fatalf("incident = %+v, %v, want 4 messages, resolved", inc, err)
	}
}

// The recipient is only counted: no key or value under the prefix holds an address,
// whatever transitions and deliveries happened.
func TestNoRecipientAddressStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	addrs := []string{"alice.liddell@example.com", "bob.tables@example.net", "carol+tag@example.org"}
	var batch []alert.Observation
	for i, a := range addrs {
		batch = append(batch, obs530(fmt.Sprintf("sg:%d", i), a))
	}
	mb := alert.Observation{EventID: "sg:m", Class: alert.ClassMassBounce, ReceivingDomain: "example.net", Recipient: addrs[1], Reply: "550 5.1.1 user unknown"}
	e.observe(t, append(batch, mb)...)
	if _, err := e.st.Ack(ctx, fp530, "token:ops"); err != nil {
		t.Fatal(err)
	}
	fr := &fakeReceiver{}
	n := newNotifier(e, alert.Default(), alert.Target{Name: "pager", Receiver: fr})
	n.DeliverDue(ctx, n.Targets[0])
	if len(fr.sent()) == 0 {
		t.Fatal("nothing delivered")
	}

	keys, err := e.rdb.Keys(ctx, e.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 5 {
		t.Fatalf("only %d keys under the prefix: %q", len(keys), keys)
	}
	var all [][]byte
	for _, k := range keys {
		all = append(all, []byte(k))
		typ, err := e.rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case "string": // the HyperLogLog
			v, err := e.rdb.Get(ctx, k).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, v)
		case "hash":
			for f, v := range e.rdb.HGetAll(ctx, k).Val() {
				all = append(all, []byte(f), []byte(v))
			}
		case "zset":
			for _, m := range e.rdb.ZRange(ctx, k, 0, -1).Val() {
				all = append(all, []byte(m))
			}
		default:
			t.Errorf("key %s of unexpected type %s", k, typ)
		}
	}
	for _, b := range all {
		for _, a := range addrs {
			local, _, _ := strings.Cut(a, "@")
			if bytes.Contains(bytes.ToLower(b), []byte(a)) || bytes.Contains(bytes.ToLower(b), []byte(local)) {
				t.Errorf("Redis holds %q (or its local part) in %q", a, b)
			}
		}
	}
}

// The script cache can go between two commands of one pipeline (a failover, SCRIPT
// FLUSH by an operator): the incidents whose script already ran must not be run again,
// or the batch that opened them would report only duplicates.
func TestObserveScriptCacheLostMidPipeline(t *testing.T) {
	t.Parallel()
	srv := testsvc.StartRedis(t)
	rdb := testsvc.RedisClientAt(t, srv.Addr)
	admin := testsvc.RedisClientAt(t, srv.Addr)
	ctx := t.Context()
	// One call per incident: the batch script is one command, which a flush cannot split.
	st := alert.NewStore(rdb, alert.StoreOptions{Prefix: "t:", Now: newClock().Now, PerIncidentScripts: true})
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// The hook sends the pipeline's first command alone, flushes the scripts, then
	// sends the rest: what a flush landing inside the pipeline does.
	var once sync.Once
	rdb.AddHook(splitPipeline{func(ctx context.Context, cmds []redis.Cmder, next redis.ProcessPipelineHook) error {
		split := false
		once.Do(func() { split = len(cmds) > 1 })
		if !split {
			return next(ctx, cmds)
		}
		err1 := next(ctx, cmds[:1])
		if err := admin.ScriptFlush(ctx).Err(); err != nil {
			return err
		}
		return errors.Join(err1, next(ctx, cmds[1:]))
	}})
	other := obs530("sg:o1", "a@example.com")
	other.SendingIP = "192.0.2.99"
	out, err := st.Observe(ctx, []alert.Observation{obs530("sg:1", "a@example.com"), other})
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out {
		if o.Err != nil || !o.Opened || o.Duplicate || o.Count != 1 {
			t.Errorf("event %d = %+v, want it to open its incident, counted once", i, o)
		}
	}
}

// splitPipeline is a go-redis hook that hands a pipeline to f.
type splitPipeline struct {
	f func(ctx context.Context, cmds []redis.Cmder, next redis.ProcessPipelineHook) error
}

func (splitPipeline) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (splitPipeline) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h splitPipeline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { return h.f(ctx, cmds, next) }
}
