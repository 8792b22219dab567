package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/deadletter"
	"github.com/reboundhq/rebound/internal/stream"
	"github.com/reboundhq/rebound/internal/testsvc"
)

func TestListAndReplay(t *testing.T) {
	t.Parallel()
	_, js := testsvc.JetStream(t)
	names := testsvc.Names(t, js)
	ctx := context.Background()
	if _, err := stream.Provision(ctx, js, names, stream.DefaultSettings()); err != nil {
		t.Fatal(err)
	}
	pub := stream.NewPublisher(js, names, 5*time.Second)
	good := []byte(`{"id":"generic:dl1","esp":"generic","type":"bounce","occurred_at":"2026-11-26T10:00:00Z","recipient":"a@example.com","reply":{"text":"550 5.1.1 user unknown"}}`)
	for _, d := range []stream.DeadLetter{
		{Stage: "process", Reason: "redis: gave up after 50 deliveries", Raw: good, Subject: names.EventSubject("generic"), Sequence: 7},
		{Stage: "ingest", ESP: "generic", Reason: "recipient: not an email address", Raw: []byte(`{"id":"generic:dl2","recipient":"nobody"}`)},
	} {
		if err := pub.DeadLetter(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	letters, err := deadletter.List(ctx, js, names, 0, 10)
	// The process-stage letter names its ESP (from its original subject), as `deadletter
	// list` shows it.
	if err != nil || len(letters) != 2 || letters[0].Stage != "process" || letters[0].ESP != "generic" || letters[1].Reason != "recipient: not an email address" || letters[0].At.IsZero() {
		t.Fatalf("List = %+v, %v", letters, err)
	}
	if err := deadletter.Replay(ctx, js, names, letters[1].Seq, deadletter.Options{}); !errors.Is(err, deadletter.ErrNotReplayable) {
		t.Fatalf("replay of an invalid item = %v, want ErrNotReplayable", err)
	}
	if err := deadletter.Replay(ctx, js, names, letters[0].Seq, deadletter.Options{}); err != nil {
		t.Fatalf("replay: %v", err)
	}
	s, _ := js.Stream(ctx, names.Stream)
	info, _ := s.Info(ctx)
	if info.State.Msgs != 1 {
		t.Fatalf("events stream holds %d messages after the replay, want 1", info.State.Msgs)
	}
	left, _ := deadletter.List(ctx, js, names, 0, 10)
	if len(left) != 1 || left[0].Seq != letters[1].Seq {
		t.Fatalf("left after replay = %+v, want only the invalid one", left)
	}
}

// TestReplayRefusesWhatIngestRefused: a letter ingest refused for an unknown field, or
// any letter that does not pass ingest's checks, is not replayed — with the reason —
// and stays; one relayed through the generic webhook needs the relay setting.
func TestReplayRefusesWhatIngestRefused(t *testing.T) {
	t.Parallel()
	_, js := testsvc.JetStream(t)
	names := testsvc.Names(t, js)
	ctx := context.Background()
	if _, err := stream.Provision(ctx, js, names, stream.DefaultSettings()); err != nil {
		t.Fatal(err)
	}
	pub := stream.NewPublisher(js, names, 5*time.Second)
	const ev = `{"id":"%s:dl%d","esp":"%s","type":"bounce","occurred_at":"2026-11-26T10:00:00Z","recipient":"a@example.com","reply":{"text":"550 5.1.1 user unknown"}%s}`
	for i, d := range []stream.DeadLetter{
		{Stage: "ingest", ESP: "generic", Reason: `json: unknown field "foo"`, Raw: []byte(fmt.Sprintf(ev, "generic", 1, "generic", `,"foo":1`))},
		{Stage: "process", Reason: "redis: gave up", Raw: []byte(fmt.Sprintf(ev, "generic", 2, "generic", `,"foo":1`)), Subject: names.EventSubject("generic"), Sequence: 9},
		{Stage: "ingest", ESP: "generic", Reason: "esp: not accepted here", Raw: []byte(fmt.Sprintf(ev, "sendgrid", 3, "sendgrid", ""))},
	} {
		if err := pub.DeadLetter(ctx, d); err != nil {
			t.Fatalf("letter %d: %v", i, err)
		}
	}
	letters, err := deadletter.List(ctx, js, names, 0, 10)
	if err != nil || len(letters) != 3 {
		t.Fatalf("List = %+v, %v", letters, err)
	}
	for _, l := range letters[:2] {
		err := deadletter.Replay(ctx, js, names, l.Seq, deadletter.Options{AllowRelay: true})
		if !errors.Is(err, deadletter.ErrNotReplayable) || !strings.Contains(err.Error(), `unknown field "foo"`) {
			t.Fatalf("replay of %s letter with an unknown field = %v, want refused with the reason", l.Stage, err)
		}
	}
	if err := deadletter.Replay(ctx, js, names, letters[2].Seq, deadletter.Options{}); !errors.Is(err, deadletter.ErrNotReplayable) || !strings.Contains(err.Error(), "REBOUND_GENERIC_ALLOW_RELAY") {
		t.Fatalf("replay of a relayed event without relay = %v, want refused", err)
	}
	if left, _ := deadletter.List(ctx, js, names, 0, 10); len(left) != 3 {
		t.Fatalf("letters left = %d, want all 3: a refused letter stays", len(left))
	}
	s, _ := js.Stream(ctx, names.Stream)
	if info, _ := s.Info(ctx); info.State.Msgs != 0 {
		t.Fatalf("events stream holds %d messages, want none", info.State.Msgs)
	}
	// With relay allowed, as ingest would take it, it goes back.
	if err := deadletter.Replay(ctx, js, names, letters[2].Seq, deadletter.Options{AllowRelay: true}); err != nil {
		t.Fatalf("replay with relay = %v", err)
	}
}
