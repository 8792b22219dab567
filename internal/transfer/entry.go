package transfer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/events"
)

// Kind is what put an address on a list.
type Kind string

// The kinds an import knows.
const (
	KindRecord      Kind = "record"      // a Rebound export: reason and class as written
	KindBounce      Kind = "bounce"      // a hard bounce on the ESP's list
	KindComplaint   Kind = "complaint"   // a spam report
	KindUnsubscribe Kind = "unsubscribe" // the recipient asked to stop
	KindManual      Kind = "manual"      // added by hand at the ESP
)

// Entry is one suppression read from a file, whatever its shape.
type Entry struct {
	Address string // normalised, or "h:<hex>" (an export of a store with hashed addresses)
	Kind    Kind
	Source  string // the shape: rebound, ses, sendgrid, postmark, mailgun
	Reason  string // KindRecord only
	Class   string // KindRecord only
	Code    string
	Reply   string
	ESP     string // KindRecord only: the record's ESP
	// FirstSeen is when the address was listed (zero: unknown, the import's time).
	FirstSeen time.Time
	// ExpiresAt is when the suppression ends (zero: permanent).
	ExpiresAt time.Time
}

// fields is one line or object, keyed by normalised column name (see normKey).
type fields map[string]string

// normKey lower-cases a column name and drops everything but letters and digits, so
// "EmailAddress", "email_address" and "Email Address" are one column.
func normKey(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			b.WriteByte(c)
		case 'A' <= c && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		}
	}
	return b.String()
}

func (f fields) has(keys ...string) bool {
	for _, k := range keys {
		if _, ok := f[k]; !ok {
			return false
		}
	}
	return true
}

// shape names the export a set of columns comes from. The columns are those the ESPs
// document for their list exports and list APIs:
//
//	rebound   address, reason, class (code, reply, esp, first_seen, expires_at)
//	ses       EmailAddress, Reason (BOUNCE|COMPLAINT), LastUpdateTime
//	postmark  EmailAddress, SuppressionReason (HardBounce|SpamComplaint|ManualSuppression), Origin, CreatedAt
//	mailgun   address with code/error (bounces), with tags (unsubscribes), or created_at alone (complaints)
//	sendgrid  email with reason/status (bounces, blocks), with ip (spam reports), or created alone (unsubscribes)
func shape(f fields) (string, error) {
	switch {
	case f.has("address", "reason", "class"):
		return "rebound", nil
	case f.has("emailaddress", "suppressionreason"):
		return "postmark", nil
	case f.has("emailaddress", "reason"):
		return "ses", nil
	case f.has("address"):
		return "mailgun", nil
	case f.has("email"):
		return "sendgrid", nil
	}
	return "", errors.New("no address column (want one of address, email, EmailAddress)")
}

// entryFrom turns one line or object into an Entry.
func entryFrom(f fields) (Entry, error) {
	src, err := shape(f)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Source: src}
	var raw, at string
	switch src {
	case "rebound":
		raw, at = f["address"], f["firstseen"]
		e.Kind, e.Reason, e.Class, e.Code, e.Reply, e.ESP = KindRecord, f["reason"], f["class"], f["code"], f["reply"], f["esp"]
		if e.Reason == "" || e.Class == "" {
			return Entry{}, errors.New("reason and class: required in a Rebound export")
		}
		if exp := f["expiresat"]; exp != "" {
			if e.ExpiresAt, err = parseTime(exp); err != nil {
				return Entry{}, fmt.Errorf("expires_at: %w", err)
			}
		}
	case "ses":
		raw, at = f["emailaddress"], f["lastupdatetime"]
		switch strings.ToUpper(f["reason"]) {
		case "BOUNCE":
			e.Kind = KindBounce
		case "COMPLAINT":
			e.Kind = KindComplaint
		default:
			return Entry{}, fmt.Errorf("Reason %q: want BOUNCE or COMPLAINT", f["reason"])
		}
	case "postmark":
		raw, at = f["emailaddress"], f["createdat"]
		switch r := f["suppressionreason"]; r {
		case "HardBounce":
			e.Kind = KindBounce
		case "SpamComplaint":
			e.Kind = KindComplaint
		case "ManualSuppression":
			// Postmark records an unsubscribe link's click as a manual suppression
			// whose origin is the recipient.
			e.Kind = KindManual
			if f["origin"] == "Recipient" {
				e.Kind = KindUnsubscribe
			}
		default:
			return Entry{}, fmt.Errorf("SuppressionReason %q: want HardBounce, SpamComplaint or ManualSuppression", r)
		}
	case "mailgun":
		raw, at = f["address"], f["createdat"]
		switch {
		case f.has("code") || f.has("error"):
			e.Kind, e.Code, e.Reply = KindBounce, f["code"], f["error"]
		case f.has("tags"):
			// "*" (or nothing) is an unsubscribe from everything; named tags are an
			// unsubscribe from that mail only, which a whole-address suppression would
			// overstate.
			if t := f["tags"]; t != "" && t != "*" {
				return Entry{}, fmt.Errorf("unsubscribed from tags %q only: Rebound suppresses whole addresses", t)
			}
			e.Kind = KindUnsubscribe
		default:
			e.Kind = KindComplaint
		}
	case "sendgrid":
		raw, at = f["email"], f["created"]
		switch {
		case f.has("reason") || f.has("status"):
			e.Kind, e.Code, e.Reply = KindBounce, f["status"], f["reason"]
		case f.has("ip"):
			e.Kind = KindComplaint
		default:
			e.Kind = KindUnsubscribe
		}
	}
	if e.Address, err = address(raw); err != nil {
		return Entry{}, fmt.Errorf("address: %w", err)
	}
	if at != "" {
		if e.FirstSeen, err = parseTime(at); err != nil {
			return Entry{}, fmt.Errorf("time: %w", err)
		}
	}
	return e, nil
}

// address normalises an address, and lets through the "h:" form a store with hashed
// addresses exports (it imports only into a store with the same key).
func address(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if h, ok := strings.CutPrefix(raw, "h:"); ok && len(h) == 40 {
		if _, err := hex.DecodeString(h); err == nil {
			return raw, nil
		}
	}
	return events.NormalizeAddress(raw)
}

// timeLayouts are the written forms of time the ESPs' exports use: RFC 3339 (ours, SES,
// Postmark), RFC 2822 (Mailgun) and a plain date and time (SendGrid's CSV).
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	time.RFC1123Z,
	time.RFC1123,
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"2 Jan 2006 15:04:05 -0700",
	"2006-01-02",
}

// parseTime reads a time as the exports write it: one of timeLayouts (UTC when no zone
// is given), or Unix seconds (SES's JSON and SendGrid's API write numbers, with a
// fraction or not), or Unix milliseconds.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "eEnN") {
		if n <= 0 || math.IsInf(n, 0) || n > 1e15 {
			return time.Time{}, fmt.Errorf("%q is not a time", s)
		}
		if n > 1e11 { // milliseconds: 1e11 seconds is the year 5138
			return time.UnixMilli(int64(n)).UTC(), nil
		}
		sec, frac := math.Modf(n)
		return time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)).UTC(), nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			if t.Year() < 1970 || t.Year() > 9999 {
				break
			}
			return t.UTC().Truncate(time.Millisecond), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (want RFC 3339, RFC 2822 or Unix seconds)", s)
}
