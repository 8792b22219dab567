package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/stream"
)

// MaxDeliveries dead-letters the events JetStream gives up on. The processor
// dead-letters an event that fails on its last delivery itself; one whose last delivery
// was never answered (a worker killed or stuck mid-batch, AckWait passed) is only
// reported by the server, with the MaxDeliver advisory, and without this it would stay
// in the stream unprocessed and unnoticed.
//
// The advisory is a core NATS message: stream.Provision keeps it in the advisory
// stream (events.Names.AdvisoryStream), so one sent while no replica listened waits
// for the next, and each is handled once by the replicas' shared durable consumer.
type MaxDeliveries struct {
	JS        jetstream.JetStream
	Names     events.Names
	Publisher *stream.Publisher
	Metrics   *metrics.Metrics
	Log       *zap.Logger
}

// maxDeliverAdvisory is the part of io.nats.jetstream.advisory.v1.max_deliver read here.
type maxDeliverAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// advisoryRetry is how long a failed dead-lettering waits before the advisory comes again.
const advisoryRetry = 5 * time.Second

// Run consumes the kept advisories until ctx ends. A letter written twice (or already
// written by the processor) is stored once: its message ID is the stream sequence.
func (w *MaxDeliveries) Run(ctx context.Context) error {
	if w.Log == nil {
		w.Log = zap.NewNop()
	}
	cons, err := w.JS.CreateOrUpdateConsumer(ctx, w.Names.AdvisoryStream(), jetstream.ConsumerConfig{
		Durable:     w.Names.AdvisoryConsumer(),
		Description: "Rebound process role: dead-letters the events JetStream gave up on",
		AckPolicy:   jetstream.AckExplicitPolicy,
		AckWait:     30 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("MaxDeliver advisory consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err := w.handle(hctx, m.Data())
		switch {
		case err == nil:
			if err := m.Ack(); err != nil {
				w.Log.Warn("MaxDeliver advisory handled but not acknowledged; it will be handled again", zap.Error(err))
			}
		case errors.Is(err, errGone):
			// Nothing left to dead-letter (the event aged out of the stream): retrying
			// would not bring it back.
			w.Log.Error("event given up by JetStream could not be dead-lettered", zap.Error(err))
			_ = m.Term()
		default:
			w.Log.Error("event given up by JetStream not dead-lettered yet; retrying", zap.Error(err), zap.Duration("retry_in", advisoryRetry))
			_ = m.NakWithDelay(advisoryRetry)
		}
	})
	if err != nil {
		return fmt.Errorf("consume MaxDeliver advisories: %w", err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

// errGone marks an advisory whose event cannot be dead-lettered however often it is tried.
var errGone = errors.New("nothing to dead-letter")

func (w *MaxDeliveries) handle(ctx context.Context, data []byte) error {
	var a maxDeliverAdvisory
	if err := json.Unmarshal(data, &a); err != nil {
		return fmt.Errorf("advisory: %w (%w)", err, errGone)
	}
	s, err := w.JS.Stream(ctx, w.Names.Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", w.Names.Stream, err)
	}
	msg, err := s.GetMsg(ctx, a.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("event at stream sequence %d: %w (%w)", a.StreamSeq, err, errGone)
	}
	if err != nil {
		return fmt.Errorf("event at stream sequence %d: %w", a.StreamSeq, err)
	}
	reason := "max deliveries: JetStream gave up after " + strconv.FormatUint(a.Deliveries, 10) +
		" deliveries without an acknowledgement (the last one timed out)"
	if err := w.Publisher.DeadLetter(ctx, stream.DeadLetter{Stage: "process", Reason: reason, Raw: msg.Data, Subject: msg.Subject, Sequence: a.StreamSeq}); err != nil {
		return fmt.Errorf("event at stream sequence %d: %w", a.StreamSeq, err)
	}
	if m := w.Metrics; m != nil {
		m.DeadLetters.WithLabelValues("process").Inc()
		m.EventsFailed.WithLabelValues("process", "max_deliveries").Inc()
	}
	w.Log.Warn("event dead-lettered", zap.Uint64("stream_seq", a.StreamSeq), zap.String("stage", "process"), zap.String("reason", reason))
	return nil
}
