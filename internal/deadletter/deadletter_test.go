package deadletter_test

import (
	"context"
	"errors"
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
	if err != nil || len(letters) != 2 || letters[0].Stage != "process" || letters[1].Reason != "recipient: not an email address" || letters[0].At.IsZero() {
		t.Fatalf("List = %+v, %v", letters, err)
	}
	if err := deadletter.Replay(ctx, js, names, letters[1].Seq); !errors.Is(err, deadletter.ErrNotReplayable) {
		t.Fatalf("replay of an invalid item = %v, want ErrNotReplayable", err)
	}
	if err := deadletter.Replay(ctx, js, names, letters[0].Seq); err != nil {
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
