// Package replay runs a candidate policy over the events retained in the stream and
// reports where it would decide otherwise than the live policy. It reads through an
// ordered, ephemeral consumer and changes nothing: no ack, no Redis, no alert.
package replay

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/policy"
)

// Change is one way the candidate differs, with how often and examples.
type Change struct {
	Class     string
	Live      policy.Action
	Candidate policy.Action
	Events    int
	Examples  []string // recipients
}

// Report is the result of one replay.
type Report struct {
	Since     time.Time
	Read      int
	Undecoded int
	Changes   []Change
}

// maxExamples is how many recipients each change lists.
const maxExamples = 3

// Run replays the stream's events since the given time.
func Run(ctx context.Context, js jetstream.JetStream, n events.Names, since time.Time, cat *catalog.Catalog, live, candidate *policy.Policy) (Report, error) {
	rep := Report{Since: since}
	stream, err := js.Stream(ctx, n.Stream)
	if err != nil {
		return rep, fmt.Errorf("stream %s: %w", n.Stream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return rep, fmt.Errorf("stream %s: %w", n.Stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 || info.State.LastTime.Before(since) {
		return rep, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{n.EventSubjects()},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &since,
	})
	if err != nil {
		return rep, fmt.Errorf("replay consumer: %w", err)
	}
	byKey := map[string]*Change{}
	idle := 0
	for {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			return rep, fmt.Errorf("replay fetch: %w", err)
		}
		got := 0
		done := false
		for msg := range batch.Messages() {
			got++
			md, err := msg.Metadata()
			if err == nil && md.Sequence.Stream >= last {
				done = true
			}
			ev, err := events.Decode(msg.Data())
			if err != nil {
				rep.Undecoded++
				continue
			}
			rep.Read++
			cl := cat.Classify(ev.Reply.String(), catalog.Hints{Code: ev.Reply.Code, Enhanced: ev.Reply.Enhanced, RemoteHost: ev.MTA})
			a, b := live.Decide(&ev, cl), candidate.Decide(&ev, cl)
			if !policy.Differs(a, b) {
				continue
			}
			key := string(cl.Class) + "|" + string(a.Action) + "|" + string(b.Action)
			c := byKey[key]
			if c == nil {
				c = &Change{Class: string(cl.Class), Live: a.Action, Candidate: b.Action}
				byKey[key] = c
			}
			c.Events++
			if len(c.Examples) < maxExamples {
				c.Examples = append(c.Examples, ev.Recipient)
			}
		}
		if err := batch.Error(); err != nil && err != jetstream.ErrNoMessages && !strings.Contains(err.Error(), "timeout") {
			return rep, fmt.Errorf("replay fetch: %w", err)
		}
		if got == 0 {
			// Nothing buffered at the server right now; a few short waits tell a pause
			// from the end of what there is to read.
			if idle++; idle > 20 {
				break
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		idle = 0
		if done || ctx.Err() != nil {
			break
		}
	}
	for _, c := range byKey {
		rep.Changes = append(rep.Changes, *c)
	}
	sort.Slice(rep.Changes, func(i, j int) bool { return rep.Changes[i].Events > rep.Changes[j].Events })
	return rep, ctx.Err()
}

// Print writes the report as a table.
func (r Report) Print(w io.Writer, liveName, candidateName string) {
	changed := 0
	for _, c := range r.Changes {
		changed += c.Events
	}
	fmt.Fprintf(w, "Replayed %d events since %s: %d would be decided differently by %s than by %s.\n",
		r.Read, r.Since.UTC().Format(time.RFC3339), changed, candidateName, liveName)
	if r.Undecoded > 0 {
		fmt.Fprintf(w, "%d messages could not be decoded and were skipped.\n", r.Undecoded)
	}
	if len(r.Changes) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCLASS\tLIVE\tCANDIDATE\tEVENTS\tEXAMPLES")
	for _, c := range r.Changes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", c.Class, c.Live, c.Candidate, c.Events, strings.Join(c.Examples, ", "))
	}
	tw.Flush()
}
