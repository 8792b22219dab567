package suppress

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strconv"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// FuzzPackMatchesLibraries holds the hand-written argument packers to maintained
// codecs: what msgpackCodec.pack writes, github.com/vmihailenco/msgpack reads back as the
// same strings, one value after the other and nothing more; what jsonCodec.pack writes, encoding/json reads back as encoding/json's own
// encoding of them would be read.
func FuzzPackMatchesLibraries(f *testing.F) {
	f.Add("550 \"quoted\" \\ é \x01", "", 7, int64(-3), uint16(40))
	f.Add("\xff\xfe<a@b.c>\u2028", "x", 0, int64(1)<<40, uint16(300))
	f.Add("x", "y", -1, int64(-1), uint16(65535))
	f.Fuzz(func(t *testing.T, s1, s2 string, n int, n64 int64, repeat uint16) {
		// Up to 64 KiB: every string header MessagePack has (fixstr, str8, str16, str32).
		size := int(repeat) + 1
		long := make([]byte, 0, size)
		for len(long) < size {
			long = append(long, s1...)
			if len(s1) == 0 {
				long = append(long, 'x')
			}
		}
		long = long[:size]
		args := []any{s1, []byte(s2), n, n64, string(long)}
		want := []string{s1, s2, strconv.Itoa(n), strconv.FormatInt(n64, 10), string(long)}

		var mp []string
		dec := msgpack.NewDecoder(bytes.NewReader(msgpackCodec.pack(args...)))
		for range args {
			s, err := dec.DecodeString()
			if err != nil {
				t.Fatalf("msgpack refused msgpackCodec.pack's output after %d values: %v", len(mp), err)
			}
			mp = append(mp, s)
		}
		if _, err := dec.DecodeInterface(); err != io.EOF {
			t.Fatalf("msgpackCodec.pack wrote more than %d values (%v)", len(args), err)
		}
		if !reflect.DeepEqual(mp, want) {
			t.Fatalf("msgpack read %q, want %q", mp, want)
		}

		var js []string
		if err := json.Unmarshal(jsonCodec.pack(args...), &js); err != nil {
			t.Fatalf("encoding/json refused jsonCodec.pack's output: %v", err)
		}
		ref, _ := json.Marshal(want)
		var wantJS []string
		if err := json.Unmarshal(ref, &wantJS); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(js, wantJS) {
			t.Fatalf("jsonCodec.pack read back %q, encoding/json's own %q", js, wantJS)
		}
	})
}

var packSample = []any{"generic:abc-123", "suppress", int64(1764490000000), int64(7776000000),
	`{"at":1764490000000,"seq":3,"event_id":"generic:abc-123","esp":"generic","action":"suppress","class":"recipient_unknown","reply":"550 5.1.1 user unknown"}`,
	200, int64(0), int64(0), int64(604800000), 3, int64(2592000000), "recipient_unknown", "recipient_unknown", "rfc3463.5.1.1", "5.1.1",
	"550 5.1.1 The email account that you tried to reach does not exist.", "generic", "user12@d42.example", "t7"}

// BenchmarkPackMsgpack: the hand-written packer against the library, on one event's
// recipient-script arguments.
func BenchmarkPackMsgpack(b *testing.B) {
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = msgpackCodec.pack(packSample...)
		}
	})
	b.Run("vmihailenco", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s := make([]string, len(packSample))
			for i, a := range packSample {
				switch v := a.(type) {
				case string:
					s[i] = v
				case int:
					s[i] = strconv.Itoa(v)
				case int64:
					s[i] = strconv.FormatInt(v, 10)
				}
			}
			if _, err := msgpack.Marshal(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
