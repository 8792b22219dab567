package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/replay"
	"github.com/reboundhq/rebound/internal/stream"
	"github.com/reboundhq/rebound/internal/testsvc"
)

func TestReplayReportsWhatACandidateWouldChange(t *testing.T) {
	t.Parallel()
	_, js := testsvc.JetStream(t)
	names := testsvc.Names(t, js)
	ctx := context.Background()
	if _, err := stream.Provision(ctx, js, names, stream.DefaultSettings()); err != nil {
		t.Fatal(err)
	}
	replies := []string{"452 4.2.2 mailbox full", "550 5.1.1 user unknown", "452 4.2.2 mailbox full", "530 5.7.0 Authentication required"}
	for i, r := range replies {
		e := events.Event{ID: fmt.Sprintf("generic:r%d", i), ESP: "generic", Type: events.TypeBounce, OccurredAt: time.Now().UTC(),
			Recipient: fmt.Sprintf("u%d@example.com", i), Reply: events.Reply{Text: r}}
		b, _ := json.Marshal(e)
		if _, err := js.Publish(ctx, names.EventSubject("generic"), b); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	candidate, err := policy.Parse([]byte("version: 1\nsoft: {threshold: 3, window: 7d, ttl: 30d}\nclasses:\n  mailbox_full: {action: record}\n"), "candidate.yaml", cat)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := replay.Run(ctx, js, names, time.Now().Add(-time.Hour), cat, policy.Default(), candidate)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if rep.Read != 4 || len(rep.Changes) != 1 {
		t.Fatalf("report = %+v, want 4 read and one kind of change", rep)
	}
	c := rep.Changes[0]
	// (A transient reply never suppresses outright, whatever the file says: a candidate
	// with mailbox_full: suppress counts it in the soft window like the live policy.)
	if c.Class != "mailbox_full" || c.Live != policy.ActionSoft || c.Candidate != policy.ActionNone || c.Events != 2 ||
		len(c.Examples) != 1 || c.Examples[0] != "***@example.com" { // redacted, and so listed once
		t.Fatalf("change = %+v, want mailbox_full soft → record on 2 events", c)
	}
	var out bytes.Buffer
	rep.Print(&out, "built-in", "candidate.yaml")
	if !strings.Contains(out.String(), "2 would be decided differently") {
		t.Fatalf("printed report:\n%s", out.String())
	}
	// Replay changes nothing: the durable consumer still has every event pending.
	cons, err := js.Consumer(ctx, names.Stream, names.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := cons.Info(ctx)
	if info.NumPending != 4 {
		t.Fatalf("durable consumer pending = %d after replay, want 4 (replay must not consume)", info.NumPending)
	}
}
