package erasure_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/erasure"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
	"github.com/reboundhq/rebound/internal/transfer"
)

// On a three-master Redis Cluster, every multi-key step of this features runs
// within one slot (no CROSSSLOT): an import (the recipient scripts and both listing
// indexes), the cursor walk with its prune script, the export, and an erasure with its
// marker, guard and incident steps.
func TestImportListEraseOnCluster(t *testing.T) {
	t.Parallel()
	c := testsvc.StartCluster(t)
	rdb := c.Client(t)
	ctx := context.Background()
	prefix := testsvc.Prefix(t, rdb)
	key := []byte("0123456789abcdef-cluster")
	st := suppress.New(rdb, suppress.Options{Prefix: prefix, AddressHashKey: key})
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	al := alert.NewStore(rdb, alert.StoreOptions{Prefix: prefix, RecipientKey: key})
	g := guard.New(guard.Config{Redis: rdb, Prefix: prefix, Store: st, Alerts: al})
	var list strings.Builder
	list.WriteString("email,created\n")
	for i := range 600 {
		fmt.Fprintf(&list, "u%04d@example.com,2026-02-04 12:00:00\n", i)
	}
	sum, err := transfer.Import(ctx, st, transfer.NewReader(strings.NewReader(list.String()), transfer.FormatAuto), transfer.Options{Tenant: "acme"})
	if err != nil || sum.Imported != 600 {
		t.Fatalf("import on Cluster: %+v, %v", sum, err)
	}
	seen, cursor := 0, ""
	for {
		p, err := st.ListPage(ctx, "acme", cursor, 70, suppress.ListFilter{Class: "unsubscribe"})
		if err != nil {
			t.Fatalf("list on Cluster: %v", err)
		}
		seen += len(p.Records)
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if seen != 600 {
		t.Fatalf("listed %d on Cluster, want 600", seen)
	}
	// The periodic prune walks every master's keys; nothing imported has expired.
	if n, err := st.PruneIndexes(ctx); err != nil || n != 0 {
		t.Fatalf("prune on Cluster: %d, %v", n, err)
	}
	rep, err := erasure.Eraser{Store: st, Guard: g, Alerts: al}.Erase(ctx, "acme", "u0042@example.com", true)
	if err != nil || rep.KeysDeleted < 2 || !rep.Marker {
		t.Fatalf("erase on Cluster: %+v, %v", rep, err)
	}
	if rec, err := st.Suppression(ctx, "acme", "u0042@example.com"); err != nil || rec == nil || rec.Reason != suppress.MarkerReason {
		t.Fatalf("marker on Cluster: %+v, %v", rec, err)
	}
	var out strings.Builder
	if n, err := transfer.Export(ctx, st, "acme", &out, transfer.FormatCSV, nil); err != nil || n != 600 {
		t.Fatalf("export on Cluster: %d, %v (599 imported and the marker)", n, err)
	}
}
