package process

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/stream"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

func planner(t *testing.T) *Processor {
	t.Helper()
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	// The planner reads the store's ID form only: no Redis behind it.
	return New(Config{Catalog: cat, Store: suppress.New(nil, suppress.Options{}), Policy: policy.Default})
}

func raw(t *testing.T, id string, typ events.Type, rcpt, reply string) []byte {
	t.Helper()
	e := events.Event{ID: "generic:" + id, ESP: "generic", Type: typ, OccurredAt: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC),
		Recipient: rcpt, SendingDomain: "mail.example.org", Tenant: "acme", Reply: events.Reply{Text: reply}}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPlanTurnsABatchIntoChanges: the planning step alone, no I/O: every decodable event
// becomes one change in batch order, a sender-side one also an observation, and the
// undecodable one is set aside with its index.
func TestPlanTurnsABatchIntoChanges(t *testing.T) {
	p := planner(t)
	data := [][]byte{
		raw(t, "h", events.TypeBounce, "gone@example.com", "550 5.1.1 user unknown"),
		[]byte("{not json"),
		raw(t, "s", events.TypeBounce, "any@example.com", "530 5.7.0 Authentication required"),
		raw(t, "c", events.TypeComplaint, "angry@example.com", ""),
		raw(t, "d", events.TypeDelivered, "fine@example.com", ""),
		raw(t, "f", events.TypeBounce, "full@example.com", "452 4.2.2 Mailbox full"),
	}
	pl := p.plan(policy.Default(), nil, data)
	if len(pl.poison) != 1 || pl.poison[0].msg != 1 || pl.poison[0].err == nil {
		t.Fatalf("poison = %+v, want message 1", pl.poison)
	}
	want := []struct {
		msg    int
		action suppress.Action
		class  catalog.Class
		obs    bool
	}{
		{0, suppress.ActionSuppress, "recipient_unknown", false},
		{2, suppress.ActionRecord, "", true},
		{3, suppress.ActionSuppress, "", false},
		{4, suppress.ActionReset, "", false},
		{5, suppress.ActionSoft, "", false},
	}
	if len(pl.items) != len(want) || len(pl.changes) != len(want) {
		t.Fatalf("%d items, %d changes; want %d each", len(pl.items), len(pl.changes), len(want))
	}
	for i, w := range want {
		it, c := pl.items[i], pl.changes[i]
		if it.msg != w.msg || c.Action != w.action || (w.class != "" && it.res.Classification.Class != w.class) || (it.obs >= 0) != w.obs {
			t.Errorf("item %d = msg %d action %s class %s obs %d; want %+v", i, it.msg, c.Action, it.res.Classification.Class, it.obs, w)
		}
		if c.EventID != it.res.Event.ID || c.Address != it.res.Event.Recipient || c.EventTenant != "acme" {
			t.Errorf("change %d does not describe its event: %+v", i, c)
		}
	}
	if len(pl.obs) != 1 || pl.obs[0].EventID != "generic:s" || pl.obs[0].SendingDomain != "mail.example.org" {
		t.Fatalf("observations = %+v, want the 530's", pl.obs)
	}
	if pl.items[0].shadow != nil {
		t.Error("shadow decision without a shadow policy")
	}
}

// TestPlanGuardEligible: the guard may hold a fresh hard bounce, never a complaint, and
// never a drop from the ESP's own suppression list, which the catalog reads as a
// suppression (esp.suppression_list) but which says nothing about the domain today.
func TestPlanGuardEligible(t *testing.T) {
	p := planner(t)
	dropped := events.Event{ID: "generic:p", ESP: "generic", Type: events.TypeDropped, ProviderSuppressed: true,
		OccurredAt: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), Recipient: "old@example.com", Tenant: "acme",
		Reply: events.Reply{Text: "Not delivering to previously bounced address"}}
	b, err := json.Marshal(dropped)
	if err != nil {
		t.Fatal(err)
	}
	pl := p.plan(policy.Default(), nil, [][]byte{
		raw(t, "h", events.TypeBounce, "gone@example.com", "550 5.1.1 user unknown"),
		raw(t, "c", events.TypeComplaint, "angry@example.com", ""),
		b,
	})
	if len(pl.changes) != 3 || pl.changes[2].Action != suppress.ActionSuppress {
		t.Fatalf("changes = %+v, want the dropped address suppressed", pl.changes)
	}
	for i, want := range []bool{true, false, false} {
		if got := pl.guardEligible(i); got != want {
			t.Errorf("guardEligible(%d) = %v, want %v", i, got, want)
		}
	}
}

func TestPlanDecidesWithTheShadowPolicyToo(t *testing.T) {
	p := planner(t)
	shadow, err := policy.Parse([]byte("version: 1\nsoft: {threshold: 1, window: 7d, ttl: 30d}\n"), "shadow.yaml", p.cfg.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	pl := p.plan(policy.Default(), shadow, [][]byte{raw(t, "f", events.TypeBounce, "full@example.com", "452 4.2.2 Mailbox full")})
	if len(pl.items) != 1 || pl.items[0].shadow == nil || pl.items[0].shadow.Action != policy.ActionSoft {
		t.Fatalf("items = %+v, want the shadow's soft decision", pl.items)
	}
}

// TestMarkHeldSaysHeldByAFieldNotTheClass: a held suppression keeps its class and
// reason; the change's action and Result.Held say it is held, and it counts into its
// domain's mass_bounce incident.
func TestMarkHeldSaysHeldByAFieldNotTheClass(t *testing.T) {
	p := planner(t)
	pl := p.plan(policy.Default(), nil, [][]byte{
		raw(t, "a", events.TypeBounce, "a@outage.example", "550 5.1.1 user unknown"),
		raw(t, "b", events.TypeBounce, "b@outage.example", "550 5.1.1 user unknown"),
	})
	before := pl.changes[1]
	started := pl.markHeld([]guard.Verdict{{Domain: "outage.example"}, {Domain: "outage.example", Held: true, NewlyHeld: true, Scope: guard.ScopeDomain, Count: 100}})
	if len(started) != 1 || started[0].Count != 100 {
		t.Fatalf("started = %+v, want the one new hold", started)
	}
	if pl.items[0].res.Held || pl.changes[0].Action != suppress.ActionSuppress {
		t.Errorf("the not-held change was changed: %+v", pl.changes[0])
	}
	c := pl.changes[1]
	if !pl.items[1].res.Held || c.Action != suppress.ActionHeld || c.Class != before.Class || c.Reason != before.Reason || c.Class != "recipient_unknown" {
		t.Fatalf("held change = %+v (held %t), want action held with class and reason kept", c, pl.items[1].res.Held)
	}
	if pl.items[1].obs != 0 || len(pl.obs) != 1 || pl.obs[0].Class != alert.ClassMassBounce || pl.obs[0].ReceivingDomain != "outage.example" {
		t.Fatalf("observations = %+v, want the mass_bounce one for outage.example", pl.obs)
	}
}

// TestApplyPlanWritesAndAcknowledges: the apply step alone, on real NATS and Redis: a
// plan made by hand is written and each of its messages acknowledged.
func TestApplyPlanWritesAndAcknowledges(t *testing.T) {
	t.Parallel()
	_, js := testsvc.JetStream(t)
	names := testsvc.Names(t, js)
	rdb := testsvc.RedisClient(t)
	prefix := testsvc.Prefix(t, rdb)
	ctx := context.Background()
	cons, err := stream.Provision(ctx, js, names, stream.DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	data := [][]byte{
		raw(t, "x1", events.TypeBounce, "gone@example.com", "550 5.1.1 user unknown"),
		raw(t, "x2", events.TypeDelivered, "fine@example.com", ""),
	}
	for _, d := range data {
		if _, err := js.Publish(ctx, names.EventSubject("generic"), d); err != nil {
			t.Fatal(err)
		}
	}
	batch := fetch(t, cons, len(data))
	store := suppress.New(rdb, suppress.Options{Prefix: prefix})
	p := planner(t)
	p.cfg.Store = store
	pl := p.plan(policy.Default(), nil, data)
	p.applyPlan(ctx, batch, &pl)
	if rec, err := store.Suppression(ctx, pl.changes[0].Tenant, "gone@example.com"); err != nil || rec == nil || rec.Class != "recipient_unknown" {
		t.Fatalf("suppression = %+v, %v; want written", rec, err)
	}
	if !pl.items[0].res.Outcome.Suppressed || pl.items[1].res.Outcome.Suppressed {
		t.Fatalf("outcomes = %+v, %+v", pl.items[0].res.Outcome, pl.items[1].res.Outcome)
	}
	waitAcked(t, cons)
}

func fetch(t *testing.T, cons jetstream.Consumer, n int) []jetstream.Msg {
	t.Helper()
	var out []jetstream.Msg
	for len(out) < n {
		b, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			out = append(out, m)
		}
		if b.Error() != nil {
			t.Fatal(b.Error())
		}
	}
	return out
}

func waitAcked(t *testing.T, cons jetstream.Consumer) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumAckPending == 0 && info.NumPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not acknowledged: ack pending %d, pending %d", info.NumAckPending, info.NumPending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPlanReadsTheEventsSender: the planner gives the catalog the event's sender, so a
// reply about our own address opens an incident instead of suppressing the recipient.
func TestPlanReadsTheEventsSender(t *testing.T) {
	p := planner(t)
	const reply = "553 <bounces@mail.example.org> Invalid email address."
	mk := func(id, sender string) []byte {
		e := events.Event{ID: "generic:" + id, ESP: "generic", Type: events.TypeBounce, OccurredAt: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC),
			Recipient: "someone@example.com", Sender: sender, Tenant: "acme", Reply: events.Reply{Text: reply}}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pl := p.plan(policy.Default(), nil, [][]byte{mk("ours", "bounces@mail.example.org"), mk("unknown", "")})
	if len(pl.changes) != 2 {
		t.Fatalf("%d changes, want 2", len(pl.changes))
	}
	if c, it := pl.changes[0], pl.items[0]; c.Action == suppress.ActionSuppress || it.obs < 0 || it.res.Classification.Rule != "scope.our_address" {
		t.Errorf("reply about our sender address: action %s, rule %s, observation %d; want no suppression and an incident observation", c.Action, it.res.Classification.Rule, it.obs)
	}
	if c := pl.changes[1]; c.Action != suppress.ActionSuppress {
		t.Errorf("without a sender the same reply gives %s; want the recipient's suppression (the test would prove nothing otherwise)", c.Action)
	}
}
