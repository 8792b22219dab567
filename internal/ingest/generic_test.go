package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/events"
)

const testToken = "s3cret-generic-token"

// fixture reads testdata/generic/<name>.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "generic", name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

func TestGenericESP(t *testing.T) {
	t.Parallel()
	if got := NewGeneric(testToken).ESP(); got != "generic" {
		t.Errorf("ESP() = %q, want generic", got)
	}
}

func TestGenericAuthenticate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		token  string // configured token
		header string // Authorization; "" = absent
		ok     bool
	}{
		{"no token configured, no header", "", "", false},
		{"no token configured, empty bearer", "", "Bearer ", false},
		{"no token configured, any bearer", "", "Bearer anything", false},
		{"missing header", testToken, "", false},
		{"scheme only", testToken, "Bearer", false},
		{"scheme and space only", testToken, "Bearer ", false},
		{"basic scheme", testToken, "Basic " + testToken, false},
		{"token without scheme", testToken, testToken, false},
		{"wrong token", testToken, "Bearer not-the-token", false},
		{"token prefix", testToken, "Bearer " + testToken[:5], false},
		{"token with suffix", testToken, "Bearer " + testToken + "x", false},
		{"token case differs", testToken, "Bearer " + strings.ToUpper(testToken), false},
		{"right token", testToken, "Bearer " + testToken, true},
		{"right token, lower-case scheme", testToken, "bearer " + testToken, true},
		{"right token, upper-case scheme", testToken, "BEARER " + testToken, true},
		{"right token, surrounding space", testToken, "Bearer  " + testToken + " ", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/webhooks/generic", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			err := NewGeneric(tt.token).Authenticate(r, nil)
			switch {
			case tt.ok && err != nil:
				t.Errorf("Authenticate = %v, want nil", err)
			case !tt.ok && err == nil:
				t.Errorf("Authenticate = nil, want an error")
			case !tt.ok && !errors.Is(err, ErrUnauthenticated):
				t.Errorf("Authenticate = %v, want it to wrap ErrUnauthenticated", err)
			case !tt.ok && tt.token != "" && strings.Contains(err.Error(), tt.token):
				t.Errorf("Authenticate error %q contains the configured token", err)
			}
		})
	}
}

func TestGenericParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		body        []byte
		badRequest  bool
		wantIDs     []string
		wantRejects map[int]string // index → text the reason must contain
	}{
		{name: "single object", body: fixture(t, "single.json"), wantIDs: []string{"generic:msg-0001"}},
		{name: "array", body: fixture(t, "batch.json"), wantIDs: []string{"generic:msg-0002", "generic:msg-0003", "generic:msg-0004"}},
		{name: "empty array", body: []byte(" [ ] \n")},
		{name: "array with one invalid item", body: fixture(t, "invalid-item.json"),
			wantIDs: []string{"generic:msg-0005", "generic:msg-0007"}, wantRejects: map[int]string{1: "recipient"}},
		{name: "unknown field", body: fixture(t, "unknown-field.json"), wantRejects: map[int]string{0: "recipent"}},
		{name: "item not an object", body: []byte(`[42]`), wantRejects: map[int]string{0: "events.Event"}},
		{name: "null item", body: []byte(`[null]`), wantRejects: map[int]string{0: "id"}},
		{name: "item missing occurred_at", body: []byte(`[{"id":"generic:1","esp":"generic","type":"bounce","recipient":"a@example.com"}]`),
			wantRejects: map[int]string{0: "occurred_at"}},
		{name: "item with unknown type", body: []byte(`[{"id":"generic:1","esp":"generic","type":"open","occurred_at":"2026-01-01T00:00:00Z","recipient":"a@example.com"}]`),
			wantRejects: map[int]string{0: "type"}},
		{name: "not JSON", body: fixture(t, "malformed.json"), badRequest: true},
		{name: "empty body", body: nil, badRequest: true},
		{name: "white space only", body: []byte(" \n\t"), badRequest: true},
		{name: "scalar number", body: []byte(`42`), badRequest: true},
		{name: "scalar string", body: []byte(`"bounce"`), badRequest: true},
		{name: "null", body: []byte(`null`), badRequest: true},
		{name: "truncated array", body: []byte(`[{"id":"generic:1"}`), badRequest: true},
		{name: "two objects", body: []byte(`{"id":"generic:1"} {"id":"generic:2"}`), badRequest: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := NewGeneric(testToken).Parse(tt.body)
			if tt.badRequest {
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("Parse err = %v, want ErrBadRequest", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var ids []string
			for _, e := range b.Events {
				ids = append(ids, e.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("event IDs = %v, want %v", ids, tt.wantIDs)
			}
			if len(b.Rejects) != len(tt.wantRejects) {
				t.Fatalf("rejects = %+v, want %d", b.Rejects, len(tt.wantRejects))
			}
			var items []json.RawMessage
			if bytes.HasPrefix(bytes.TrimSpace(tt.body), []byte("[")) {
				if err := json.Unmarshal(tt.body, &items); err != nil {
					t.Fatal(err)
				}
			}
			for _, rej := range b.Rejects {
				want, ok := tt.wantRejects[rej.Index]
				if !ok {
					t.Errorf("unexpected reject at index %d: %q", rej.Index, rej.Reason)
					continue
				}
				if !strings.Contains(rej.Reason, want) {
					t.Errorf("reject %d reason %q does not name %q", rej.Index, rej.Reason, want)
				}
				if strings.HasPrefix(rej.Reason, events.ErrUndecodable.Error()) {
					t.Errorf("reject %d reason %q keeps the internal prefix", rej.Index, rej.Reason)
				}
				if !bytes.Equal(rej.Raw, items[rej.Index]) {
					t.Errorf("reject %d raw = %s, want the item's bytes %s", rej.Index, rej.Raw, items[rej.Index])
				}
			}
			if b.Ignored != 0 {
				t.Errorf("Ignored = %d, want 0 (the generic adapter drops nothing)", b.Ignored)
			}
		})
	}
}

// TestGenericParseNormalizes checks that an accepted event is the normalised form.
func TestGenericParseNormalizes(t *testing.T) {
	t.Parallel()
	b, err := NewGeneric(testToken).Parse(fixture(t, "single.json"))
	if err != nil || len(b.Events) != 1 {
		t.Fatalf("Parse = %+v, %v", b, err)
	}
	e := b.Events[0]
	if e.Recipient != "Ana@example.com" {
		t.Errorf("recipient = %q, want domain lower-cased, local part kept", e.Recipient)
	}
	if want := time.Date(2026, 3, 14, 8, 26, 53, 0, time.UTC); !e.OccurredAt.Equal(want) || e.OccurredAt.Location() != time.UTC {
		t.Errorf("occurred_at = %v, want %v in UTC", e.OccurredAt, want)
	}
	if e.SendingDomain != "mail.example.org" {
		t.Errorf("sending_domain = %q, want it derived from sender", e.SendingDomain)
	}
}

// roundTrip checks the contract between ingest and the process role: whatever the
// generic adapter accepts, the process role can read back unchanged.
func roundTrip(e events.Event) error {
	first, err := events.Marshal(&e)
	if err != nil {
		return err
	}
	back, err := events.Decode(first)
	if err != nil {
		return err
	}
	second, err := events.Marshal(&back)
	if err != nil {
		return err
	}
	if !bytes.Equal(first, second) {
		return errors.New("changed on the round trip:\n  published " + string(first) + "\n  read back " + string(second))
	}
	return nil
}

func TestGenericParseRoundTrip(t *testing.T) {
	t.Parallel()
	const head = `{"id":"generic:rt","esp":"generic","type":"bounce",`
	tests := []struct {
		name string
		body string
	}{
		{"plain", head + `"occurred_at":"2026-01-01T00:00:00Z","recipient":"a@example.com"}`},
		{"angle brackets and case", head + `"occurred_at":"2026-01-01T00:00:00+05:00","recipient":" <A@Example.COM> "}`},
		{"idn domain", head + `"occurred_at":"2026-01-01T00:00:00Z","recipient":"a@bücher.example"}`},
		{"one trailing dot", head + `"occurred_at":"2026-01-01T00:00:00Z","recipient":"a@example.com."}`},
		// Both were once accepted as "a@example.com." and read back as "a@example.com".
		{"two trailing dots", head + `"occurred_at":"2026-01-01T00:00:00Z","recipient":"a@example.com.."}`},
		{"ideographic full stop", head + `"occurred_at":"2026-01-01T00:00:00Z","recipient":"a@example.com."}`},
		// Both were once accepted and then failed to encode, so the webhook answered 503 forever.
		{"year 0 with positive offset", head + `"occurred_at":"0000-01-01T00:00:00+01:00","recipient":"a@example.com"}`},
		{"year 9999 with negative offset", head + `"occurred_at":"9999-12-31T23:00:00-02:00","recipient":"a@example.com"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := NewGeneric(testToken).Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			// Either the item is rejected, or it must survive the trip to the process role.
			for _, e := range b.Events {
				if err := roundTrip(e); err != nil {
					t.Errorf("accepted event %s: %v", e.ID, err)
				}
			}
		})
	}
}

func FuzzGenericParse(f *testing.F) {
	for _, name := range []string{"single.json", "batch.json", "invalid-item.json", "unknown-field.json", "malformed.json"} {
		f.Add(fixture(f, name))
	}
	for _, s := range []string{
		``, `[]`, `{}`, `[{}]`, `[null]`, `null`, `42`, `"x"`, `[1,"a",{}]`, `{"id":"generic:1"} x`,
		`{"id":"generic:1","esp":"GENERIC","type":"Bounce","occurred_at":"2026-01-01T00:00:00Z","recipient":"<a@B.example>","sender":"s@Ex.example","tenant":" t ","reply":{"code":550,"enhanced":" 5.1.1 ","text":"  550 x  "},"esp_verdict":{"k":"v"}}`,
		`[{"id":"generic:1","esp":"generic","type":"complaint","occurred_at":"2026-01-01T00:00:00.123456789+14:00","recipient":"a@[1.2.3.4]","provider_suppressed":true}]`,
	} {
		f.Add([]byte(s))
	}
	g := NewGeneric(testToken)
	f.Add([]byte(`{"id":"sendgrid:1","esp":"sendgrid","type":"bounce","occurred_at":"2026-01-01T00:00:00Z","recipient":"a@example.com"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := g.Parse(body)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("Parse error %v does not wrap ErrBadRequest", err)
			}
			if len(b.Events) != 0 || len(b.Rejects) != 0 {
				t.Fatalf("Parse failed but returned a batch: %+v", b)
			}
			return
		}
		last := -1
		for _, rej := range b.Rejects {
			if rej.Index <= last {
				t.Fatalf("reject indexes not increasing: %+v", b.Rejects)
			}
			last = rej.Index
			if rej.Reason == "" || rej.Raw == nil {
				t.Fatalf("reject without reason or raw bytes: %+v", rej)
			}
		}
		for _, e := range b.Events {
			if e.ESP != "generic" || !strings.HasPrefix(e.ID, "generic:") {
				t.Fatalf("accepted %s event %q without REBOUND_GENERIC_ALLOW_RELAY", e.ESP, e.ID)
			}
			if err := roundTrip(e); err != nil {
				t.Fatalf("accepted event fails the round trip: %v", err)
			}
		}
	})
}

// TestGenericRelay: a holder of the generic token writes esp "generic" events only,
// unless REBOUND_GENERIC_ALLOW_RELAY lets it relay other ESPs' canonical events: it
// cannot otherwise publish "sendgrid:<id>" first and have SendGrid's own event with
// that ID dropped as a duplicate.
func TestGenericRelay(t *testing.T) {
	t.Parallel()
	body := []byte(`[{"id":"sendgrid:real-event-id","esp":"sendgrid","type":"bounce","occurred_at":"2026-01-01T00:00:00Z","recipient":"a@example.com"},` +
		`{"id":"generic:1","esp":"generic","type":"bounce","occurred_at":"2026-01-01T00:00:00Z","recipient":"b@example.com"}]`)
	b, err := NewGeneric(testToken).Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 1 || b.Events[0].ID != "generic:1" {
		t.Errorf("events %+v, want only generic:1", b.Events)
	}
	if len(b.Rejects) != 1 || b.Rejects[0].Index != 0 || !strings.Contains(b.Rejects[0].Reason, "REBOUND_GENERIC_ALLOW_RELAY") || len(b.Rejects[0].Raw) == 0 {
		t.Errorf("rejects %+v, want item 0 with a reason naming REBOUND_GENERIC_ALLOW_RELAY", b.Rejects)
	}
	b, err = NewGeneric(testToken).AllowRelay(true).Parse(body)
	if err != nil || len(b.Events) != 2 || b.Events[0].ID != "sendgrid:real-event-id" || len(b.Rejects) != 0 {
		t.Errorf("with relay allowed: %+v, %v; want both events", b, err)
	}
}
