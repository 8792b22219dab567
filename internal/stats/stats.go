// Package stats keeps the hourly aggregates the operator console's overview shows:
// events per hour by policy action and by class, and hard bounces per receiving domain.
// The process role adds up its applied events in a Tally and writes it at most once a
// second (Tally.Write, one pipeline); the console reads the last 7 days (Read) without
// scanning keys.
//
// Size is bounded: one hash and one sorted set per hour, each expiring after 8 days;
// the hash has one field per action and class seen that hour, the sorted set keeps the
// hour's top maxDomainsPerHour domains (a domain pushed out loses that hour's count:
// the top of the list is what the overview shows).
package stats

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/suppress"
)

// TTL is how long an hour's aggregates are kept: the overview's 7 days and a margin.
const TTL = 8 * 24 * time.Hour

// maxDomainsPerHour bounds an hour's domain set.
const maxDomainsPerHour = 1000

// Decision is what the aggregates keep of one applied event.
type Decision struct {
	Action string // the policy's action ("suppress", "soft", …), or "held" for a held suppression
	Class  string
	// HardBounceDomain is the receiving domain of a bounce classified as a permanent
	// recipient fault, "" for anything else.
	HardBounceDomain string
}

// Of is the Decision of one event as the process role decided it.
func Of(ev *events.Event, cl catalog.Classification, action string, held bool) Decision {
	d := Decision{Action: action, Class: string(cl.Class)}
	if held {
		d.Action = "held"
	}
	if ev.Type == events.TypeBounce && cl.Suppressible() {
		d.HardBounceDomain = events.Domain(ev.Recipient)
	}
	return d
}

// Keys of one hour, "2026113009" in UTC. Both share the hour's hash tag, so they live in
// one Cluster slot; every key carries the store's prefix.
func hourKey(prefix string, h time.Time) string {
	return prefix + "stats:{" + h.UTC().Format("2006010215") + "}"
}

func domainKey(prefix string, h time.Time) string { return hourKey(prefix, h) + ":hard" }

// Field names in an hour's hash.
const (
	fieldTotal  = "n"
	actionField = "a:"
	classField  = "c:"
)

// Write adds a batch's applied events to the hour of at, in one pipeline (one round
// trip for the batch, whatever its size).
func Write(ctx context.Context, store *suppress.Store, at time.Time, ds []Decision) error {
	var t Tally
	t.Add(at, ds)
	return t.Write(ctx, store)
}

// Tally adds up applied events by hour between two writes, so that the process role
// writes its statistics once a second rather than once a batch. The zero value is an
// empty tally; it is not safe for concurrent use.
type Tally struct {
	hours map[time.Time]*hourTally
}

// hourTally is one hour's counts: its hash's fields and its domains' hard bounces.
type hourTally struct {
	fields, domains map[string]int64
}

// Add counts ds into the hour of at.
func (t *Tally) Add(at time.Time, ds []Decision) {
	if len(ds) == 0 {
		return
	}
	h := at.UTC().Truncate(time.Hour)
	if t.hours == nil {
		t.hours = map[time.Time]*hourTally{}
	}
	ht := t.hours[h]
	if ht == nil {
		ht = &hourTally{fields: map[string]int64{}, domains: map[string]int64{}}
		t.hours[h] = ht
	}
	ht.fields[fieldTotal] += int64(len(ds))
	for _, d := range ds {
		ht.fields[actionField+d.Action]++
		if d.Class != "" {
			ht.fields[classField+d.Class]++
		}
		if d.HardBounceDomain != "" {
			ht.domains[d.HardBounceDomain]++
		}
	}
}

// Empty says whether nothing was added.
func (t *Tally) Empty() bool { return len(t.hours) == 0 }

// Write adds the tally to its hours in Redis, in one pipeline.
func (t *Tally) Write(ctx context.Context, store *suppress.Store) error {
	if t.Empty() {
		return nil
	}
	prefix := store.Keys().Prefix()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pipe := store.Redis().Pipeline()
	for h, ht := range t.hours {
		hk, dk := hourKey(prefix, h), domainKey(prefix, h)
		for f, n := range ht.fields {
			pipe.HIncrBy(ctx, hk, f, n)
		}
		pipe.Expire(ctx, hk, TTL)
		if len(ht.domains) > 0 {
			for d, n := range ht.domains {
				pipe.ZIncrBy(ctx, dk, float64(n), d)
			}
			pipe.ZRemRangeByRank(ctx, dk, 0, -maxDomainsPerHour-1)
			pipe.Expire(ctx, dk, TTL)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("hourly statistics: %w", err)
	}
	return nil
}

// Hour is one hour's counts.
type Hour struct {
	Start    time.Time
	Total    int64
	ByAction map[string]int64
	ByClass  map[string]int64
}

// DomainCount is a receiving domain's hard bounces over the period read.
type DomainCount struct {
	Domain string
	Count  int64
}

// Week is what Read returns: the hours oldest first, and the domains with the most
// hard bounces, most first.
type Week struct {
	Hours   []Hour
	Domains []DomainCount
}

// Read returns the last `hours` hours up to the one holding now (in one pipeline: a
// hash and the top domains of each hour) and the topDomains domains with the most hard
// bounces over them.
func Read(ctx context.Context, store *suppress.Store, now time.Time, hours, topDomains int) (Week, error) {
	prefix := store.Keys().Prefix()
	last := now.UTC().Truncate(time.Hour)
	pipe := store.Redis().Pipeline()
	hs := make([]*redis.MapStringStringCmd, hours)
	ds := make([]*redis.ZSliceCmd, hours)
	starts := make([]time.Time, hours)
	for i := range hours {
		h := last.Add(-time.Duration(hours-1-i) * time.Hour)
		starts[i] = h
		hs[i] = pipe.HGetAll(ctx, hourKey(prefix, h))
		ds[i] = pipe.ZRevRangeWithScores(ctx, domainKey(prefix, h), 0, int64(max(topDomains*10, 100))-1)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return Week{}, fmt.Errorf("read hourly statistics: %w", err)
	}
	w := Week{Hours: make([]Hour, hours)}
	sum := map[string]int64{}
	for i := range hours {
		h := Hour{Start: starts[i], ByAction: map[string]int64{}, ByClass: map[string]int64{}}
		for f, v := range hs[i].Val() {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			switch {
			case f == fieldTotal:
				h.Total = n
			case strings.HasPrefix(f, actionField):
				h.ByAction[f[len(actionField):]] = n
			case strings.HasPrefix(f, classField):
				h.ByClass[f[len(classField):]] = n
			}
		}
		w.Hours[i] = h
		for _, z := range ds[i].Val() {
			d, _ := z.Member.(string)
			sum[d] += int64(z.Score)
		}
	}
	for d, n := range sum {
		w.Domains = append(w.Domains, DomainCount{Domain: d, Count: n})
	}
	slices.SortFunc(w.Domains, func(a, b DomainCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Domain, b.Domain))
	})
	if len(w.Domains) > topDomains {
		w.Domains = w.Domains[:topDomains]
	}
	return w, nil
}
