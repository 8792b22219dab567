// Package replay runs a candidate policy over the events retained in the stream and
// reports where it would decide otherwise than the live policy. It reads through an
// ordered, ephemeral consumer and changes nothing: no ack, no Redis, no alert.
//
// "Otherwise" is the effect (policy.Differs), not the action's name: a candidate whose
// soft threshold is 1 instead of 3 suppresses at the first 4.2.2 where the live policy
// only counts. Soft counts are simulated per policy over the replayed events, in stream
// order and by the time each event was stored (its window, its threshold, a delivered
// event clearing them), starting from none at --since: Redis is not read, so a soft
// bounce from before --since is not counted.
package replay

import (
	"context"
	"fmt"
	"io"
	"slices"
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
	Live      policy.Action // the effect's kind (policy.Effect.Kind)
	Candidate policy.Action
	// LiveEffect and CandidateEffect describe the effects in full (policy.Effect.Summary):
	// two effects of one kind may differ in expiry, scope or soft window.
	LiveEffect, CandidateEffect string
	Events                      int
	Examples                    []string // distinct recipients, local part redacted
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
	liveSoft, candSoft := softCounts{}, softCounts{}
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
			at := ev.OccurredAt
			if md != nil && !md.Timestamp.IsZero() {
				at = md.Timestamp // when it was stored: about when the process role saw it
			}
			cl := cat.Classify(ev.Reply.String(), catalog.EventHints(&ev))
			a, b := live.Decide(&ev, cl), candidate.Decide(&ev, cl)
			ae := live.Effect(a, liveSoft.apply(live, &ev, a, at))
			be := candidate.Effect(b, candSoft.apply(candidate, &ev, b, at))
			if !policy.Differs(ae, be) {
				continue
			}
			la, ca := ae.Summary(), be.Summary()
			key := string(cl.Class) + "|" + la + "|" + ca
			c := byKey[key]
			if c == nil {
				c = &Change{Class: string(cl.Class), Live: ae.Kind(), Candidate: be.Kind(), LiveEffect: la, CandidateEffect: ca}
				byKey[key] = c
			}
			c.Events++
			// Redacted as the shadow report is, and each recipient listed once.
			if ex := events.RedactAddresses(ev.Recipient); len(c.Examples) < maxExamples && !slices.Contains(c.Examples, ex) {
				c.Examples = append(c.Examples, ex)
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
	sort.Slice(rep.Changes, func(i, j int) bool {
		if rep.Changes[i].Events != rep.Changes[j].Events {
			return rep.Changes[i].Events > rep.Changes[j].Events
		}
		a, b := rep.Changes[i], rep.Changes[j]
		return a.Class+a.LiveEffect+a.CandidateEffect < b.Class+b.LiveEffect+b.CandidateEffect
	})
	return rep, ctx.Err()
}

// softCounts simulates one policy's soft-bounce windows over the replayed events: per
// namespace and recipient, the times of the soft bounces it counted.
type softCounts map[string][]time.Time

// apply records the event's effect on the windows under p's decision d and returns the
// recipient's soft bounces within p's window after it (0 when d is not soft).
func (s softCounts) apply(p *policy.Policy, ev *events.Event, d policy.Decision, at time.Time) int {
	ns := ev.Tenant
	if d.Global {
		ns = ""
	}
	key := ns + "|" + ev.Recipient
	switch d.Action {
	case policy.ActionReset:
		delete(s, key)
	case policy.ActionSoft:
		from := at.Add(-p.SoftWindow)
		kept := s[key][:0]
		for _, t := range s[key] {
			if t.After(from) {
				kept = append(kept, t)
			}
		}
		kept = append(kept, at)
		s[key] = kept
		return len(kept)
	}
	return 0
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", c.Class, c.LiveEffect, c.CandidateEffect, c.Events, strings.Join(c.Examples, ", "))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nSoft counts start from none at the replay's start (Redis is not read); recipients are shown with the local part redacted.")
}
