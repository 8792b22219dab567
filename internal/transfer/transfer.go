package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
)

// Store is what an import writes to and an export reads from (*suppress.Store).
type Store interface {
	Apply(ctx context.Context, changes []suppress.Change) ([]suppress.Outcome, error)
	EventID(id string) string
	AddressKey(addr string) string
	ListPage(ctx context.Context, tenant, cursor string, limit int, f suppress.ListFilter) (suppress.Page, error)
}

// Options tune an import.
type Options struct {
	Tenant string // the namespace written ("" = global)
	// Classify classifies a bounce's reply text. A bounce with a reply is imported only
	// when the reply is a permanent, recipient-side, recognised one — what the live
	// policy suppresses; a bounce without reply text (SES, Postmark) is taken as the
	// hard bounce the ESP says it was. Nil: every bounce is taken as the ESP says.
	Classify func(reply string) catalog.Classification
	// Policy, when set, is the live policy, and an import suppresses no more than the
	// pipeline would: an entry for an address its allowlist covers is rejected, and a
	// bounce with reply text is imported only when the policy's decision on that reply is
	// to suppress, for as long as the policy says (the catalog alone cannot know that a
	// policy keeps, say, mailbox_disabled record-only). Nil: the catalog decides alone.
	Policy *policy.Policy
	// SkipLines: lines up to this one were done by an earlier run (--resume).
	SkipLines int
	// Batch is how many lines go to Redis in one round trip (default 500).
	Batch int
	// KeepRejections is how many rejections the summary lists (all are counted; default 1000).
	KeepRejections int
	// Progress, when set, is called after every batch with the totals so far.
	Progress func(Summary)
	// Checkpoint, when set, is called after every batch is durable with the last line
	// it held: a run resumed after it (SkipLines) redoes nothing.
	Checkpoint func(line int) error
	Now        func() time.Time
}

// Rejection is a line not imported, and why.
type Rejection struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// Summary is what an import did.
type Summary struct {
	Lines     int `json:"lines"`     // lines read (CSV header and blank lines aside)
	Imported  int `json:"imported"`  // written (new, or refreshing an existing record)
	Duplicate int `json:"duplicate"` // imported before: nothing changed
	Rejected  int `json:"rejected"`
	Resumed   int `json:"resumed,omitempty"` // skipped: done by an earlier run
	// Rejections lists the first KeepRejections rejections, in line order.
	Rejections []Rejection `json:"rejections"`
	// Stopped is why the input could not be read to its end, if it could not.
	Stopped string `json:"stopped,omitempty"`
}

// Import reads entries from r and writes them as suppressions, Batch lines a round
// trip. A bad line is rejected with its reason and the import goes on; an error
// returned means the state store failed (what was applied stays, and a new run
// skips it as duplicate). Each line's event ID is derived from its content, so
// importing the same file again changes nothing.
func Import(ctx context.Context, st Store, r *Reader, opt Options) (Summary, error) {
	if opt.Batch <= 0 {
		opt.Batch = 500
	}
	if opt.KeepRejections <= 0 {
		opt.KeepRejections = 1000
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	// An address exported in its hashed form ("h:…") means something only to a store
	// hashing with the same key; a store without a key would hold a record no look-up
	// ever finds.
	hashing := st.AddressKey("probe@example.invalid") != "probe@example.invalid"
	sum := Summary{Rejections: []Rejection{}}
	reject := func(line int, reason string) {
		sum.Rejected++
		if len(sum.Rejections) < opt.KeepRejections {
			sum.Rejections = append(sum.Rejections, Rejection{Line: line, Reason: reason})
		}
	}
	var (
		changes []suppress.Change
		lines   []int
		last    int
	)
	flush := func() error {
		if len(changes) > 0 {
			outs, err := st.Apply(ctx, changes)
			if err != nil {
				return fmt.Errorf("import up to line %d: %w", last, err)
			}
			for i, o := range outs {
				switch {
				case o.Err != nil:
					reject(lines[i], "state store: "+o.Err.Error())
				case o.Duplicate:
					sum.Duplicate++
				default:
					sum.Imported++
				}
			}
			changes, lines = changes[:0], lines[:0]
		}
		if opt.Checkpoint != nil && last > 0 {
			if err := opt.Checkpoint(last); err != nil {
				return fmt.Errorf("checkpoint at line %d: %w", last, err)
			}
		}
		if opt.Progress != nil {
			opt.Progress(sum)
		}
		return nil
	}
	pending := 0 // lines since the last flush, rejected ones included
	for {
		it, ok := r.Next()
		if !ok {
			break
		}
		sum.Lines++
		last = it.Line
		pending++
		switch {
		case it.Line <= opt.SkipLines:
			sum.Resumed++
		case it.Err != nil:
			reject(it.Line, it.Err.Error())
		case !hashing && strings.HasPrefix(it.Entry.Address, "h:"):
			reject(it.Line, "address: a keyed hash (h:…) from a store with REBOUND_ADDRESS_HASH_KEY; this one has none")
		default:
			c, err := change(&it.Entry, opt)
			if err != nil {
				reject(it.Line, err.Error())
				break
			}
			c.EventID = st.EventID(c.EventID)
			changes, lines = append(changes, c), append(lines, it.Line)
		}
		if len(changes) >= opt.Batch || pending >= 10*opt.Batch {
			if err := flush(); err != nil {
				return sum, err
			}
			pending = 0
		}
		if ctx.Err() != nil {
			return sum, ctx.Err()
		}
	}
	if err := r.Err(); err != nil {
		sum.Stopped = err.Error()
	}
	if err := flush(); err != nil {
		return sum, err
	}
	return sum, nil
}

// change turns an entry into the suppression it writes.
func change(e *Entry, opt Options) (suppress.Change, error) {
	c := suppress.Change{
		ESP: e.Source, Tenant: opt.Tenant, Address: e.Address, Action: suppress.ActionSuppress,
		Rule: "import", Code: e.Code, Reply: e.Reply,
	}
	if strings.HasPrefix(e.Address, "h:") {
		c.Protected = true // already in the store's hashed form
	}
	if !e.FirstSeen.IsZero() {
		c.At = e.FirstSeen.UnixMilli()
	}
	if opt.Policy != nil && !c.Protected && opt.Policy.Allowlisted(e.Address) {
		return c, fmt.Errorf("the policy's allowlist covers this address: the pipeline never suppresses it")
	}
	switch e.Kind {
	case KindRecord:
		c.Reason, c.Class, c.ESP = e.Reason, e.Class, e.ESP
		if !e.ExpiresAt.IsZero() {
			if !e.ExpiresAt.After(opt.Now()) {
				return c, fmt.Errorf("expired at %s", e.ExpiresAt.Format(time.RFC3339))
			}
			c.ExpiresAt = e.ExpiresAt.UnixMilli()
		}
	case KindBounce:
		c.Reason, c.Class = "hard_bounce", "provider_list"
		if e.Reply != "" && opt.Classify != nil {
			cl := opt.Classify(replyText(e.Code, e.Reply))
			if !cl.Suppressible() {
				return c, fmt.Errorf("reply classified %s (scope %s, permanent %t): the policy never suppresses on it", cl.Class, cl.Scope, cl.Permanent)
			}
			if opt.Policy != nil {
				ev := events.Event{Type: events.TypeBounce, Recipient: e.Address, ESP: e.Source, Tenant: opt.Tenant}
				d := opt.Policy.Decide(&ev, cl)
				if d.Action != policy.ActionSuppress {
					return c, fmt.Errorf("reply classified %s: the live policy does not suppress on it (action %s, rule %s)", cl.Class, d.Action, d.Rule)
				}
				c.SuppressTTL = d.SuppressTTL
			}
			c.Reason, c.Class, c.Code = string(cl.Class), string(cl.Class), cl.Code
		}
	case KindComplaint:
		c.Reason, c.Class = "complaint", "complaint"
	case KindUnsubscribe:
		c.Reason, c.Class = "unsubscribe", "unsubscribe"
	case KindManual:
		c.Reason, c.Class = "manual", "manual"
	}
	if c.ESP == "" {
		c.ESP = "import"
	}
	c.EventID = eventID(e, opt.Tenant)
	return c, nil
}

// replyText puts a bounce's code in front of its text when the text lacks one
// (Mailgun gives "550" and the text apart; SendGrid "5.1.1" and the text).
func replyText(code, text string) string {
	if code == "" || (text != "" && text[0] >= '2' && text[0] <= '5') {
		return text
	}
	return code + " " + text
}

// eventID is the line's event ID: "import:<address>:<digest of what the line says>".
// The same line imported again is the same event (a duplicate); the store's EventID
// turns the address part into a keyed hash when addresses are hashed.
func eventID(e *Entry, tenant string) string {
	h := sha256.New()
	for _, s := range []string{tenant, string(e.Kind), e.Source, e.Reason, e.Class, e.Code, e.Reply, e.ESP,
		strconv.FormatInt(e.FirstSeen.UnixMilli(), 10), strconv.FormatInt(e.ExpiresAt.UnixMilli(), 10)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "import:" + e.Address + ":" + hex.EncodeToString(h.Sum(nil)[:12])
}

// exportColumns are the columns of an export, CSV and NDJSON alike; an import of the
// file recognises them (shape "rebound") and writes the same records back.
var exportColumns = []string{"address", "reason", "class", "code", "reply", "esp", "first_seen", "expires_at"}

// exported is one line of an NDJSON export.
type exported struct {
	Address   string `json:"address"`
	Reason    string `json:"reason"`
	Class     string `json:"class"`
	Code      string `json:"code,omitempty"`
	Reply     string `json:"reply,omitempty"`
	ESP       string `json:"esp,omitempty"`
	FirstSeen string `json:"first_seen"`
	ExpiresAt string `json:"expires_at,omitempty"` // absent: permanent
}

func exportedFrom(r *suppress.Record) exported {
	x := exported{Address: r.Address, Reason: r.Reason, Class: r.Class, Code: r.Code, Reply: r.Reply, ESP: r.ESP,
		FirstSeen: r.FirstSeen.UTC().Format(time.RFC3339Nano)}
	if r.ExpiresAt != nil {
		x.ExpiresAt = r.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	return x
}

// Export writes a tenant's suppressions to w in address order (format NDJSON or CSV),
// a page at a time. NDJSON carries every byte; CSV writes a reply's CR LF as LF, as
// CSV readers read it anyway. flush, when set, runs after each page (to stream over
// HTTP). It returns how many records it wrote.
func Export(ctx context.Context, st Store, tenant string, w io.Writer, format Format, flush func()) (int, error) {
	var cw *csv.Writer
	var enc *json.Encoder
	switch format {
	case FormatCSV:
		cw = csv.NewWriter(w)
		if err := cw.Write(exportColumns); err != nil {
			return 0, fmt.Errorf("export: %w", err)
		}
	case FormatNDJSON, FormatAuto:
		enc = json.NewEncoder(w)
	default:
		return 0, fmt.Errorf("export format %q: want ndjson or csv", format)
	}
	n, cursor := 0, ""
	for {
		page, err := st.ListPage(ctx, tenant, cursor, 1000, suppress.ListFilter{})
		if err != nil {
			return n, fmt.Errorf("export after %d records: %w", n, err)
		}
		for i := range page.Records {
			x := exportedFrom(&page.Records[i])
			if cw != nil {
				// A CSV reader turns a CR LF inside a quoted field into LF: written so
				// here, the file reads back as it was written.
				reply := strings.ReplaceAll(x.Reply, "\r\n", "\n")
				err = cw.Write([]string{x.Address, x.Reason, x.Class, x.Code, reply, x.ESP, x.FirstSeen, x.ExpiresAt})
			} else {
				err = enc.Encode(x)
			}
			if err != nil {
				return n, fmt.Errorf("export: %w", err)
			}
			n++
		}
		if cw != nil {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return n, fmt.Errorf("export: %w", err)
			}
		}
		if flush != nil {
			flush()
		}
		if page.Next == "" {
			return n, nil
		}
		cursor = page.Next
	}
}
