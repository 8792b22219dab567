package stats

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

func setup(t *testing.T) *suppress.Store {
	t.Helper()
	rdb := testsvc.RedisClient(t)
	return suppress.New(rdb, suppress.Options{Prefix: testsvc.Prefix(t, rdb)})
}

func TestOfMarksHardBouncesAndHolds(t *testing.T) {
	t.Parallel()
	hard := catalog.Classification{Class: catalog.ClassRecipientUnknown, Scope: catalog.ScopeRecipient, Permanent: true}
	ev := events.Event{Type: events.TypeBounce, Recipient: "a@gmail.example"}
	if d := Of(&ev, hard, "suppress", false); d.HardBounceDomain != "gmail.example" || d.Action != "suppress" || d.Class != "recipient_unknown" {
		t.Errorf("hard bounce = %+v", d)
	}
	if d := Of(&ev, hard, "suppress", true); d.Action != "held" {
		t.Errorf("held = %+v, want action held", d)
	}
	soft := catalog.Classification{Class: catalog.ClassMailboxFull, Scope: catalog.ScopeRecipient}
	if d := Of(&ev, soft, "soft", false); d.HardBounceDomain != "" {
		t.Errorf("a transient bounce counts as hard: %+v", d)
	}
	complaint := events.Event{Type: events.TypeComplaint, Recipient: "a@gmail.example"}
	if d := Of(&complaint, hard, "suppress", false); d.HardBounceDomain != "" {
		t.Errorf("a complaint counts as a hard bounce: %+v", d)
	}
}

func TestWriteAndReadAWeek(t *testing.T) {
	t.Parallel()
	store := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 9, 30, 0, 0, time.UTC)
	batch := func(n int, action, class, domain string) []Decision {
		ds := make([]Decision, n)
		for i := range ds {
			ds[i] = Decision{Action: action, Class: class, HardBounceDomain: domain}
		}
		return ds
	}
	writes := []struct {
		at time.Time
		ds []Decision
	}{
		{now, batch(3, "suppress", "recipient_unknown", "gmail.example")},
		{now.Add(-10 * time.Minute), batch(2, "soft", "mailbox_full", "")},
		{now.Add(-2 * time.Hour), batch(5, "suppress", "recipient_unknown", "yahoo.example")},
		{now.Add(-2 * time.Hour), batch(1, "suppress", "recipient_unknown", "gmail.example")},
		{now.Add(-8 * 24 * time.Hour), batch(7, "suppress", "recipient_unknown", "old.example")}, // outside the week
	}
	for _, w := range writes {
		if err := Write(ctx, store, w.at, w.ds); err != nil {
			t.Fatal(err)
		}
	}
	week, err := Read(ctx, store, now, 7*24, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(week.Hours) != 168 || !week.Hours[167].Start.Equal(now.Truncate(time.Hour)) {
		t.Fatalf("%d hours, last %v: want 168 ending with the current hour", len(week.Hours), week.Hours[len(week.Hours)-1].Start)
	}
	last, twoAgo := week.Hours[167], week.Hours[165]
	if last.Total != 5 || last.ByAction["suppress"] != 3 || last.ByAction["soft"] != 2 || last.ByClass["mailbox_full"] != 2 {
		t.Errorf("current hour = %+v", last)
	}
	if twoAgo.Total != 6 || twoAgo.ByClass["recipient_unknown"] != 6 {
		t.Errorf("two hours ago = %+v", twoAgo)
	}
	var total int64
	for _, h := range week.Hours {
		total += h.Total
	}
	if total != 11 {
		t.Errorf("week total = %d, want 11 (the 8-day-old batch is outside)", total)
	}
	want := []DomainCount{{"yahoo.example", 5}, {"gmail.example", 4}}
	if fmt.Sprint(week.Domains) != fmt.Sprint(want) {
		t.Errorf("domains = %v, want %v", week.Domains, want)
	}
	// Every key expires within TTL.
	rdb := store.Redis()
	for _, k := range []string{hourKey(store.Keys().Prefix(), now), domainKey(store.Keys().Prefix(), now)} {
		ttl, err := rdb.TTL(ctx, k).Result()
		if err != nil || ttl <= 0 || ttl > TTL {
			t.Errorf("TTL of %s = %v, %v; want (0, %v]", k, ttl, err, TTL)
		}
	}
}

func TestAnHoursDomainsAreBounded(t *testing.T) {
	t.Parallel()
	store := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	ds := make([]Decision, maxDomainsPerHour+200)
	for i := range ds {
		ds[i] = Decision{Action: "suppress", Class: "recipient_unknown", HardBounceDomain: fmt.Sprintf("d%04d.example", i)}
	}
	ds = append(ds, Decision{Action: "suppress", HardBounceDomain: "big.example"}, Decision{Action: "suppress", HardBounceDomain: "big.example"})
	if err := Write(ctx, store, now, ds); err != nil {
		t.Fatal(err)
	}
	n, err := store.Redis().ZCard(ctx, domainKey(store.Keys().Prefix(), now)).Result()
	if err != nil || n != maxDomainsPerHour {
		t.Fatalf("domains kept = %d, %v; want %d", n, err, maxDomainsPerHour)
	}
	week, err := Read(ctx, store, now, 1, 3)
	if err != nil || len(week.Domains) != 3 || week.Domains[0] != (DomainCount{"big.example", 2}) {
		t.Errorf("top domains = %v, %v: want big.example first, 3 in all", week.Domains, err)
	}
}

// A Tally of several batches over two hours writes what writing each batch would.
func TestTallyWritesWhatEachBatchWould(t *testing.T) {
	t.Parallel()
	each, tallied := setup(t), setup(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 9, 59, 59, 0, time.UTC)
	batches := [][]Decision{
		{{Action: "suppress", Class: "recipient_unknown", HardBounceDomain: "a.example"}, {Action: "soft", Class: "mailbox_full"}},
		{{Action: "held", Class: "recipient_unknown", HardBounceDomain: "a.example"}, {Action: "record"}},
		{{Action: "suppress", Class: "recipient_unknown", HardBounceDomain: "b.example"}},
	}
	var tally Tally
	if !tally.Empty() {
		t.Fatal("a new tally is not empty")
	}
	for i, ds := range batches {
		at := now.Add(time.Duration(i) * time.Second) // the last one in the next hour
		if err := Write(ctx, each, at, ds); err != nil {
			t.Fatal(err)
		}
		tally.Add(at, ds)
	}
	if err := tally.Write(ctx, tallied); err != nil {
		t.Fatal(err)
	}
	a, err := Read(ctx, each, now.Add(time.Hour), 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Read(ctx, tallied, now.Add(time.Hour), 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a) != fmt.Sprint(b) || a.Hours[1].Total != 2 || a.Hours[2].Total != 3 {
		t.Errorf("batch by batch %+v\ntallied %+v", a, b)
	}
}
