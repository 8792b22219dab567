package suppress_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// applyMany writes changes in batches of 500 (one round trip each).
func applyMany(t *testing.T, b bundle, cs []suppress.Change) {
	t.Helper()
	for i := 0; i < len(cs); i += 500 {
		apply(t, b, cs[i:min(i+500, len(cs))]...)
	}
}

// walk pages through a tenant's suppressions and counts how often each address was listed.
func walk(t *testing.T, b bundle, limit int, f suppress.ListFilter, between func()) map[string]int {
	t.Helper()
	seen := map[string]int{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100000 {
			t.Fatal("the walk does not end")
		}
		p, err := b.store.ListPage(b.ctx, "", cursor, limit, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) > limit {
			t.Fatalf("page of %d records, limit %d", len(p.Records), limit)
		}
		for _, r := range p.Records {
			seen[r.Address]++
		}
		if p.Next == "" {
			return seen
		}
		cursor = p.Next
		if between != nil {
			between()
		}
	}
}

// The walk lists every record that exists throughout exactly once while other
// goroutines add records, refresh the stable ones (their expiry, hence the expiry
// index's order, moves) and lift others.
func TestListPageUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const stable, churn = 3000, 1000
	var cs []suppress.Change
	for i := range stable {
		c := hard(fmt.Sprintf("s%d", i), fmt.Sprintf("stable%05d@example.com", i))
		c.SuppressTTL = time.Hour
		cs = append(cs, c)
	}
	for i := range churn {
		cs = append(cs, hard(fmt.Sprintf("c%d", i), fmt.Sprintf("churn%05d@example.com", i)))
	}
	applyMany(t, b, cs)

	ctx, cancel := context.WithCancel(b.ctx)
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	writer := func(f func(i int) error) {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			if err := f(i); err != nil && ctx.Err() == nil {
				errc <- err
				return
			}
		}
	}
	wg.Add(3)
	go writer(func(i int) error { // new records all over the address space
		c := hard(fmt.Sprintf("n%d", i), fmt.Sprintf("%c-new%06d@example.com", 'a'+i%26, i))
		_, err := b.store.Apply(ctx, []suppress.Change{c})
		return err
	})
	go writer(func(i int) error { // refresh stable records with a longer expiry
		c := hard(fmt.Sprintf("r%d", i), fmt.Sprintf("stable%05d@example.com", (i*7)%stable))
		c.SuppressTTL = time.Hour + time.Duration(i)*time.Second
		_, err := b.store.Apply(ctx, []suppress.Change{c})
		return err
	})
	go writer(func(i int) error { // lift the churning ones
		if i >= churn {
			<-ctx.Done()
			return nil
		}
		_, err := b.store.Remove(ctx, "", fmt.Sprintf("churn%05d@example.com", i), "test", "churn")
		return err
	})
	seen := walk(t, b, 97, suppress.ListFilter{}, nil)
	cancel()
	wg.Wait()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("concurrent writer: %v", err)
		}
	default:
	}
	for i := range stable {
		a := fmt.Sprintf("stable%05d@example.com", i)
		if seen[a] != 1 {
			t.Fatalf("%s listed %d times, want exactly once", a, seen[a])
		}
	}
	for a, n := range seen {
		if n != 1 {
			t.Fatalf("%s listed %d times", a, n)
		}
	}
}

func TestListPageFiltersAndCursor(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var cs []suppress.Change
	for i := range 1200 {
		c := hard(fmt.Sprintf("e%d", i), fmt.Sprintf("u%04d@example.com", i))
		if i%3 == 0 {
			c.Class, c.Reason = "complaint", "complaint"
		}
		cs = append(cs, c)
	}
	applyMany(t, b, cs)
	b.clock.Add(time.Hour)
	late := b.clock.Now()
	apply(t, b, hard("late1", "late1@example.com"), hard("late2", "late2@example.com"))

	if got := walk(t, b, 1000, suppress.ListFilter{Class: "complaint"}, nil); len(got) != 400 {
		t.Fatalf("class=complaint listed %d, want 400", len(got))
	}
	if got := walk(t, b, 7, suppress.ListFilter{Reason: "recipient_unknown"}, nil); len(got) != 802 {
		t.Fatalf("reason=recipient_unknown listed %d, want 802", len(got))
	}
	got := walk(t, b, 50, suppress.ListFilter{Since: late}, nil)
	if len(got) != 2 || got["late1@example.com"] != 1 || got["late2@example.com"] != 1 {
		t.Fatalf("since listed %v, want the two late records", got)
	}
	if _, err := b.store.ListPage(b.ctx, "", "not-a-cursor", 10, suppress.ListFilter{}); !errors.Is(err, suppress.ErrBadCursor) {
		t.Fatalf("bad cursor: %v, want ErrBadCursor", err)
	}
	// The last page has no cursor, also when it is exactly full.
	p, err := b.store.ListPage(b.ctx, "", "", 1202, suppress.ListFilter{})
	if err != nil || len(p.Records) != 1202 || p.Next != "" {
		t.Fatalf("one full page: %d records, next %q, err %v", len(p.Records), p.Next, err)
	}
}

// Expired records leave both indexes, and a record written before the address index
// existed is listed (the index is filled from the expiry index once).
func TestListPageExpiryAndFill(t *testing.T) {
	t.Parallel()
	b := setup(t)
	short := hard("x1", "short@example.com")
	short.SuppressTTL = time.Minute
	apply(t, b, short, hard("x2", "long@example.com"))
	rdb := testsvc.RedisClient(t)
	keys := b.store.Keys()
	// State as an older version wrote it: no address index.
	if err := rdb.Del(b.ctx, keys.SuppressionsByAddress(""), keys.SuppressionsByAddressReady("")).Err(); err != nil {
		t.Fatal(err)
	}
	if got := walk(t, b, 10, suppress.ListFilter{}, nil); len(got) != 2 {
		t.Fatalf("after fill listed %v, want both", got)
	}
	b.clock.Add(2 * time.Minute)
	got := walk(t, b, 10, suppress.ListFilter{}, nil)
	if len(got) != 1 || got["long@example.com"] != 1 {
		t.Fatalf("after expiry listed %v, want long@ only", got)
	}
	if n := rdb.ZCard(b.ctx, keys.SuppressionsByAddress("")).Val(); n != 1 {
		t.Fatalf("address index holds %d, want 1 after the prune", n)
	}
	// Listing a tenant that has nothing leaves no key behind (a read token could
	// otherwise create one marker per made-up tenant name).
	if page, err := b.store.ListPage(b.ctx, "nobody-here", "", 10, suppress.ListFilter{}); err != nil || len(page.Records) != 0 {
		t.Fatalf("empty tenant: %v, %v", page, err)
	}
	if n := rdb.Exists(b.ctx, keys.SuppressionsByAddressReady("nobody-here"), keys.SuppressionsByAddress("nobody-here")).Val(); n != 0 {
		t.Fatalf("listing an empty tenant left %d keys", n)
	}
}

// PruneIndexes reaches the tenants nobody lists: their expired entries leave both
// indexes, live ones stay, and nothing else under the prefix is touched.
func TestPruneIndexes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	keys := b.store.Keys()
	var cs []suppress.Change
	for _, tenant := range []string{"", "acme", "globex"} {
		short := hard("p-"+tenant+"-1", "short@example.com")
		short.Tenant, short.SuppressTTL = tenant, time.Minute
		long := hard("p-"+tenant+"-2", "long@example.com")
		long.Tenant = tenant
		cs = append(cs, short, long)
	}
	apply(t, b, cs...)
	b.clock.Add(2 * time.Minute)
	n, err := b.store.PruneIndexes(b.ctx)
	if err != nil || n != 3 {
		t.Fatalf("PruneIndexes = %d, %v; want the 3 expired entries", n, err)
	}
	rdb := testsvc.RedisClient(t)
	for _, tenant := range []string{"", "acme", "globex"} {
		for _, k := range []string{keys.SuppressionIndex(tenant), keys.SuppressionsByAddress(tenant)} {
			if got := rdb.ZRange(b.ctx, k, 0, -1).Val(); len(got) != 1 || got[0] != "long@example.com" {
				t.Errorf("%s after the prune: %v, want long@ only", k, got)
			}
		}
	}
	if n, err := b.store.PruneIndexes(b.ctx); err != nil || n != 0 {
		t.Fatalf("second PruneIndexes = %d, %v; want nothing left to drop", n, err)
	}
}
