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

// replayOver publishes the events (recipient, reply) and replays them under candidate.
func replayOver(t *testing.T, candidate string, evs ...[2]string) replay.Report {
	t.Helper()
	_, js := testsvc.JetStream(t)
	names := testsvc.Names(t, js)
	ctx := context.Background()
	if _, err := stream.Provision(ctx, js, names, stream.DefaultSettings()); err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		ev := events.Event{ID: fmt.Sprintf("generic:e%d", i), ESP: "generic", Type: events.TypeBounce, OccurredAt: time.Now().UTC(),
			Recipient: e[0], Reply: events.Reply{Text: e[1]}}
		if e[1] == "delivered" {
			ev.Type, ev.Reply = events.TypeDelivered, events.Reply{}
		}
		b, _ := json.Marshal(ev)
		if _, err := js.Publish(ctx, names.EventSubject("generic"), b); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	cand, err := policy.Parse([]byte(candidate), "candidate.yaml", cat)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := replay.Run(ctx, js, names, time.Now().Add(-time.Hour), cat, policy.Default(), cand)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if rep.Read != len(evs) {
		t.Fatalf("read %d of %d events", rep.Read, len(evs))
	}
	return rep
}

const full = "452 4.2.2 mailbox full"

// TestReplaySeesTheSoftThreshold is issue #15's case: a candidate that differs from the
// built-in policy only in soft.threshold (3 → 1) suppresses at the first 4.2.2; the
// replay said "0 would be decided differently". The recipients are printed redacted,
// each once.
func TestReplaySeesTheSoftThreshold(t *testing.T) {
	t.Parallel()
	rep := replayOver(t, "version: 1\nsoft: {threshold: 1, window: 7d, ttl: 30d}\n",
		[2]string{"dave@example.com", full}, [2]string{"dave@example.com", full}, [2]string{"dave@example.com", full},
		[2]string{"erin@example.org", full}, [2]string{"x@example.net", "550 5.1.1 user unknown"})
	// dave: live counts 1, 2, then suppresses at 3; the candidate suppresses at each.
	// erin: 1 of 3 live, suppressed by the candidate. The hard bounce: the same.
	if len(rep.Changes) != 1 {
		t.Fatalf("changes = %+v, want one kind", rep.Changes)
	}
	c := rep.Changes[0]
	if c.Class != "mailbox_full" || c.Live != policy.ActionSoft || c.Candidate != policy.ActionSuppress || c.Events != 3 ||
		c.LiveEffect != "soft, 7d window (global)" || c.CandidateEffect != "soft, 7d window → suppress for 30d (global)" {
		t.Fatalf("change = %+v, want mailbox_full soft → suppressed on 3 events", c)
	}
	if fmt.Sprint(c.Examples) != "[***@example.com ***@example.org]" {
		t.Fatalf("examples = %v, want each recipient once, redacted", c.Examples)
	}
	var out bytes.Buffer
	rep.Print(&out, "built-in", "candidate.yaml")
	if !strings.Contains(out.String(), "3 would be decided differently") || strings.Contains(out.String(), "dave@") || strings.Contains(out.String(), "erin@") {
		t.Fatalf("printed report:\n%s", out.String())
	}
}

// TestReplaySeesWindowTTLAndScope: a candidate that changes only a TTL, a scope or the
// soft window decides differently too; a delivered event clears the simulated window.
func TestReplaySeesWindowTTLAndScope(t *testing.T) {
	t.Parallel()
	rep := replayOver(t, "version: 1\nsoft: {threshold: 2, window: 1d, ttl: 30d}\nsuppression_scope: tenant\nclasses:\n  recipient_unknown: {action: suppress, ttl: 90d, scope: global}\n  domain_invalid: {action: suppress, scope: tenant}\n",
		[2]string{"a@example.com", "550 5.1.1 user unknown"},                   // TTL: permanent → 90d
		[2]string{"b@example.com", "550 5.1.2 bad destination system address"}, // scope: global → tenant
		[2]string{"c@example.com", full}, [2]string{"c@example.com", "delivered"}, [2]string{"c@example.com", full})
	got := map[string]string{}
	for _, c := range rep.Changes {
		got[c.Class+" "+c.LiveEffect] = fmt.Sprintf("%s ×%d", c.CandidateEffect, c.Events)
	}
	want := map[string]string{
		"recipient_unknown suppress permanently (global)": "suppress for 90d (global) ×1",
		"domain_invalid suppress permanently (global)":    "suppress permanently (tenant) ×1",
		// The window is 1d and the scope tenant: every soft bounce counts otherwise,
		// and the delivered event in between keeps the second below both thresholds.
		"mailbox_full soft, 7d window (global)": "soft, 1d window (tenant) ×2",
		"unknown reset (global)":                "reset (tenant) ×1", // the delivered event
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changes = %v\nwant      %v", got, want)
	}
}
