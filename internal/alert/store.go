package alert

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// StoreOptions tune the incident store. Zero values take the defaults.
type StoreOptions struct {
	Prefix string // key prefix, "rebound:" by default
	// Retention is how long an incident is kept after its last event (default 7 days);
	// a resolved incident older than that is forgotten.
	Retention time.Duration
	// SeenTTL is how long an event ID is remembered for counting it once (default 24h,
	// longer than any redelivery: MaxDeliver with back-off ends within the hour).
	SeenTTL time.Duration
	// RecipientKey keys the hash that feeds the distinct-recipient count, so Redis never
	// holds an address here (REBOUND_ADDRESS_HASH_KEY when set, a fixed key otherwise).
	RecipientKey []byte
	Now          func() time.Time
	// PerIncidentScripts makes one observe-script call per incident, where one call per
	// batch is the default on every topology (all incident keys share the hash tag {a},
	// so on Cluster too one script may touch them all). Tests compare the two modes.
	PerIncidentScripts bool
}

// Store is the incidents' Redis state. It is safe for concurrent use.
type Store struct {
	rdb   redis.UniversalClient
	keys  keys
	opt   StoreOptions
	batch bool // one observe-script call per batch
}

// NewStore returns the incident store on any go-redis topology.
func NewStore(rdb redis.UniversalClient, opt StoreOptions) *Store {
	if opt.Prefix == "" {
		opt.Prefix = "rebound:"
	}
	if opt.Retention <= 0 {
		opt.Retention = 7 * 24 * time.Hour
	}
	if opt.SeenTTL <= 0 {
		opt.SeenTTL = 24 * time.Hour
	}
	if len(opt.RecipientKey) == 0 {
		opt.RecipientKey = []byte("rebound incident recipients")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Store{rdb: rdb, keys: newKeys(opt.Prefix), opt: opt, batch: !opt.PerIncidentScripts}
}

// Load loads the scripts so the first calls run EVALSHA without a NOSCRIPT retry.
func (s *Store) Load(ctx context.Context) error {
	for name, sc := range map[string]*redis.Script{"observe": observeScript, "observe batch": observeBatchScript, "transition": transitionScript, "claim": claimScript, "finish": finishScript, "settle": settleScript} {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return fmt.Errorf("load incident %s script: %w", name, err)
		}
	}
	return nil
}

// run runs a script, loading it again when Redis lost its script cache (a restart or
// failover): every script here is safe to run twice.
func (s *Store) run(ctx context.Context, sc *redis.Script, keys []string, args ...any) *redis.Cmd {
	return sc.Run(ctx, s.rdb, keys, args...)
}

type observeArgs struct {
	Now       string     `json:"now"`
	SeenTTL   string     `json:"seen_ttl"`
	Retention string     `json:"retention"`
	FP        string     `json:"fp"`
	Tenant    string     `json:"tenant"`
	Class     string     `json:"class"`
	Severity  string     `json:"severity"`
	SD        string     `json:"sd"`
	SIP       string     `json:"sip"`
	RD        string     `json:"rd"`
	Code      string     `json:"code"`
	Rule      string     `json:"rule"`
	ESP       string     `json:"esp"`
	Fix       string     `json:"fix"`
	Replies   []string   `json:"replies"`
	Events    [][]string `json:"ev"`
}

// Observe counts a batch's observations into their incidents in one script call for
// the batch (one per incident with PerIncidentScripts), in one round trip. The returned
// error is set when the round trip or the batch's call as a whole failed (nothing may
// be acknowledged); otherwise each Outcome carries its own: an incident whose
// observation failed fails its events only.
func (s *Store) Observe(ctx context.Context, obs []Observation) ([]Outcome, error) {
	out := make([]Outcome, len(obs))
	if len(obs) == 0 {
		return out, nil
	}
	now := strconv.FormatInt(s.opt.Now().UnixMilli(), 10)
	byFP := map[string][]int{}
	var order []string
	for i := range obs {
		fp := obs[i].Fingerprint()
		out[i].Fingerprint, out[i].Class = fp, obs[i].Class
		if _, ok := byFP[fp]; !ok {
			order = append(order, fp)
		}
		byFP[fp] = append(byFP[fp], i)
	}
	seenTTL, retention := strconv.FormatInt(s.opt.SeenTTL.Milliseconds(), 10), strconv.FormatInt(s.opt.Retention.Milliseconds(), 10)
	args := make([]observeArgs, len(order))
	for k, fp := range order {
		idx := byFP[fp]
		last := &obs[idx[len(idx)-1]]
		fix, _ := json.Marshal(orEmpty(last.Fix))
		a := observeArgs{
			Now: now, SeenTTL: seenTTL, Retention: retention,
			FP: fp, Tenant: last.Tenant, Class: last.Class, Severity: last.Severity, SD: last.SendingDomain, SIP: last.SendingIP,
			RD: last.ReceivingDomain, Code: last.Code, Rule: last.Rule, ESP: last.ESP, Fix: string(fix),
			Replies: []string{}, Events: make([][]string, 0, len(idx)),
		}
		for _, i := range idx {
			o := &obs[i]
			if o.Reply != "" && len(a.Replies) < 5 && !slices.Contains(a.Replies, o.Reply) {
				a.Replies = append(a.Replies, o.Reply)
			}
			a.Events = append(a.Events, []string{o.EventID, s.recipientHash(o.Recipient), recipientDomain(o.Recipient)})
		}
		args[k] = a
	}
	var (
		results [][]int64
		errs    []error
		err     error
	)
	if s.batch {
		// One incident's failed observation fails its events only: the script isolates
		// it. Running the incidents again one by one would show those the call counted
		// as duplicates, and lose their opening.
		results, errs, err = s.observeBatch(ctx, order, args)
	} else {
		results, errs, err = s.observeEach(ctx, order, args)
	}
	if err != nil {
		return nil, err
	}
	for k, fp := range order {
		idx := byFP[fp]
		v, err := results[k], errs[k]
		if err == nil && len(v) != 4+len(idx) {
			err = fmt.Errorf("observe script returned %d values for %d events", len(v), len(idx))
		}
		for j, i := range idx {
			if err != nil {
				out[i].Err = fmt.Errorf("incident %s: %w", fp, err)
				continue
			}
			out[i].Count = v[2]
			out[i].Duplicate = v[4+j] >= 1
			out[i].OpenedEarlier = v[4+j] == 2
			out[i].ReopenedEarlier = v[4+j] == 3
			// The batch's first fresh event is the one that opened it.
			if v[0] > 0 && !out[i].Duplicate && !openedBefore(out, idx[:j]) {
				out[i].Opened = v[0] == 1
				out[i].Reopened = v[0] == 2
			}
		}
	}
	return out, nil
}

// observeEach runs the observe script once per incident, in one pipeline. It returns
// each incident's result or error; the error is set when the round trip failed, or
// with a Redis error reply (one call failed) that the per-incident errors detail.
func (s *Store) observeEach(ctx context.Context, order []string, args []observeArgs) ([][]int64, []error, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(order))
	for k, fp := range order {
		b, err := json.Marshal(&args[k])
		if err != nil {
			return nil, nil, fmt.Errorf("encode incident %s: %w", fp, err)
		}
		cmds[k] = observeScript.EvalSha(ctx, pipe, []string{
			s.keys.incident(fp), s.keys.seen(fp), s.keys.recipients(fp), s.keys.domains(fp),
			s.keys.index(), s.keys.active(), s.keys.due(),
		}, string(b))
	}
	_, err := pipe.Exec(ctx)
	if err != nil && isNoScript(err) {
		// Redis restarted or failed over and lost its script cache; the script counts
		// each event once, so sending the batch again with EVAL is safe. Only the calls
		// that found no script go again: the cache can go between two commands of the
		// pipeline, and a call that already ran would report its opening as duplicates.
		pipe = s.rdb.Pipeline()
		for k, c := range cmds {
			if !isNoScript(c.Err()) {
				continue
			}
			args := c.Args()
			keys := make([]string, 7)
			for j := range keys {
				keys[j], _ = args[3+j].(string)
			}
			cmds[k] = observeScript.Eval(ctx, pipe, keys, args[10:]...)
		}
		_, err = pipe.Exec(ctx)
	}
	if err != nil && !isCmdError(err) {
		return nil, nil, fmt.Errorf("incidents: %w", err)
	}
	results, errs := make([][]int64, len(order)), make([]error, len(order))
	for k := range cmds {
		results[k], errs[k] = cmds[k].Int64Slice()
	}
	return results, errs, nil
}

// observeBatch runs the observe script for every incident of the batch in one call of
// observeBatchScript. It returns each incident's result or error (its observation
// failed in the script, the others' did not); the error is set when the round trip
// failed, or with a Redis error reply for the call as a whole (nothing is known of
// any incident then: the batch is retried whole).
func (s *Store) observeBatch(ctx context.Context, order []string, args []observeArgs) ([][]int64, []error, error) {
	keys := make([]string, 0, 3+4*len(order))
	keys = append(keys, s.keys.index(), s.keys.active(), s.keys.due())
	for _, fp := range order {
		keys = append(keys, s.keys.incident(fp), s.keys.seen(fp), s.keys.recipients(fp), s.keys.domains(fp))
	}
	b, err := json.Marshal(args)
	if err != nil {
		return nil, nil, fmt.Errorf("encode incidents: %w", err)
	}
	cmd := observeBatchScript.EvalSha(ctx, s.rdb, keys, string(b))
	if isNoScript(cmd.Err()) {
		// Redis lost its script cache: nothing ran, so EVAL runs it all.
		cmd = observeBatchScript.Eval(ctx, s.rdb, keys, string(b))
	}
	all, err := cmd.Slice()
	if err != nil {
		return nil, nil, fmt.Errorf("incidents: %w", err)
	}
	if len(all) != len(order) {
		return nil, nil, fmt.Errorf("incidents: batch script returned %d results for %d incidents", len(all), len(order))
	}
	results, errs := make([][]int64, len(order)), make([]error, len(order))
	for k := range all {
		if msg, ok := all[k].(string); ok {
			// The script's text of the error that failed this incident's observation.
			errs[k] = scriptError(msg)
			continue
		}
		raw, _ := all[k].([]any)
		v := make([]int64, len(raw))
		for j, x := range raw {
			n, ok := x.(int64)
			if !ok {
				errs[k] = fmt.Errorf("script value %d is not a number", j)
				break
			}
			v[j] = n
		}
		results[k] = v
	}
	return results, errs, nil
}

// scriptError is a Redis error reply that failed one incident's observation inside the
// batch script. The script returns it as a string rather than as an error reply in
// its array: go-redis stops reading an array at a nested error it types (OOM,
// READONLY, …). It is a redis.Error, as the same failure is in a per-incident call.
type scriptError string

func (e scriptError) Error() string { return string(e) }

func (scriptError) RedisError() {}

func openedBefore(out []Outcome, idx []int) bool {
	for _, i := range idx {
		if out[i].Opened || out[i].Reopened {
			return true
		}
	}
	return false
}

// recipientHash is the keyed hash that stands for a recipient in the distinct count.
func (s *Store) recipientHash(addr string) string {
	if addr == "" {
		return ""
	}
	m := hmac.New(sha256.New, s.opt.RecipientKey)
	m.Write([]byte(addr))
	return hex.EncodeToString(m.Sum(nil)[:12])
}

func recipientDomain(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return ""
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ErrNotFound is returned for an incident that does not exist (or expired).
var ErrNotFound = errors.New("no such incident")

// Resolve resolves an incident by hand. It reports whether it changed anything (false
// when it was already resolved).
func (s *Store) Resolve(ctx context.Context, id, by string) (bool, error) {
	return s.transition(ctx, "resolve", id, by, 0)
}

// Ack acknowledges an incident: reminders stop and receivers that know
// acknowledgements (PagerDuty, Opsgenie, chat) are told. False when already acked or resolved.
func (s *Store) Ack(ctx context.Context, id, by string) (bool, error) {
	return s.transition(ctx, "ack", id, by, 0)
}

// ResolveIfQuiet resolves the incident when no event came for quiet.
func (s *Store) ResolveIfQuiet(ctx context.Context, id string, quiet time.Duration) (bool, error) {
	return s.transition(ctx, "resolve", id, "quiet for "+quiet.String(), max(quiet.Milliseconds(), 1))
}

// Remind adds a reminder when the incident is open, not acknowledged, and every has
// passed since it opened or was last reminded.
func (s *Store) Remind(ctx context.Context, id string, every time.Duration) (bool, error) {
	if every <= 0 {
		return false, nil
	}
	return s.transition(ctx, "remind", id, "", every.Milliseconds())
}

func (s *Store) transition(ctx context.Context, op, id, by string, param int64) (bool, error) {
	if !validID(id) {
		return false, ErrNotFound
	}
	v, err := s.run(ctx, transitionScript, []string{s.keys.incident(id), s.keys.active(), s.keys.due()},
		op, s.opt.Now().UnixMilli(), id, by, param).Int64Slice()
	if err != nil {
		return false, fmt.Errorf("%s incident %s: %w", op, id, err)
	}
	if v[0] == -1 {
		s.rdb.ZRem(ctx, s.keys.active(), id)
		return false, ErrNotFound
	}
	return v[0] == 1, nil
}

// validID accepts what Fingerprint makes: lower-case hex. It keeps anything else out
// of key names.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Filter selects incidents in List. Empty fields match everything; State "open" means
// every state but resolved.
type Filter struct {
	State  string
	Class  string
	Tenant string
	Limit  int // default 100
	// Detail reads each incident whole, as Get does (each receiver's delivery too), in
	// the same round trips.
	Detail bool
}

// List returns the retained incidents that match f, most recently seen first.
func (s *Store) List(ctx context.Context, f Filter) ([]Incident, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	oldest := s.opt.Now().Add(-s.opt.Retention).UnixMilli()
	s.rdb.ZRemRangeByScore(ctx, s.keys.index(), "-inf", "("+strconv.FormatInt(oldest, 10))
	ids, err := s.rdb.ZRevRange(ctx, s.keys.index(), 0, 4999).Result()
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	out := []Incident{}
	for start := 0; start < len(ids) && len(out) < f.Limit; start += 200 {
		incs, err := s.read(ctx, ids[start:min(start+200, len(ids))], f.Detail)
		if err != nil {
			return nil, err
		}
		for _, inc := range incs {
			if f.matches(inc) && len(out) < f.Limit {
				out = append(out, inc)
			}
		}
	}
	return out, nil
}

func (f Filter) matches(inc Incident) bool {
	switch {
	case f.State == "open" && !inc.State.Firing():
		return false
	case f.State != "" && f.State != "open" && string(inc.State) != f.State:
		return false
	case f.Class != "" && inc.Class != f.Class:
		return false
	case f.Tenant != "" && inc.Tenant != f.Tenant:
		return false
	}
	return true
}

// Get returns one incident with its transitions and deliveries.
func (s *Store) Get(ctx context.Context, id string) (Incident, error) {
	if !validID(id) {
		return Incident{}, ErrNotFound
	}
	incs, err := s.read(ctx, []string{id}, true)
	if err != nil {
		return Incident{}, err
	}
	if len(incs) == 0 {
		return Incident{}, ErrNotFound
	}
	return incs[0], nil
}

// read loads incidents in one round trip; expired ones are left out (and leave the index).
func (s *Store) read(ctx context.Context, ids []string, detail bool) ([]Incident, error) {
	pipe := s.rdb.Pipeline()
	type cmds struct {
		h   *redis.MapStringStringCmd
		pf  *redis.IntCmd
		dom *redis.StringSliceCmd
	}
	all := make([]cmds, len(ids))
	for i, id := range ids {
		all[i] = cmds{
			h:   pipe.HGetAll(ctx, s.keys.incident(id)),
			pf:  pipe.PFCount(ctx, s.keys.recipients(id)),
			dom: pipe.ZRevRange(ctx, s.keys.domains(id), 0, 9),
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	out := make([]Incident, 0, len(ids))
	var gone []any
	for i, c := range all {
		m := c.h.Val()
		if m["state"] == "" {
			gone = append(gone, ids[i])
			continue
		}
		inc := fromHash(m, detail)
		inc.Recipients = c.pf.Val()
		inc.Domains = orEmpty(c.dom.Val())
		out = append(out, inc)
	}
	if len(gone) > 0 {
		s.rdb.ZRem(ctx, s.keys.index(), gone...)
		s.rdb.ZRem(ctx, s.keys.active(), gone...)
	}
	return out, nil
}

func fromHash(m map[string]string, detail bool) Incident {
	n := func(k string) int64 { v, _ := strconv.ParseInt(m[k], 10, 64); return v }
	inc := Incident{
		ID: m["fingerprint"], State: State(m["state"]), Class: m["class"], Severity: m["severity"], Tenant: m["tenant"],
		SendingDomain: m["sending_domain"], SendingIP: m["sending_ip"], ReceivingDomain: m["receiving_domain"],
		Code: m["code"], Rule: m["rule"], ESP: m["esp"], Messages: n("count"), TotalMessages: n("total"),
		FirstSeen: msTime(m["first_seen"]), LastSeen: msTime(m["last_seen"]), CreatedAt: msTime(m["created_at"]),
		Reopened: n("reopened"), ResolvedAt: msTime(m["resolved_at"]), ResolvedBy: m["resolved_by"],
		AckedAt: msTime(m["acked_at"]), AckedBy: m["acked_by"], Seq: n("seq"),
		Examples: []string{}, Fix: []string{}, Transitions: []Transition{}, Deliveries: []Delivery{},
	}
	if ex := m["examples"]; ex != "" && ex != "{}" {
		_ = json.Unmarshal([]byte(ex), &inc.Examples)
	}
	if fx := m["fix"]; fx != "" && fx != "{}" {
		_ = json.Unmarshal([]byte(fx), &inc.Fix)
	}
	if !detail {
		return inc
	}
	dels := map[string]*Delivery{}
	get := func(r string) *Delivery {
		if d, ok := dels[r]; ok {
			return d
		}
		d := &Delivery{Receiver: r}
		dels[r] = d
		return d
	}
	for k, v := range m {
		field, r, ok := strings.Cut(k, ":")
		if !ok {
			continue
		}
		switch field {
		case "t":
			seq, _ := strconv.ParseInt(r, 10, 64)
			inc.Transitions = append(inc.Transitions, parseTransition(seq, v))
		case "sent":
			get(r).Sent, _ = strconv.ParseInt(v, 10, 64)
		case "tries":
			get(r).Tries, _ = strconv.ParseInt(v, 10, 64)
		case "next":
			get(r).NextTry = msTime(v)
		case "ok":
			get(r).LastOK = msTime(v)
		case "err":
			get(r).LastError = v
		}
	}
	slices.SortFunc(inc.Transitions, func(a, b Transition) int { return int(a.Seq - b.Seq) })
	for _, d := range dels {
		inc.Deliveries = append(inc.Deliveries, *d)
	}
	slices.SortFunc(inc.Deliveries, func(a, b Delivery) int { return strings.Compare(a.Receiver, b.Receiver) })
	return inc
}

// parseTransition reads an outbox entry "kind|at|by".
func parseTransition(seq int64, v string) Transition {
	kind, rest, _ := strings.Cut(v, "|")
	at, by, _ := strings.Cut(rest, "|")
	return Transition{Seq: seq, Kind: kind, At: msTime(at), By: by}
}

func msTime(v string) time.Time {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// Active returns the IDs of incidents that are not resolved, with their last-seen time.
func (s *Store) Active(ctx context.Context, limit int) ([]redis.Z, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, s.keys.active(), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("list active incidents: %w", err)
	}
	return zs, nil
}

// Classes returns the class of each incident in one round trip ("" when gone).
func (s *Store) Classes(ctx context.Context, ids []string) ([]string, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, s.keys.incident(id), "class")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read incident classes: %w", err)
	}
	out := make([]string, len(ids))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// Due returns up to n incidents with a notification due now.
func (s *Store) Due(ctx context.Context, n int) ([]string, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.keys.due(), &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(s.opt.Now().UnixMilli(), 10), Count: int64(n)}).Result()
	if err != nil {
		return nil, fmt.Errorf("list due incidents: %w", err)
	}
	return ids, nil
}

// Claim is a transition one receiver is to be sent, held under a lease.
type Claim struct {
	ID         string
	Receiver   string
	Transition Transition
	Tries      int64
	token      string
}

// claimResult says why Claim returned no claim.
type claimResult int

const (
	claimed claimResult = iota
	upToDate
	leased
	later
)

// claim takes receiver's next transition of incident id for lease.
func (s *Store) claim(ctx context.Context, id, receiver, token string, lease time.Duration) (Claim, claimResult, error) {
	res, err := s.run(ctx, claimScript, []string{s.keys.incident(id)}, receiver, s.opt.Now().UnixMilli(), lease.Milliseconds(), token).Slice()
	if err != nil {
		return Claim{}, 0, fmt.Errorf("claim %s for %s: %w", id, receiver, err)
	}
	switch code, _ := res[0].(int64); code {
	case 1:
		seq, _ := res[1].(int64)
		t, _ := res[2].(string)
		tries, _ := res[3].(int64)
		return Claim{ID: id, Receiver: receiver, Transition: parseTransition(seq, t), Tries: tries, token: token}, claimed, nil
	case 0:
		return Claim{}, upToDate, nil
	case -2:
		return Claim{}, leased, nil
	default:
		return Claim{}, later, nil
	}
}

// finish records the end of a claimed send.
func (s *Store) finish(ctx context.Context, c Claim, outcome string, next time.Time, errText string) (bool, error) {
	var nextMS int64
	if !next.IsZero() {
		nextMS = next.UnixMilli()
	}
	ok, err := s.run(ctx, finishScript, []string{s.keys.incident(c.ID)}, c.Receiver, c.token, c.Transition.Seq, outcome,
		s.opt.Now().UnixMilli(), nextMS, truncate(errText, 300)).Int()
	if err != nil {
		return false, fmt.Errorf("record %s delivery of %s: %w", c.Receiver, c.ID, err)
	}
	return ok == 1, nil
}

// settle sets when the incident is next due for receivers.
func (s *Store) settle(ctx context.Context, id string, receivers []string) error {
	args := []any{id, s.opt.Now().UnixMilli()}
	for _, r := range receivers {
		args = append(args, r)
	}
	if err := s.run(ctx, settleScript, []string{s.keys.incident(id), s.keys.due()}, args...).Err(); err != nil {
		return fmt.Errorf("settle %s: %w", id, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func isNoScript(err error) bool { return err != nil && strings.Contains(err.Error(), "NOSCRIPT") }

// isCmdError reports whether err is a Redis reply error (one command failed) rather
// than a connection problem (the whole round trip failed).
func isCmdError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, context.DeadlineExceeded)
}
