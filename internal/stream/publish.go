package stream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reboundhq/rebound/internal/events"
)

// ErrUnavailable wraps every publish failure: the caller must not tell the ESP that the
// events were taken (HTTP 503, so the ESP retries).
var ErrUnavailable = errors.New("jetstream unavailable")

// Dead-letter headers: why a message was diverted and where it came from.
const (
	HeaderReason   = "Rebound-Reason"
	HeaderStage    = "Rebound-Stage"
	HeaderESP      = "Rebound-ESP"
	HeaderSubject  = "Rebound-Original-Subject"
	HeaderSequence = "Rebound-Original-Sequence"
	HeaderAt       = "Rebound-At"
)

// Publisher publishes canonical events and dead letters.
type Publisher struct {
	js      jetstream.JetStream
	names   events.Names
	timeout time.Duration
}

// NewPublisher returns a publisher; timeout bounds the wait for every PubAck of one call.
func NewPublisher(js jetstream.JetStream, n events.Names, timeout time.Duration) *Publisher {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Publisher{js: js, names: n, timeout: timeout}
}

// Publish sends the events and returns only once JetStream has acknowledged every one
// of them (a duplicate acknowledgement counts: the event is already stored). The event
// ID is the Nats-Msg-Id, so an ESP's retry inside the dedup window is stored once.
func (p *Publisher) Publish(ctx context.Context, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(evs))
	for i := range evs {
		data, err := events.Marshal(&evs[i])
		if err != nil {
			return err
		}
		// The header is built directly: MsgIDHeader is already canonical, and Set would
		// canonicalise it again for every event on the hot path.
		msg := &nats.Msg{Subject: p.names.EventSubject(evs[i].ESP), Data: data,
			Header: nats.Header{jetstream.MsgIDHeader: []string{evs[i].ID}}}
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("%w: publish %s: %v", ErrUnavailable, evs[i].ID, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("%w: publish %s: %v", ErrUnavailable, evs[i].ID, err)
		case <-ctx.Done():
			return fmt.Errorf("%w: publish %s: no acknowledgement: %v", ErrUnavailable, evs[i].ID, ctx.Err())
		}
	}
	return nil
}

// DeadLetter records raw bytes that could not be processed, with the reason. The
// message ID is derived from the stage and the bytes (or the original sequence), so a
// retried request or a redelivered message is dead-lettered once.
func (p *Publisher) DeadLetter(ctx context.Context, d DeadLetter) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	msg := &nats.Msg{Subject: p.names.DeadSubject(d.Stage), Data: d.Raw, Header: nats.Header{}}
	msg.Header.Set(HeaderReason, d.Reason)
	msg.Header.Set(HeaderStage, d.Stage)
	msg.Header.Set(HeaderAt, time.Now().UTC().Format(time.RFC3339Nano))
	esp := d.ESP
	if esp == "" && d.Subject != "" {
		// A process-stage letter's ESP is its original subject's: <prefix>.events.<esp>.
		if rest, ok := strings.CutPrefix(d.Subject, p.names.EventSubject("")); ok {
			esp = rest
		}
	}
	if esp != "" {
		msg.Header.Set(HeaderESP, esp)
	}
	id := d.Stage + ":"
	if d.Subject != "" {
		msg.Header.Set(HeaderSubject, d.Subject)
		msg.Header.Set(HeaderSequence, strconv.FormatUint(d.Sequence, 10))
		id += strconv.FormatUint(d.Sequence, 10)
	} else {
		sum := sha256.Sum256(d.Raw)
		id += hex.EncodeToString(sum[:16])
	}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("%w: dead-letter (%s): %v", ErrUnavailable, d.Stage, err)
	}
	return nil
}

// DeadLetter is one item for the dead-letter stream.
type DeadLetter struct {
	Stage    string // "ingest" or "process"
	ESP      string
	Reason   string
	Raw      []byte
	Subject  string // original subject (process stage)
	Sequence uint64 // original stream sequence (process stage)
}
