package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reboundhq/rebound/internal/events"
)

// Settings size the streams and the consumer.
type Settings struct {
	Replicas      int
	MaxAge        time.Duration // how long events stay for replay
	DedupWindow   time.Duration // JetStream drops a re-sent event ID within this window
	AckWait       time.Duration
	MaxDeliver    int
	MaxAckPending int
}

// DefaultSettings are the settings used when nothing is configured.
func DefaultSettings() Settings {
	return Settings{Replicas: 1, MaxAge: 7 * 24 * time.Hour, DedupWindow: 2 * time.Hour, AckWait: 30 * time.Second, MaxDeliver: 50, MaxAckPending: 2000}
}

// deadLetterMaxAge keeps dead letters long enough for an operator to look at them
// after a holiday.
const deadLetterMaxAge = 30 * 24 * time.Hour

// Provision creates or updates the events stream, the dead-letter stream, the stream
// that keeps the process consumer's MaxDeliver advisories, and the durable pull
// consumer. It is idempotent: every replica runs it at start-up.
func Provision(ctx context.Context, js jetstream.JetStream, n events.Names, s Settings) (jetstream.Consumer, error) {
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        n.Stream,
		Description: "Rebound canonical bounce, deferral and complaint events",
		Subjects:    []string{n.EventSubjects()},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy, // kept for replay and shadow policies, not deleted on ack
		MaxAge:      s.MaxAge,
		Duplicates:  s.DedupWindow,
		Replicas:    s.Replicas,
		Discard:     jetstream.DiscardOld,
	}); err != nil {
		return nil, fmt.Errorf("provision stream %s: %w", n.Stream, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        n.DeadStream,
		Description: "Rebound dead letters: input that could not be processed, with the reason",
		Subjects:    []string{n.DeadSubjects()},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      deadLetterMaxAge,
		Duplicates:  s.DedupWindow,
		Replicas:    s.Replicas,
	}); err != nil {
		return nil, fmt.Errorf("provision stream %s: %w", n.DeadStream, err)
	}
	// The server announces an event it gave up on (MaxDeliver reached, the last delivery
	// unanswered) only on a core NATS subject: kept in a stream, the announcement waits
	// for a process replica instead of being lost while none is connected.
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        n.AdvisoryStream(),
		Description: "Rebound: JetStream's MaxDeliver advisories for the process consumer, until dead-lettered",
		Subjects:    []string{n.MaxDeliverAdvisories()},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.WorkQueuePolicy, // removed once a replica has dead-lettered the event
		MaxAge:      deadLetterMaxAge,
		Replicas:    s.Replicas,
	}); err != nil {
		return nil, fmt.Errorf("provision stream %s: %w", n.AdvisoryStream(), err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, n.Stream, jetstream.ConsumerConfig{
		Durable:       n.Consumer,
		Description:   "Rebound process role (shared by every replica)",
		FilterSubject: n.EventSubjects(),
		AckPolicy:     jetstream.AckExplicitPolicy, // never AckAll: replicas share this consumer
		AckWait:       s.AckWait,
		MaxDeliver:    s.MaxDeliver,
		MaxAckPending: s.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		Replicas:      s.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("provision consumer %s on %s: %w", n.Consumer, n.Stream, err)
	}
	return cons, nil
}

// Check reports whether the streams and the consumer exist (the readiness probe).
func Check(ctx context.Context, js jetstream.JetStream, n events.Names) error {
	for _, name := range []string{n.Stream, n.DeadStream, n.AdvisoryStream()} {
		if _, err := js.Stream(ctx, name); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
	if _, err := js.Consumer(ctx, n.Stream, n.Consumer); err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("consumer %s: not provisioned", n.Consumer)
		}
		return fmt.Errorf("consumer %s: %w", n.Consumer, err)
	}
	return nil
}
