package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/reboundhq/rebound/internal/events"
)

// Reading the fields of ESP payloads: what several adapters need in the same way.

// MaxReplyText is the events schema's bound on reply text.
const MaxReplyText = 8 << 10

// ClipText cuts s to at most MaxReplyText bytes on a rune boundary: a longer
// diagnostic is shortened rather than costing the event.
func ClipText(s string) string {
	if len(s) <= MaxReplyText {
		return s
	}
	cut := MaxReplyText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// JSONScalar returns a JSON string's value (trimmed) or a number's literal, and ""
// for anything else (absent, null, object, array, bool). ESPs send the same field as
// a string in one payload and a number in the next.
func JSONScalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return strings.TrimSpace(s)
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			return n.String()
		}
	}
	return ""
}

// ParseUnixTime reads unix seconds, whole or with a fraction (rounded to the
// microsecond, since a float64 cannot hold a fraction like .52 exactly), in UTC.
func ParseUnixTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("required (unix seconds)")
	}
	if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(sec, 0).UTC(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0 && f <= 1<<40) {
		return time.Time{}, fmt.Errorf("%q is not unix seconds", s)
	}
	sec := int64(f)
	return time.Unix(sec, 0).Add(time.Duration((f-float64(sec))*1e6+0.5) * time.Microsecond).UTC(), nil
}

// FirstNonEmpty returns the first value that is not blank, trimmed; "" if none is.
func FirstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// SetNonEmpty sets m[k] = v unless v is empty, so an ESP verdict lists only the
// labels the ESP gave.
func SetNonEmpty(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// ItemsOf reads a body that is a JSON array of items, or one item object standing for
// a batch of one (SendGrid, Mailjet, Brevo post either). The error says which shape
// is wrong; the caller prefixes its ESP.
func ItemsOf(body []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		var items []json.RawMessage
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, fmt.Errorf("body is not a JSON array of events: %w", err)
		}
		return items, nil
	case len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed):
		return []json.RawMessage{trimmed}, nil
	}
	return nil, errors.New("body is not a JSON event object or an array of them")
}

// MapItems maps every item of a batch with mapItem, which returns the event, or
// reports the item as ignored on purpose, or says why it cannot be mapped. Every event
// is normalized here, so mapItem need not; an item that fails (or one mapItem cannot
// map) is rejected with its raw bytes and the reason, to be dead-lettered.
func MapItems(items []json.RawMessage, mapItem func(json.RawMessage) (events.Event, bool, error)) Batch {
	b := Batch{Events: make([]events.Event, 0, len(items))}
	for i, raw := range items {
		e, ignored, err := mapItem(raw)
		if err == nil && !ignored {
			err = e.Normalize()
		}
		switch {
		case err != nil:
			b.Rejects = append(b.Rejects, Reject{Index: i, Reason: err.Error(), Raw: raw})
		case ignored:
			b.Ignored++
		default:
			b.Events = append(b.Events, e)
		}
	}
	return b
}

// BareAddress strips a display name from a header-style value ("Ana <ana@example.net>"
// or a quoted name); anything else is returned trimmed, as it is.
func BareAddress(s string) string {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "<\"") {
		if a, err := mail.ParseAddress(s); err == nil {
			return a.Address
		}
	}
	return s
}

// OptionalAddress is BareAddress, or "" when the result is not an address: an optional
// field (the sender) must not cost the event.
func OptionalAddress(s string) string {
	s = BareAddress(s)
	if _, err := events.NormalizeAddress(s); err != nil {
		return ""
	}
	return s
}

// Stand-in replies for an ESP's drop of a recipient who opted out of this sender's mail,
// worded as the catalog's rule for ESPs' opt-out lists (esp.opted_out) reads them: the
// recipient's wish, suppressed for the tenant (recipient_opted_out), not for everyone.
// The adapters prefix them with their own "synthetic (…)" label.
const (
	OptOutUnsubscribed = "550 5.7.1 Unsubscribed Address: the recipient unsubscribed from this sender"
	OptOutComplained   = "550 5.7.1 Spam Reporting Address: the recipient reported this sender's mail as spam"
)

// MarkUnsubscribed makes e an ESP's report that the recipient unsubscribed from this
// sender's mail (the ESP's unsubscribe link or List-Unsubscribe header). Nothing was
// refused yet, but from now on the ESP drops this sender's mail to the address from its
// opt-out list, which is what a drop for an unsubscribed address already tells Rebound
// later: so it is the same event, earlier. It suppresses for the tenant only (the
// recipient's wish about this sender), and, as the ESP's list speaks rather than a
// receiving domain, it never counts toward the mass-bounce guard. label names the ESP's
// event in the stand-in reply ("SendGrid unsubscribe").
func MarkUnsubscribed(e *events.Event, label string) {
	e.Type, e.ProviderSuppressed = events.TypeDropped, true
	e.Reply = events.Reply{Text: "synthetic (" + label + ", not sent): " + OptOutUnsubscribed}
}
