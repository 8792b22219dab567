package ingest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/reboundhq/rebound/internal/events"
)

func TestClipText(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxReplyText-1) + "é" // the 2-byte rune straddles the bound
	tests := []struct {
		name, in string
		wantLen  int
	}{
		{"empty", "", 0},
		{"short", "550 5.1.1 user unknown", len("550 5.1.1 user unknown")},
		{"exactly the bound", strings.Repeat("x", MaxReplyText), MaxReplyText},
		{"longer", strings.Repeat("x", MaxReplyText+10), MaxReplyText},
		{"cut inside a rune", long + "tail", MaxReplyText - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ClipText(tt.in)
			if len(got) != tt.wantLen || !utf8.ValidString(got) || !strings.HasPrefix(tt.in, got) {
				t.Fatalf("ClipText: %d bytes (valid UTF-8 %v), want a %d-byte prefix", len(got), utf8.ValidString(got), tt.wantLen)
			}
		})
	}
}

func TestJSONScalar(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{``, ""},
		{`null`, ""},
		{`"  acme-eu "`, "acme-eu"},
		{`"a\u00e9"`, "aé"},
		{` 42 `, "42"},
		{`-1.5e3`, "-1.5e3"},
		{`1767225600.25`, "1767225600.25"},
		{`true`, ""},
		{`{"name":"x"}`, ""},
		{`["x"]`, ""},
		{`"unterminated`, ""},
		{`12abc`, ""},
	}
	for _, tt := range tests {
		if got := JSONScalar(json.RawMessage(tt.in)); got != tt.want {
			t.Errorf("JSONScalar(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseUnixTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{"1767225600", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ""},
		{"1767225600.25", time.Date(2026, 1, 1, 0, 0, 0, 250_000_000, time.UTC), ""},
		{"1767225600.52", time.Date(2026, 1, 1, 0, 0, 0, 520_000_000, time.UTC), ""}, // rounded, not 519999980
		{"0", time.Unix(0, 0).UTC(), ""},
		{"", time.Time{}, "required (unix seconds)"},
		{"-1.5", time.Time{}, `"-1.5" is not unix seconds`},
		{"1e13", time.Time{}, `"1e13" is not unix seconds`},
		{"2026-01-01T00:00:00Z", time.Time{}, "is not unix seconds"},
	}
	for _, tt := range tests {
		got, err := ParseUnixTime(tt.in)
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseUnixTime(%q) error = %v, want %q", tt.in, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || !got.Equal(tt.want) || got.Location() != time.UTC):
			t.Errorf("ParseUnixTime(%q) = %v, %v; want %v in UTC", tt.in, got, err, tt.want)
		}
	}
}

func TestFirstNonEmptyAndSetNonEmpty(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"", "  ", "\t"}, ""},
		{[]string{" <id@x> ", "other"}, "<id@x>"},
		{[]string{"", "second"}, "second"},
	}
	for _, tt := range tests {
		if got := FirstNonEmpty(tt.in...); got != tt.want {
			t.Errorf("FirstNonEmpty(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	m := map[string]string{}
	SetNonEmpty(m, "reason", "")
	SetNonEmpty(m, "type", "blocked")
	if len(m) != 1 || m["type"] != "blocked" {
		t.Errorf("SetNonEmpty left %v, want only type=blocked", m)
	}
}

func TestMapItems(t *testing.T) {
	t.Parallel()
	valid := events.Event{ID: "sendgrid:1", ESP: "sendgrid", Type: events.TypeBounce, Recipient: "a@example.com",
		OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600))}
	items := []json.RawMessage{[]byte(`"event"`), []byte(`"open"`), []byte(`"bad"`), []byte(`"event"`), []byte(`"invalid"`)}
	b := MapItems(items, func(raw json.RawMessage) (events.Event, bool, error) {
		switch string(raw) {
		case `"open"`:
			return events.Event{}, true, nil
		case `"bad"`:
			return events.Event{}, false, errors.New("email: required")
		case `"invalid"`:
			return events.Event{ID: "x"}, false, nil // fails Normalize
		}
		return valid, false, nil
	})
	if len(b.Events) != 2 || b.Ignored != 1 || len(b.Rejects) != 2 {
		t.Fatalf("MapItems = %d events, %d ignored, %d rejects; want 2, 1, 2", len(b.Events), b.Ignored, len(b.Rejects))
	}
	if r := b.Rejects[0]; r.Index != 2 || r.Reason != "email: required" || string(r.Raw) != `"bad"` {
		t.Fatalf("reject = %+v, want index 2 with the reason and the raw item", r)
	}
	if r := b.Rejects[1]; r.Index != 4 || !strings.Contains(r.Reason, "esp") || string(r.Raw) != `"invalid"` {
		t.Fatalf("reject = %+v, want index 4 with Normalize's reason and the raw item", r)
	}
	if got := b.Events[0].OccurredAt.Location(); got != time.UTC {
		t.Errorf("event not normalized: occurred_at in %v, want UTC", got)
	}
	if empty := MapItems(nil, nil); empty.Events == nil || len(empty.Events) != 0 {
		t.Fatalf("MapItems(nil) = %+v, want an empty, non-nil event list", empty)
	}
}

func TestOptionalAddress(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ana@example.net":               "ana@example.net",
		"  ana@example.net ":            "ana@example.net",
		"Ana <ana@example.net>":         "ana@example.net",
		`"Hart, Ana" <ana@example.net>`: "ana@example.net",
		"App <>":                        "",
		"not an address":                "",
		"":                              "",
	} {
		if got := OptionalAddress(in); got != want {
			t.Errorf("OptionalAddress(%q) = %q, want %q", in, got, want)
		}
	}
	if got := BareAddress("Ana <ana@example.net>"); got != "ana@example.net" {
		t.Errorf("BareAddress = %q", got)
	}
	if got := BareAddress(" not <an address "); got != "not <an address" {
		t.Errorf("BareAddress of an unparsable value = %q, want it trimmed and kept", got)
	}
}

func TestItemsOf(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		body string
		n    int
		ok   bool
	}{
		{`[{"a":1},{"b":2}]`, 2, true},
		{` {"a":1} `, 1, true},
		{`[]`, 0, true},
		{`[{"a":1}`, 0, false},
		{`{"a":`, 0, false},
		{`"text"`, 0, false},
		{``, 0, false},
	} {
		items, err := ItemsOf([]byte(tt.body))
		if (err == nil) != tt.ok || len(items) != tt.n {
			t.Errorf("ItemsOf(%q) = %d items, %v; want %d, ok %v", tt.body, len(items), err, tt.n, tt.ok)
		}
		if err != nil && errors.Is(err, ErrBadRequest) {
			t.Errorf("ItemsOf(%q): %v must not be ErrBadRequest", tt.body, err)
		}
	}
}
