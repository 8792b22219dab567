package process_test

import (
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/process"
	"github.com/reboundhq/rebound/internal/stats"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestHourlyStatisticsAreAddedUp: the process role writes its hourly statistics at
// most once a second of its clock (the first batch at once), writes what the last
// batches left when events stop flowing within a second (not at the next stall check,
// five seconds here: the console's overview showed a batch late), and writes the rest
// when it stops, so nothing is lost at shutdown.
func TestHourlyStatisticsAreAddedUp(t *testing.T) {
	t.Parallel()
	clk := newManualClock()
	b := setupConfig(t, testsvc.RedisClient(t), 10, policy.Default, func(c *process.Config) {
		c.Clock, c.StallCheck = clk, 5*time.Second
	})
	total := func() int64 {
		w, err := stats.Read(t.Context(), b.store, clk.Now(), 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		return w.Hours[0].Total
	}
	b.publish(t, event("h1", "h1@example.com", "550 5.1.1 user unknown"))
	b.wait(t, 1, 10*time.Second)
	eventually(t, 10*time.Second, "the first batch's statistics written", nil, func() bool { return total() == 1 })

	// Within the same second: added up, not written.
	b.publish(t, event("h2", "h2@example.com", "550 5.1.1 user unknown"))
	b.wait(t, 1, 10*time.Second)
	b.publish(t, event("h3", "h3@example.com", "550 5.1.1 user unknown"))
	b.wait(t, 1, 10*time.Second)
	if n := total(); n != 1 {
		t.Fatalf("total = %d within the second of the first write, want 1", n)
	}
	// Events stopped: written once the second has passed, well before the stall check.
	clk.Advance(time.Second)
	eventually(t, 10*time.Second, "the quiet interval's statistics written", nil, func() bool { return total() == 3 })

	// A batch right after that write, then shutdown: written before Run returns.
	b.publish(t, event("h4", "h4@example.com", "550 5.1.1 user unknown"))
	b.wait(t, 1, 10*time.Second)
	b.stop(t)
	if n := total(); n != 4 {
		t.Fatalf("total after stop = %d, want 4", n)
	}
}
