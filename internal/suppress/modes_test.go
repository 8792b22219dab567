package suppress_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestBatchAndPerEventScriptsAgree applies one workload, duplicates included, with one
// script call per batch and with one per event (what Cluster runs), and compares every
// outcome and every recipient's final state.
func TestBatchAndPerEventScriptsAgree(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	now := time.Now().Truncate(time.Millisecond)
	clock := func() time.Time { return now }
	batch := suppress.New(rdb, suppress.Options{Prefix: testsvc.Prefix(t, rdb), Now: clock})
	perEvent := suppress.New(rdb, suppress.Options{Prefix: testsvc.Prefix(t, rdb), Now: clock, PerEventScripts: true})
	ctx := context.Background()
	for _, st := range []*suppress.Store{batch, perEvent} {
		if err := st.Load(ctx); err != nil {
			t.Fatal(err)
		}
	}
	run := testsvc.ID()
	w := workload(run, 600)
	// Redeliveries: the second half of the first 100 again, mixed in.
	w = append(w, w[50:100]...)
	for i := 0; i < len(w); i += 128 {
		chunk := w[i:min(i+128, len(w))]
		a, err := batch.Apply(ctx, append([]suppress.Change(nil), chunk...))
		if err != nil {
			t.Fatal(err)
		}
		b, err := perEvent.Apply(ctx, append([]suppress.Change(nil), chunk...))
		if err != nil {
			t.Fatal(err)
		}
		for j := range a {
			if a[j].Err != nil || b[j].Err != nil {
				t.Fatalf("event %d: %v / %v", i+j, a[j].Err, b[j].Err)
			}
			if !reflect.DeepEqual(a[j], b[j]) {
				t.Fatalf("event %d (%s): batch %+v, per event %+v", i+j, chunk[j].Action, a[j], b[j])
			}
		}
	}
	for i := range 200 {
		addr := fmt.Sprintf("u%d-%s@example.com", i, run)
		a, _ := batch.Recipient(ctx, "", addr)
		b, _ := perEvent.Recipient(ctx, "", addr)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: batch %+v\nper event %+v", addr, a, b)
		}
	}
}
