package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"
)

func validEvent() Event {
	return Event{
		ID: "generic:e1", ESP: "generic", Type: TypeBounce,
		OccurredAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.FixedZone("x", 3600)),
		Recipient:  " Ana@Example.COM ",
		Reply:      Reply{Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 user unknown"},
	}
}

func TestNormalizeValid(t *testing.T) {
	t.Parallel()
	e := validEvent()
	e.Sender = "News@Mail.Example.ORG"
	if err := e.Normalize(); err != nil {
		t.Fatalf("Normalize: %v", err)
	}
	if e.Recipient != "Ana@example.com" {
		t.Errorf("recipient = %q, want local part kept and domain lower-cased", e.Recipient)
	}
	if e.SendingDomain != "mail.example.org" {
		t.Errorf("sending_domain = %q, want it derived from the sender", e.SendingDomain)
	}
	if e.OccurredAt.Location() != time.UTC {
		t.Errorf("occurred_at not in UTC: %v", e.OccurredAt)
	}
}

func TestNormalizeNamesTheField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(*Event)
		field string
	}{
		{"missing id", func(e *Event) { e.ID = "" }, "id"},
		{"id without esp prefix", func(e *Event) { e.ID = "e1" }, "id"},
		{"id with empty esp id", func(e *Event) { e.ID = "generic:" }, "id"},
		{"unknown esp", func(e *Event) { e.ESP = "acme"; e.ID = "acme:1" }, "esp"},
		{"missing type", func(e *Event) { e.Type = "" }, "type"},
		{"open is not canonical", func(e *Event) { e.Type = "open" }, "type"},
		{"missing time", func(e *Event) { e.OccurredAt = time.Time{} }, "occurred_at"},
		{"recipient not an address", func(e *Event) { e.Recipient = "nobody" }, "recipient"},
		{"recipient empty", func(e *Event) { e.Recipient = "  " }, "recipient"},
		{"recipient space in local part", func(e *Event) { e.Recipient = "a b@example.com" }, "recipient"},
		{"bad sender", func(e *Event) { e.Sender = "x@" }, "sender"},
		{"reply code out of range", func(e *Event) { e.Reply.Code = 999 }, "reply.code"},
		{"tenant with brace", func(e *Event) { e.Tenant = "a}b" }, "tenant"},
		// The pair that shared one Redis key before tenants were a closed set.
		{"tenant with colon and quote", func(e *Event) { e.Tenant = `acme:"` }, "tenant"},
		{"tenant with space", func(e *Event) { e.Tenant = "ac me" }, "tenant"},
		{"tenant too long", func(e *Event) { e.Tenant = strings.Repeat("t", MaxTenantLen+1) }, "tenant"},
		{"huge text", func(e *Event) { e.Reply.Text = strings.Repeat("x", maxTextLen+1) }, "reply.text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := validEvent()
			tt.edit(&e)
			err := e.Normalize()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Normalize() = %v, want a *FieldError", err)
			}
			if fe.Field != tt.field {
				t.Fatalf("field = %q (%v), want %q", fe.Field, err, tt.field)
			}
		})
	}
}

func TestNormalizeAddress(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want, err string }{
		{"user@example.com", "user@example.com", ""},
		{"<User@EXAMPLE.com>", "User@example.com", ""},
		{"user@bücher.example", "user@xn--bcher-kva.example", ""},
		{"user@Example.com.", "user@example.com", ""},
		{"\"a@b\"@example.com", "\"a@b\"@example.com", ""},
		{"user@[192.0.2.1]", "user@[192.0.2.1]", ""},
		{"@example.com", "", "not an email address"},
		{"user@", "", "not an email address"},
		{"user@localhost", "", "no dot"},
		{"user@.example.com", "", "empty label"},
		{"user@example..com", "", "empty label"},
		{"(comment)user@example.com", "", "not allowed in an unquoted local part"},
		{"user@exa mple.com", "", "bad domain"},
		{"user@exa_mple!.com", "", "not allowed in a host name"},
		{"", "", "required"},
		{strings.Repeat("a", 250) + "@example.com", "", "longer than"},
	}
	for _, tt := range tests {
		got, err := NormalizeAddress(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("NormalizeAddress(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeAddress(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	e := validEvent()
	e.ESPVerdict = map[string]string{"bounceType": "Permanent"}
	if err := e.Normalize(); err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got.ID != e.ID || got.Recipient != e.Recipient || got.Reply != e.Reply || !got.OccurredAt.Equal(e.OccurredAt) || got.ESPVerdict["bounceType"] != "Permanent" {
		t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", got, e)
	}
}

func TestDecodeStrictRefusesUnknownFields(t *testing.T) {
	t.Parallel()
	_, err := DecodeStrict([]byte(`{"id":"generic:1","esp":"generic","type":"bounce","occurred_at":"2026-11-26T10:00:00Z","recipent":"a@example.com"}`))
	if !errors.Is(err, ErrUndecodable) || !strings.Contains(err.Error(), "recipent") {
		t.Fatalf("DecodeStrict error = %v, want it to name the unknown field", err)
	}
	if _, err := Decode([]byte(`{"id":"generic:1","esp":"generic","type":"bounce","occurred_at":"2026-11-26T10:00:00Z","recipient":"a@example.com","future":1}`)); err != nil {
		t.Fatalf("Decode should ignore unknown fields from newer producers: %v", err)
	}
	if _, err := Decode([]byte(`not json`)); !errors.Is(err, ErrUndecodable) {
		t.Fatalf("Decode(garbage) = %v, want ErrUndecodable", err)
	}
}

func TestReplyString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		r    Reply
		want string
	}{
		{Reply{Code: 550, Enhanced: "5.1.1", Text: "550 5.1.1 user unknown"}, "550 5.1.1 user unknown"},
		{Reply{Code: 550, Enhanced: "5.1.1", Text: "user unknown"}, "550 5.1.1 user unknown"},
		{Reply{Enhanced: "5.1.1"}, "5.1.1"},
		{Reply{Code: 550, Enhanced: "5.1.1", Text: "smtp;550 5.1.1 user unknown"}, "smtp;550 5.1.1 user unknown"},
		{Reply{Code: 550, Enhanced: "5.2.1", Text: "5.2.1 The account is disabled"}, "5.2.1 The account is disabled"},
		{Reply{}, ""},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestNamesValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultNames().Validate(); err != nil {
		t.Fatalf("default names invalid: %v", err)
	}
	n := DefaultNames()
	n.SubjectPrefix = "a.>"
	if err := n.Validate(); err == nil || !strings.Contains(err.Error(), "REBOUND_SUBJECT_PREFIX") {
		t.Fatalf("Validate = %v, want it to name REBOUND_SUBJECT_PREFIX", err)
	}
	n = DefaultNames()
	n.Stream = "A.B"
	if err := n.Validate(); err == nil || !strings.Contains(err.Error(), "REBOUND_STREAM") {
		t.Fatalf("Validate = %v, want it to name REBOUND_STREAM", err)
	}
}

func FuzzDecodeStrict(f *testing.F) {
	f.Add([]byte(`{"id":"generic:1","esp":"generic","type":"bounce","occurred_at":"2026-11-26T10:00:00Z","recipient":"a@example.com","reply":{"code":550,"text":"550 5.1.1 x"}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"recipient":"<@>"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeStrict(data)
		if err != nil {
			return
		}
		// A valid event must survive its own round trip and stay valid.
		b, err := Marshal(&e)
		if err != nil {
			t.Fatalf("Marshal of a valid event: %v", err)
		}
		again, err := Decode(b)
		if err != nil {
			t.Fatalf("re-decoding a valid event failed: %v", err)
		}
		if again.Recipient != e.Recipient || again.ID != e.ID {
			t.Fatalf("normalisation is not idempotent: %q -> %q", e.Recipient, again.Recipient)
		}
	})
}

func FuzzNormalizeAddress(f *testing.F) {
	for _, s := range []string{"a@example.com", "<A@B.C>", "x@bücher.example", "@", "a@@b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeAddress(s)
		if err != nil {
			return
		}
		again, err := NormalizeAddress(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", s, got, again, err)
		}
	})
}

// FuzzPlainHostMatchesIDNA checks the ASCII fast path of NormalizeAddress against the
// IDNA mapping it skips: for every plain ASCII domain both must agree.
func FuzzPlainHostMatchesIDNA(f *testing.F) {
	for _, s := range []string{"example.com", "Example.COM", "-bad.com", "a--b.com", "x.y", "a-.com", "1.2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, d string) {
		if !plainHost(d) {
			return
		}
		fast, fastErr := NormalizeAddress("u@" + d)
		slow := ""
		a, slowErr := idnaProfile.ToASCII(d)
		if slowErr == nil {
			slow, slowErr = NormalizeAddress("u@" + strings.ToLower(a))
		}
		if (fastErr == nil) != (slowErr == nil) || fast != slow {
			t.Fatalf("domain %q: fast path %q, %v; IDNA %q, %v", d, fast, fastErr, slow, slowErr)
		}
	})
}

// FuzzDecodeMatchesEncodingJSON holds the fast decoder (goccy/go-json) equal to
// encoding/json wherever it answers.
func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	f.Add([]byte(`{"id":"generic:1","esp":"generic","type":"bounce","occurred_at":"2026-11-26T10:00:00Z","recipient":"a@example.com","reply":{"code":550,"enhanced":"5.1.1","text":"550 \u003ca@b.c\u003e \"q\" \\ \n é \ud83d\ude00"},"esp_verdict":{"k":"v"},"provider_suppressed":true}`))
	f.Add([]byte(`{"id":"x","reply":{}}`))
	f.Add([]byte(`{"esp_verdict":{}, "sender" : "s" }`))
	f.Add([]byte(`{"reply":{"code":0}}`))
	f.Add([]byte(`{"ID":"x","Reply":{"Code":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast Event
		if gojson.Unmarshal(data, &fast) != nil {
			return
		}
		var slow Event
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("fast decoder accepted what encoding/json refuses (%v): %q", err, data)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast %+v\nslow %+v\ninput %q", fast, slow, data)
		}
	})
}

func TestDecodeTakesWhatMarshalWrites(t *testing.T) {
	t.Parallel()
	e := validEvent()
	e.Reply.Text = "550 5.1.1 <dave@example.com>: \"quoted\" & more\ttab é"
	e.ESPVerdict = map[string]string{"bounceType": "Permanent"}
	e.ProviderSuppressed = true
	if err := e.Normalize(); err != nil {
		t.Fatal(err)
	}
	b, _ := Marshal(&e)
	var got Event
	if err := gojson.Unmarshal(b, &got); err != nil {
		t.Fatalf("the fast decoder refused Marshal's own output (%v): %s", err, b)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("fast decode = %+v, want %+v", got, e)
	}
}

// FuzzDecodeRoundTrip builds events with arbitrary field values, encodes them as
// Marshal does and checks the fast decoder reads back what encoding/json reads back.
func FuzzDecodeRoundTrip(f *testing.F) {
	f.Add("550 <a@b.c> \"q\" \\ é \u2028", "id-1", "k", "v", 550, true)
	f.Add("\x00\x1f\xff\xfe", "", "", "", 0, false)
	f.Fuzz(func(t *testing.T, text, id, vk, vv string, code int, ps bool) {
		e := Event{ID: "generic:" + id, ESP: "generic", Type: TypeBounce, ProviderSuppressed: ps,
			OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Recipient: id + "@example.com",
			Reply: Reply{Code: code, Text: text}, ESPVerdict: map[string]string{vk: vv}}
		b, err := json.Marshal(&e)
		if err != nil {
			return
		}
		var slow, fast Event
		if err := json.Unmarshal(b, &slow); err != nil {
			t.Fatal(err)
		}
		if err := gojson.Unmarshal(b, &fast); err != nil {
			t.Fatalf("fast decoder refused encoding/json's output (%v): %s", err, b)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast %+v\nslow %+v", fast, slow)
		}
	})
}
