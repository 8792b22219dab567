package transfer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzReader feeds arbitrary files to the reader in every format: it must never panic
// nor loop, every item it returns is an entry with a usable address or a rejection
// with a reason, and line numbers only grow.
func FuzzReader(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.*"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil && !strings.HasSuffix(name, ".md") {
			f.Add(b, uint8(0))
		}
	}
	f.Add([]byte(`{"address":"a@example.com","reason":"x","class":"y","expires_at":"2026-01-01T00:00:00Z"}`), uint8(1))
	f.Add([]byte("email,created\n\"a@example.com,1\n"), uint8(2))
	f.Add([]byte(`{"items":[{"address":"a@example.com","tags":["a","b"]}]}`), uint8(3))
	formats := []Format{FormatAuto, FormatNDJSON, FormatCSV, FormatJSON}
	f.Fuzz(func(t *testing.T, data []byte, fm uint8) {
		r := NewReader(strings.NewReader(string(data)), formats[int(fm)%len(formats)])
		last := 0
		for n := 0; ; n++ {
			if n > len(data)+1 {
				t.Fatalf("more items (%d) than input bytes", n)
			}
			it, ok := r.Next()
			if !ok {
				break
			}
			if it.Line < last {
				t.Fatalf("line %d after line %d", it.Line, last)
			}
			last = it.Line
			if it.Err != nil {
				if it.Err.Error() == "" {
					t.Fatal("rejection without a reason")
				}
				continue
			}
			if it.Entry.Address == "" || it.Entry.Kind == "" || it.Entry.Source == "" {
				t.Fatalf("entry without address, kind or source: %+v", it.Entry)
			}
		}
	})
}

// FuzzParseTime: any string either parses to a time after 1970 or is refused.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"1773480413.5", "2026-03-14T09:26:53.589000+00:00", "Fri, 13 Mar 2026 10:02:55 UTC", "2026-02-01 10:15:00", "1e3", "-0", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := parseTime(s)
		if err == nil && tm.Before(time.Unix(0, 0)) {
			t.Fatalf("parseTime(%q) = %s, before 1970", s, tm)
		}
	})
}
