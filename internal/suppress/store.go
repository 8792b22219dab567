package suppress

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Action is what an event does to its recipient's state.
type Action string

// The recipient actions the store applies.
const (
	ActionSuppress Action = "suppress" // write or refresh a suppression record
	ActionSoft     Action = "soft"     // count into the soft-bounce window; suppress at the threshold
	ActionReset    Action = "reset"    // delivered: clear the window, lift a soft-threshold suppression
	ActionRecord   Action = "record"   // history only
	// ActionHeld is history only, like ActionRecord, for a suppression the mass-bounce
	// guard held (package guard keeps it pending): the entry's action reads "held" and
	// its class stays the event's own.
	ActionHeld Action = "held"
)

// Change is one event's effect, as decided by the policy.
type Change struct {
	EventID string
	ESP     string
	Tenant  string
	Address string // normalised
	Action  Action

	Reason string // why a suppression is written (class name, "complaint", …)
	Class  string
	Rule   string
	Code   string
	Reply  string

	SuppressTTL   time.Duration // 0 = permanent
	SoftWindow    time.Duration
	SoftThreshold int
	SoftTTL       time.Duration // TTL of a suppression caused by the soft threshold

	// Protected marks a change whose Address is already in its Redis form (see addrKey).
	Protected bool `json:",omitempty"`

	// EventTenant is the tenant whose mail bounced, whatever the namespace (Tenant is ""
	// for a global suppression). The mass-bounce guard counts per tenant by it; "" falls
	// back on Tenant.
	EventTenant string `json:",omitempty"`
	// At, when set, is when the change was first seen (ms); 0 is now. A suppression the
	// mass-bounce guard held and released later keeps the time it was held.
	At int64 `json:",omitempty"`
	// Released marks the mass-bounce guard's release of a held suppression. The record
	// keeps the event's own ID (and At as first and last seen), while the recipient's
	// log records the release as its own entry, "<event ID>:released" with action
	// "released" — which is also what makes a repeated release change nothing.
	Released bool `json:",omitempty"`
	// ExpiresAt, when set, is the suppression's expiry (ms since the epoch) and takes
	// the place of SuppressTTL: an imported record keeps the expiry it was exported
	// with, to the millisecond.
	ExpiresAt int64 `json:",omitempty"`
}

// LogID is the change's entry in the recipient's log (its idempotency key).
func (c *Change) LogID() string {
	if c.Released {
		return c.EventID + ":released"
	}
	return c.EventID
}

// Outcome is what the store did with one Change.
type Outcome struct {
	Duplicate  bool      // the event had been applied before: nothing changed
	StateKnown bool      // false for a record-only event: Suppressed was not looked at
	Suppressed bool      // the recipient is suppressed after this event
	Permanent  bool      // … with no expiry
	ExpiresAt  time.Time // … until then (zero when permanent or not suppressed)
	SoftCount  int       // soft bounces in the current window
	Lifted     bool      // a soft-threshold suppression was lifted (delivered)
	Err        error     // this change failed; the event must be retried
}

// Options tune the store. Zero values take the defaults.
type Options struct {
	Prefix         string        // key prefix, "rebound:" by default
	IdempotencyTTL time.Duration // how long an event ID is remembered (default 7 days)
	HistoryLen     int           // decisions shown per recipient (default 20)
	HistoryTTL     time.Duration // history of a quiet recipient expires after (default 90 days)
	// LogKeep is how many recent events a recipient's log keeps (default 200): the
	// history shows the newest HistoryLen, and an event ID is recognised as a
	// redelivery while it is among them (and within the TTL).
	LogKeep int
	Now     func() time.Time
	// AddressHashKey, when set, makes every address a keyed hash in Redis
	// (REBOUND_ADDRESS_HASH_KEY). Changing it orphans the existing state.
	AddressHashKey []byte
	// PerEventScripts makes one recipient-script call per event even on a single Redis
	// or Sentinel, where one call per batch is the default; Cluster always runs per event.
	PerEventScripts bool
}

// Store is Rebound's Redis state. It is safe for concurrent use.
type Store struct {
	rdb   redis.UniversalClient
	keys  Keys
	opt   Options
	batch bool // one recipient-script call per batch (not on Cluster)
	// scripts are chosen by Load for the server's Lua libraries; until then the JSON
	// codec, which every server has.
	scripts *scriptSet
}

// scriptSet is the recipient scripts for one argument codec.
type scriptSet struct {
	codec             codec
	recipient, batchd *redis.Script
}

func newScriptSet(c codec) *scriptSet {
	return &scriptSet{codec: c, recipient: newRecipientScript(c), batchd: newRecipientBatchScript(c)}
}

var (
	jsonScripts    = newScriptSet(jsonCodec)
	msgpackScripts = newScriptSet(msgpackCodec)
)

// New returns a store on any go-redis topology (single, Sentinel, Cluster).
func New(rdb redis.UniversalClient, opt Options) *Store {
	if opt.Prefix == "" {
		opt.Prefix = "rebound:"
	}
	if opt.IdempotencyTTL <= 0 {
		opt.IdempotencyTTL = 7 * 24 * time.Hour
	}
	if opt.HistoryLen <= 0 {
		opt.HistoryLen = 20
	}
	if opt.HistoryTTL <= 0 {
		opt.HistoryTTL = 90 * 24 * time.Hour
	}
	if opt.LogKeep < opt.HistoryLen {
		opt.LogKeep = max(200, opt.HistoryLen)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	_, cluster := rdb.(*redis.ClusterClient)
	return &Store{rdb: rdb, keys: NewKeys(opt.Prefix), opt: opt, batch: !cluster && !opt.PerEventScripts, scripts: jsonScripts}
}

// Keys exposes the key builder (tests and tooling).
func (s *Store) Keys() Keys { return s.keys }

// Redis is the store's client, for packages that keep their own keys beside it under
// the same prefix (internal/stats).
func (s *Store) Redis() redis.UniversalClient { return s.rdb }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Load picks the scripts' argument codec for the server (MessagePack where Redis has
// cmsgpack) and loads the scripts, so the first batch runs EVALSHA without a NOSCRIPT
// retry. Call it before the store is shared between goroutines.
func (s *Store) Load(ctx context.Context) error {
	has, err := s.rdb.Eval(ctx, "if cmsgpack then return 1 end return 0", nil).Int()
	switch {
	case err == nil && has == 1:
		s.scripts = msgpackScripts
	case err != nil && !strings.Contains(err.Error(), "cmsgpack"):
		// A server without the library refuses the probe's mention of it: that means
		// JSON. Anything else is a real failure.
		return fmt.Errorf("probe Lua libraries: %w", err)
	}
	for name, sc := range map[string]*redis.Script{"recipient": s.scripts.recipient, "recipient batch": s.scripts.batchd} {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return fmt.Errorf("load %s script: %w", name, err)
		}
	}
	return nil
}

// Apply applies a batch of changes in one pipelined round trip (plus one more for the
// listing indexes when a soft bounce reached the threshold, a suppression was lifted
// or a duplicate needs its index repaired: see updateIndexes). The returned
// error is set when the round trip itself failed: then nothing may be acknowledged.
// Otherwise each Outcome carries its own Err.
func (s *Store) Apply(ctx context.Context, changes []Change) ([]Outcome, error) {
	out := make([]Outcome, len(changes))
	if len(changes) == 0 {
		return out, nil
	}
	for i := range changes {
		s.Protect(&changes[i])
	}
	now := s.opt.Now()
	nowMS := now.UnixMilli()
	rec, err := s.run(ctx, changes, nowMS, true, s.batch)
	if err != nil && isNoScript(err) {
		// Redis restarted or failed over and lost its script cache. The scripts are
		// idempotent, so running the whole batch again with EVAL is safe.
		rec, err = s.run(ctx, changes, nowMS, false, s.batch)
	}
	if err != nil && s.batch && isCmdError(err) {
		// One event's script failed and took the batch call with it (the events before
		// it were applied and now show as duplicates): run per event to isolate it.
		rec, err = s.run(ctx, changes, nowMS, false, false)
	}
	if err != nil && !isCmdError(err) {
		return nil, fmt.Errorf("apply batch of %d: %w", len(changes), err)
	}
	for i := range changes {
		if e := rec(i, &out[i]); e != nil {
			out[i].Err = fmt.Errorf("event %s: %w", changes[i].EventID, e)
		}
	}
	if err := s.updateIndexes(ctx, changes, out, nowMS); err != nil {
		return nil, err
	}
	return out, nil
}

// recipientResult reads change i's recipient outcome after the round trip.
type recipientResult func(i int, o *Outcome) error

// run sends one batch in one round trip. With batch, the recipient script runs once
// for every event (single Redis or Sentinel); otherwise once per event (Cluster).
func (s *Store) run(ctx context.Context, changes []Change, nowMS int64, sha, batch bool) (recipientResult, error) {
	sc := s.scripts
	pipe := s.rdb.Pipeline()
	eval := func(sc *redis.Script, keys []string, args ...any) *redis.Cmd {
		if sha {
			return sc.EvalSha(ctx, pipe, keys, args...)
		}
		return sc.Eval(ctx, pipe, keys, args...)
	}
	// The log serves both idempotency and history: it lives as long as the longer of the two.
	logTTL := max(s.opt.IdempotencyTTL, s.opt.HistoryTTL).Milliseconds()
	var (
		rec       []*redis.Cmd
		batchKeys []string
		batchArgs []any
	)
	if batch {
		batchKeys, batchArgs = make([]string, 0, 4*len(changes)), make([]any, 0, len(changes))
	} else {
		rec = make([]*redis.Cmd, len(changes))
	}
	// One buffer for the batch's packed arguments (each event's value is a capped slice
	// of it) and one for the history entry being written: no per-event allocation but
	// the keys.
	var (
		arena []byte
		hist  []byte
	)
	for i := range changes {
		c := &changes[i]
		entry := historyEntry{
			At: nowMS, Seq: i, EventID: c.LogID(), ESP: c.ESP, Action: string(c.Action),
			Class: c.Class, Rule: c.Rule, Code: c.Code, Reply: c.Reply,
		}
		if c.Released {
			entry.Action = "released"
		}
		hist = entry.appendJSON(hist[:0])
		logKey := s.keys.Log(c.Tenant, c.Address)
		supKey, softKey := s.keys.Suppression(c.Tenant, c.Address), s.keys.SoftWindow(c.Tenant, c.Address)
		action := c.Action
		if action == ActionHeld {
			action = ActionRecord // to the script, a held suppression is history only
		}
		if arena == nil {
			arena = make([]byte, 0, len(changes)*(320+2*len(c.Reply)))
		}
		p := sc.codec.begin(arena)
		p.str(c.LogID())
		p.str(string(action))
		p.int(nowMS)
		p.int(logTTL)
		p.bytes(hist)
		p.int(int64(s.opt.LogKeep))
		p.int(c.At)
		if action != ActionRecord {
			p.int(suppressTTL(c, nowMS))
			p.int(c.SoftWindow.Milliseconds())
			p.int(int64(c.SoftThreshold))
			p.int(c.SoftTTL.Milliseconds())
			for _, v := range [...]string{c.Reason, c.Class, c.Rule, c.Code, c.Reply, c.ESP, c.Address, c.Tenant} {
				p.str(v)
			}
			if c.Released {
				p.str(c.EventID)
			}
		}
		var packed []byte
		arena, packed = p.end()
		if batch {
			// The batch script lists a suppress event in the indexes itself.
			batchKeys = append(batchKeys, logKey, supKey, softKey)
			if c.Action == ActionSuppress {
				batchKeys = append(batchKeys, s.keys.SuppressionIndex(c.Tenant), s.keys.SuppressionsByAddress(c.Tenant))
			}
			batchArgs = append(batchArgs, packed)
			continue
		}
		rec[i] = eval(sc.recipient, []string{logKey, supKey, softKey}, packed)
		if c.Action == ActionSuppress {
			// Listed now, in the same round trip; GT keeps a later, longer expiry (or +inf
			// for permanent) when the script keeps an existing record.
			pipe.ZAddGT(ctx, s.keys.SuppressionIndex(c.Tenant), redis.Z{Score: indexScore(nowMS, suppressTTL(c, nowMS)), Member: c.Address})
			// After the expiry index, never before: the listing's prune (pruneScript)
			// drops an address from both only when the expiry index has no live entry.
			pipe.ZAdd(ctx, s.keys.SuppressionsByAddress(c.Tenant), redis.Z{Member: c.Address})
		}
	}
	var batchCmd *redis.Cmd
	if batch {
		batchCmd = eval(sc.batchd, batchKeys, batchArgs...)
	}
	_, err := pipe.Exec(ctx)
	if !batch {
		return func(i int, o *Outcome) error { return readRecipient(rec[i], o) }, err
	}
	all, _ := batchCmd.Slice()
	return func(i int, o *Outcome) error {
		if err := batchCmd.Err(); err != nil {
			return err
		}
		if len(all) != 5*len(changes) {
			return fmt.Errorf("batch script returned %d values for %d events, want 5 each", len(all), len(changes))
		}
		return readInts(all[5*i:5*i+5], 5, o, setRecipient)
	}, err
}

// updateIndexes brings the listing indexes in step with what the scripts did that
// the first round trip could not know: a soft bounce that reached the threshold, a
// lifted suppression, a duplicate whose earlier run crashed before its index update. Most batches need none of it and skip the
// second round trip.
func (s *Store) updateIndexes(ctx context.Context, changes []Change, out []Outcome, nowMS int64) error {
	pipe := s.rdb.Pipeline()
	n := 0
	for i := range changes {
		o, c := &out[i], &changes[i]
		if o.Err != nil {
			continue
		}
		switch {
		case o.Lifted:
			pipe.ZRem(ctx, s.keys.SuppressionIndex(c.Tenant), c.Address)
			pipe.ZRem(ctx, s.keys.SuppressionsByAddress(c.Tenant), c.Address)
			n++
		case o.Suppressed && (c.Action == ActionSoft || o.Duplicate):
			score := math.Inf(1)
			if !o.Permanent {
				score = float64(o.ExpiresAt.UnixMilli())
			}
			pipe.ZAddGT(ctx, s.keys.SuppressionIndex(c.Tenant), redis.Z{Score: score, Member: c.Address})
			pipe.ZAdd(ctx, s.keys.SuppressionsByAddress(c.Tenant), redis.Z{Member: c.Address})
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("update indexes: %w", err)
	}
	return nil
}

// indexScore is a suppression's expiry in ms, +inf when permanent (ttlMS 0).
func indexScore(nowMS, ttlMS int64) float64 {
	if ttlMS <= 0 {
		return math.Inf(1)
	}
	return float64(nowMS + ttlMS)
}

// suppressTTL is the change's suppression TTL in ms (0 = permanent): ExpiresAt less
// now when set (at least 1 ms, so a record due now is not made permanent), else SuppressTTL.
func suppressTTL(c *Change, nowMS int64) int64 {
	if c.ExpiresAt > 0 {
		return max(c.ExpiresAt-nowMS, 1)
	}
	return c.SuppressTTL.Milliseconds()
}

func readRecipient(cmd *redis.Cmd, o *Outcome) error {
	raw, err := cmd.Slice()
	if err != nil {
		return err
	}
	return readInts(raw, 5, o, setRecipient)
}

// readInts checks a script result of n integers and hands them to set.
func readInts(raw []any, n int, o *Outcome, set func([]int64, *Outcome)) error {
	if len(raw) != n {
		return fmt.Errorf("script returned %d values, want %d", len(raw), n)
	}
	v := make([]int64, n)
	for j, x := range raw {
		i, ok := x.(int64)
		if !ok {
			return fmt.Errorf("script value %d is not a number", j)
		}
		v[j] = i
	}
	set(v, o)
	return nil
}

func setRecipient(v []int64, o *Outcome) {
	o.Duplicate = v[0] == 1
	o.Suppressed = v[1] == 1
	o.StateKnown = v[1] >= 0
	o.SoftCount = max(int(v[2]), 0)
	switch {
	case v[3] == 0:
		o.Permanent = o.Suppressed
	case v[3] > 0:
		o.ExpiresAt = time.UnixMilli(v[3]).UTC()
	}
	o.Lifted = v[4] == 1
}

func isNoScript(err error) bool { return err != nil && strings.Contains(err.Error(), "NOSCRIPT") }

// isCmdError reports whether err is a Redis reply error (one command failed) rather
// than a connection problem (the whole round trip failed).
func isCmdError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, context.DeadlineExceeded)
}

func ms(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}
