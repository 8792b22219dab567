// Package deadletter lists and replays the dead-letter stream: input Rebound could not
// process, kept with its raw bytes and the reason. A replayed letter is removed from
// the stream only once its event is back in the events stream.
package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/stream"
)

// Letter is one dead letter.
type Letter struct {
	Seq      uint64
	Stage    string // ingest or process
	ESP      string
	Reason   string
	At       time.Time
	Subject  string // original subject (process stage)
	Raw      []byte
	Replayed bool
}

// List returns up to limit letters, oldest first, starting at sequence from.
func List(ctx context.Context, js jetstream.JetStream, n events.Names, from uint64, limit int) ([]Letter, error) {
	s, err := js.Stream(ctx, n.DeadStream)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", n.DeadStream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", n.DeadStream, err)
	}
	from = max(from, info.State.FirstSeq)
	var out []Letter
	for seq := from; seq <= info.State.LastSeq && len(out) < limit; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // replayed and removed
		}
		if err != nil {
			return out, fmt.Errorf("read dead letter %d: %w", seq, err)
		}
		out = append(out, letter(m))
	}
	return out, nil
}

func letter(m *jetstream.RawStreamMsg) Letter {
	at, _ := time.Parse(time.RFC3339Nano, m.Header.Get(stream.HeaderAt))
	return Letter{
		Seq: m.Sequence, Stage: m.Header.Get(stream.HeaderStage), ESP: m.Header.Get(stream.HeaderESP),
		Reason: m.Header.Get(stream.HeaderReason), At: at, Subject: m.Header.Get(stream.HeaderSubject), Raw: m.Data,
	}
}

// ErrNotReplayable marks a letter that cannot go back as it is: it must be fixed and
// sent again.
var ErrNotReplayable = errors.New("not replayable as it is")

// Options are the ingest settings a replay checks a letter against.
type Options struct {
	// AllowRelay: the generic webhook takes other ESPs' canonical events
	// (REBOUND_GENERIC_ALLOW_RELAY). Without it, an ingest-stage letter of the generic
	// webhook must be an esp "generic" event, as ingest requires.
	AllowRelay bool
}

// Replay puts one letter back into the events stream and removes it from the
// dead-letter stream. The letter's bytes must pass what ingest checks of a generic
// webhook item — a canonical event, unknown fields refused, every field valid
// (events.DecodeStrict) — whatever its stage: an ESP's raw item has no signature left to
// verify, and a letter ingest refused (`json: unknown field "foo"`) must not get in by
// the back door with the field silently dropped. A refused letter's error wraps
// ErrNotReplayable and says why. The event's own ID keeps its effect exactly-once; the
// message gets a new ID, since the original may still be inside the duplicate window.
func Replay(ctx context.Context, js jetstream.JetStream, n events.Names, seq uint64, opt Options) error {
	s, err := js.Stream(ctx, n.DeadStream)
	if err != nil {
		return fmt.Errorf("dead-letter stream %s: %w", n.DeadStream, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return fmt.Errorf("read dead letter %d: %w", seq, err)
	}
	l := letter(m)
	ev, err := events.DecodeStrict(l.Raw)
	if err != nil {
		return fmt.Errorf("dead letter %d: %w: %s", seq, ErrNotReplayable, strings.TrimPrefix(err.Error(), events.ErrUndecodable.Error()+": "))
	}
	if l.Stage == "ingest" && l.ESP == "generic" && ev.ESP != "generic" && !opt.AllowRelay {
		return fmt.Errorf("dead letter %d: %w: esp: %q is not accepted by the generic webhook (REBOUND_GENERIC_ALLOW_RELAY=true relays other ESPs' events)", seq, ErrNotReplayable, ev.ESP)
	}
	data, err := events.Marshal(&ev)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: n.EventSubject(ev.ESP), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID+":replay:"+strconv.FormatUint(seq, 10))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("dead letter %d replayed but not removed: %w", seq, err)
	}
	return nil
}
