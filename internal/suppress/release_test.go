package suppress_test

import (
	"context"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestReleasedChangeKeepsItsEventAndTime: the mass-bounce guard's release of a held
// suppression writes the record as it would have been written when held — the event's
// own ID, first and last seen at the time it was held — while the recipient's log gets
// the release as an entry of its own ("<id>:released", action released), which also
// makes a repeated release a duplicate. Both script modes agree.
func TestReleasedChangeKeepsItsEventAndTime(t *testing.T) {
	t.Parallel()
	for _, perEvent := range []bool{false, true} {
		rdb := testsvc.RedisClient(t)
		now := time.Now().Truncate(time.Millisecond)
		st := suppress.New(rdb, suppress.Options{Prefix: testsvc.Prefix(t, rdb), Now: func() time.Time { return now }, PerEventScripts: perEvent})
		ctx := context.Background()
		if err := st.Load(ctx); err != nil {
			t.Fatal(err)
		}
		heldAt := now.Add(-3 * time.Hour)
		held := suppress.Change{EventID: "generic:h1", ESP: "generic", Address: "a@example.com", Action: suppress.ActionHeld, Reason: "recipient_unknown", Class: "recipient_unknown"}
		released := held
		released.Action, released.Released, released.At = suppress.ActionSuppress, true, heldAt.UnixMilli()
		for i, c := range []suppress.Change{held, released, released} {
			outs, err := st.Apply(ctx, []suppress.Change{c})
			if err != nil || outs[0].Err != nil {
				t.Fatalf("apply %d: %+v, %v", i, outs, err)
			}
			if dup := outs[0].Duplicate; dup != (i == 2) {
				t.Fatalf("perEvent=%t apply %d duplicate = %t", perEvent, i, dup)
			}
		}
		rec, err := st.Suppression(ctx, "", "a@example.com")
		if err != nil || rec == nil || rec.EventID != "generic:h1" || rec.LastEventID != "generic:h1" || !rec.FirstSeen.Equal(heldAt) || !rec.LastSeen.Equal(heldAt) || rec.Events != 1 {
			t.Fatalf("perEvent=%t record = %+v, %v, want event generic:h1 first and last seen %s", perEvent, rec, err, heldAt)
		}
		rs, err := st.Recipient(ctx, "", "a@example.com")
		if err != nil || len(rs.History) != 2 || rs.History[0].EventID != "generic:h1:released" || rs.History[0].Action != "released" ||
			!rs.History[0].At.Equal(now) || rs.History[1].Action != "held" {
			t.Fatalf("perEvent=%t history = %+v, %v, want held, then released now", perEvent, rs.History, err)
		}
	}
}
