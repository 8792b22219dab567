package process

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
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
type MaxDeliveries struct {
	NC        *nats.Conn
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

// AdvisorySubject is the subject of the consumer's MaxDeliver advisories.
func AdvisorySubject(n events.Names) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + n.Stream + "." + n.Consumer
}

// Run listens until ctx ends. Replicas share a queue group, so each advisory is handled
// once; a letter written twice anyway (or already written by the processor) is stored
// once, since its message ID is the stream sequence. An advisory sent while no replica
// listens is lost: core NATS does not keep it.
func (w *MaxDeliveries) Run(ctx context.Context) error {
	if w.Log == nil {
		w.Log = zap.NewNop()
	}
	sub, err := w.NC.QueueSubscribe(AdvisorySubject(w.Names), "rebound-max-deliveries", func(m *nats.Msg) {
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := w.handle(hctx, m.Data); err != nil {
			w.Log.Error("event given up by JetStream not dead-lettered", zap.Error(err))
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe to MaxDeliver advisories: %w", err)
	}
	<-ctx.Done()
	return sub.Unsubscribe()
}

func (w *MaxDeliveries) handle(ctx context.Context, data []byte) error {
	var a maxDeliverAdvisory
	if err := json.Unmarshal(data, &a); err != nil {
		return fmt.Errorf("advisory: %w", err)
	}
	s, err := w.JS.Stream(ctx, w.Names.Stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", w.Names.Stream, err)
	}
	msg, err := s.GetMsg(ctx, a.StreamSeq)
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
