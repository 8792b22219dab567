package process_test

import (
	"context"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestIncidentOpeningReportedOnceWhenTheRecipientsWriteFails: the event that opens an
// incident is observed, but the recipients' write of its batch fails (here the
// recipient's log key holds a value of the wrong type), so the batch is retried. The
// redelivery finds the incident observation counted; the opening must still be
// logged and counted once — and not again when the event comes a third time after it
// was acknowledged.
func TestIncidentOpeningReportedOnceWhenTheRecipientsWriteFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := testsvc.RedisClient(t)
	b := setup(t, rdb, 50)
	logKey := b.store.Keys().Log("", "opener@example.com")
	if err := rdb.Set(ctx, logKey, "not a hash", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	ev := event("op1", "opener@example.com", "530 5.7.0 Authentication required")
	b.publish(t, ev)

	eventually(t, 15*time.Second, "the incident observed and the batch failed", nil, func() bool {
		active, err := b.alerts.Active(ctx, 10)
		return err == nil && len(active) == 1 && gauge(t, b.metrics, "rebound_events_failed_total") >= 1
	})
	select {
	case r := <-b.results:
		t.Fatalf("event acknowledged while its recipients' write fails: %+v", r)
	default:
	}
	if n := gauge(t, b.metrics, "rebound_incidents_opened_total"); n != 0 {
		t.Fatalf("incidents opened = %v before the event was applied, want 0", n)
	}
	if err := rdb.Del(ctx, logKey).Err(); err != nil {
		t.Fatal(err)
	}
	r := b.wait(t, 1, 20*time.Second)[0]
	if r.Incident == nil || !r.Incident.Duplicate || !r.Incident.OpenedEarlier || r.Outcome.Duplicate {
		t.Fatalf("redelivery = outcome %+v, incident %+v; want the recipients' write counted now and the observation counted before by this opener", r.Outcome, r.Incident)
	}
	if n := gauge(t, b.metrics, "rebound_incidents_opened_total"); n != 1 {
		t.Fatalf("incidents opened = %v after the redelivery, want 1", n)
	}

	// Once more, after the ack: both writes are duplicates, nothing is reported again.
	b.publish(t, ev)
	r = b.wait(t, 1, 20*time.Second)[0]
	if !r.Outcome.Duplicate || r.Incident == nil || !r.Incident.Duplicate {
		t.Fatalf("third delivery = outcome %+v, incident %+v; want duplicates", r.Outcome, r.Incident)
	}
	if n := gauge(t, b.metrics, "rebound_incidents_opened_total"); n != 1 {
		t.Fatalf("incidents opened = %v after a duplicate, want 1", n)
	}
}
