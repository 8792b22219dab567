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
	items := []json.RawMessage{[]byte(`"event"`), []byte(`"open"`), []byte(`"bad"`), []byte(`"event"`)}
	b := MapItems(items, func(raw json.RawMessage) (events.Event, bool, error) {
		switch string(raw) {
		case `"open"`:
			return events.Event{}, true, nil
		case `"bad"`:
			return events.Event{}, false, errors.New("email: required")
		}
		return events.Event{ID: "x"}, false, nil
	})
	if len(b.Events) != 2 || b.Ignored != 1 || len(b.Rejects) != 1 {
		t.Fatalf("MapItems = %d events, %d ignored, %d rejects; want 2, 1, 1", len(b.Events), b.Ignored, len(b.Rejects))
	}
	if r := b.Rejects[0]; r.Index != 2 || r.Reason != "email: required" || string(r.Raw) != `"bad"` {
		t.Fatalf("reject = %+v, want index 2 with the reason and the raw item", r)
	}
	if empty := MapItems(nil, nil); empty.Events == nil || len(empty.Events) != 0 {
		t.Fatalf("MapItems(nil) = %+v, want an empty, non-nil event list", empty)
	}
}
