package transfer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// want is what one fixture line must read as: the address and kind, or a rejection
// whose reason contains err.
type want struct {
	line int
	addr string
	kind Kind
	at   string // RFC 3339 first-seen time, "" to skip
	err  string
}

func readAll(t *testing.T, name string, format Format) ([]Item, *Reader) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r := NewReader(f, format)
	var items []Item
	for {
		it, ok := r.Next()
		if !ok {
			return items, r
		}
		items = append(items, it)
	}
}

func TestReadESPShapes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		file   string
		source string
		want   []want
	}{
		{"ses-list.json", "ses", []want{
			{1, "gone.reader@example.com", KindBounce, "2026-03-14T09:26:53.589Z", ""},
			{2, "Angry.Reader@example.test", KindComplaint, "2026-03-14T09:26:53.5Z", ""},
			{3, "", "", "", "address"},
			{4, "", "", "", "want BOUNCE or COMPLAINT"},
		}},
		{"ses-list.csv", "ses", []want{
			{2, "gone.reader@example.com", KindBounce, "", ""},
			{3, "angry.reader@example.test", KindComplaint, "", ""},
			{4, "", "", "", "address: required"},
			{5, "", "", "", "not a time"},
		}},
		{"sendgrid-bounces.csv", "sendgrid", []want{
			{2, "nobody.home@example.com", KindBounce, "2026-02-01T10:15:00Z", ""},
			{3, "full.box@example.net", KindBounce, "", ""},
			{4, "blocked.sender@example.com", KindBounce, "", ""},
			{5, "disabled.account@example.test", KindBounce, "2026-02-01T10:00:00Z", ""},
			{6, "", "", "", "address"},
			{7, "", "", "", "2 columns, the header has 4"},
		}},
		{"sendgrid-bounces.json", "sendgrid", []want{
			{1, "nobody.home@example.com", KindBounce, "2026-02-01T10:00:00Z", ""},
			{2, "greylisted@example.com", KindBounce, "", ""},
		}},
		{"sendgrid-spam-reports.csv", "sendgrid", []want{
			{2, "complainer.one@example.com", KindComplaint, "2026-02-03T08:00:00Z", ""},
			{3, "complainer.two@example.test", KindComplaint, "2026-02-03T08:00:00Z", ""},
		}},
		{"sendgrid-unsubscribes.csv", "sendgrid", []want{
			{2, "stop.please@example.com", KindUnsubscribe, "", ""},
			{3, "enough@example.net", KindUnsubscribe, "", ""},
		}},
		{"postmark-suppressions.json", "postmark", []want{
			{1, "hard.bounce@example.com", KindBounce, "2026-01-05T21:33:54.907Z", ""},
			{2, "spam.button@example.com", KindComplaint, "", ""},
			{3, "clicked.unsubscribe@example.test", KindUnsubscribe, "", ""},
			{4, "support.added@example.test", KindManual, "", ""},
			{5, "", "", "", "SuppressionReason"},
		}},
		{"postmark-suppressions.csv", "postmark", []want{
			{2, "hard.bounce@example.com", KindBounce, "2026-01-05T21:33:54Z", ""},
			{3, "support.added@example.test", KindManual, "", ""},
		}},
		{"mailgun-bounces.csv", "mailgun", []want{
			{2, "no.such.user@example.com", KindBounce, "2026-03-13T10:02:55Z", ""},
			{3, "mailgun.full@example.net", KindBounce, "", ""},
			{4, "bare.bounce@example.test", KindBounce, "", ""},
		}},
		{"mailgun-bounces.json", "mailgun", []want{
			{1, "no.such.user@example.com", KindBounce, "2026-03-13T10:02:55Z", ""},
		}},
		{"mailgun-complaints.csv", "mailgun", []want{
			{2, "reported.us@example.com", KindComplaint, "2026-03-14T11:00:00Z", ""},
		}},
		{"mailgun-unsubscribes.csv", "mailgun", []want{
			{2, "left.the.list@example.com", KindUnsubscribe, "", ""},
			{3, "", "", "", "tags \"newsletter\" only"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			items, r := readAll(t, tc.file, FormatAuto)
			if r.Err() != nil {
				t.Fatalf("reading stopped: %v", r.Err())
			}
			if len(items) != len(tc.want) {
				t.Fatalf("read %d items, want %d: %+v", len(items), len(tc.want), items)
			}
			for i, w := range tc.want {
				it := items[i]
				if it.Line != w.line {
					t.Errorf("item %d: line %d, want %d", i, it.Line, w.line)
				}
				if w.err != "" {
					if it.Err == nil || !strings.Contains(it.Err.Error(), w.err) {
						t.Errorf("line %d: error %v, want one containing %q", w.line, it.Err, w.err)
					}
					continue
				}
				if it.Err != nil {
					t.Errorf("line %d: %v", w.line, it.Err)
					continue
				}
				e := it.Entry
				if e.Address != w.addr || e.Kind != w.kind || e.Source != tc.source {
					t.Errorf("line %d: %s %s %s, want %s %s %s", w.line, e.Address, e.Kind, e.Source, w.addr, w.kind, tc.source)
				}
				if w.at != "" && e.FirstSeen.Format(time.RFC3339Nano) != w.at {
					t.Errorf("line %d: first seen %s, want %s", w.line, e.FirstSeen.Format(time.RFC3339Nano), w.at)
				}
			}
		})
	}
}

func TestReadFormatsAndBrokenInput(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		format   Format
		items    int    // items read
		errs     int    // of which rejected
		stopped  string // Reader.Err, "" for none
	}{
		{"ndjson", `{"address":"a@example.com","reason":"manual","class":"manual","first_seen":"2026-01-01T00:00:00Z"}` + "\n\n" + `{"email":"b@example.com","created":1}` + "\nnot json\n", FormatAuto, 3, 1, ""},
		{"one-line document", `{"Suppressions":[{"EmailAddress":"a@example.com","SuppressionReason":"HardBounce"}]}`, FormatAuto, 1, 0, ""},
		{"csv without address column", "name,when\nx,y\n", FormatAuto, 0, 0, "no address column"},
		{"json document broken midway", `[{"email":"a@example.com","created":1},{"email":`, FormatJSON, 1, 0, "unreadable"},
		{"json object without a list", `{"Other":[]}`, FormatJSON, 0, 0, "want an array"},
		{"empty", "", FormatAuto, 0, 0, ""},
		{"csv with an unclosed quote", "email,created\na@example.com,\"2026-02-04\nb@example.com,2026-02-04\nc@example.com,2026-02-04\n", FormatAuto, 3, 1, ""},
		{"csv quote never closed", "email,created\n" + strings.Repeat("x@example.com,\"1\n", 3) + strings.Repeat("d@example.com,1\n", 30), FormatAuto, 32, 2, ""},
		{"csv with a multi-line field", "email,created,reason,status\na@example.com,1,\"550 5.1.1 two\nlines\",5.1.1\nb@example.com,1,x,5.1.1\n", FormatAuto, 2, 0, ""},
		{"csv with BOM and CRLF", "\ufeffemail,created\r\nc@example.com,2026-02-04 12:00:00\r\n", FormatAuto, 1, 0, ""},
		{"json element too large", `[{"email":"a@example.com","created":1},{"email":"` + strings.Repeat("x", 2*maxElement) + `@example.com"},{"email":"c@example.com","created":1}]`, FormatJSON, 1, 0, "larger than"},
		{"json value skipped too large", `{"Other":"` + strings.Repeat("x", 2*maxElement) + `","items":[{"email":"a@example.com","created":1}]}`, FormatJSON, 0, 0, "want an array"},
		{"json document of many small elements", "[" + strings.Repeat(`{"email":"a@example.com","created":1},`, 20000) + `{"email":"b@example.com","created":1}]`, FormatJSON, 20001, 0, ""},
		{"long ndjson line", `{"email":"` + strings.Repeat("x", maxLine) + `@example.com"}` + "\n" + `{"email":"d@example.com","created":"2026-01-01"}`, FormatNDJSON, 2, 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := NewReader(strings.NewReader(tc.in), tc.format)
			n, errs := 0, 0
			for {
				it, ok := r.Next()
				if !ok {
					break
				}
				n++
				if it.Err != nil {
					errs++
				}
			}
			if n != tc.items || errs != tc.errs {
				t.Fatalf("read %d items (%d rejected), want %d (%d)", n, errs, tc.items, tc.errs)
			}
			if tc.stopped == "" && r.Err() != nil || tc.stopped != "" && (r.Err() == nil || !strings.Contains(r.Err().Error(), tc.stopped)) {
				t.Fatalf("Err() = %v, want %q", r.Err(), tc.stopped)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"2026-03-14T09:26:53.589000+00:00": "2026-03-14T09:26:53.589Z",
		"1773480413":                       "2026-03-14T09:26:53Z",
		"1773480413.25":                    "2026-03-14T09:26:53.25Z",
		"1773480413250":                    "2026-03-14T09:26:53.25Z",
		"Fri, 13 Mar 2026 10:02:55 UTC":    "2026-03-13T10:02:55Z",
		"Fri, 13 Mar 2026 10:02:55 +0100":  "2026-03-13T09:02:55Z",
		"2026-02-01 10:15:00":              "2026-02-01T10:15:00Z",
		"2026-02-01":                       "2026-02-01T00:00:00Z",
	} {
		got, err := parseTime(in)
		if err != nil || got.Format(time.RFC3339Nano) != want {
			t.Errorf("parseTime(%q) = %s, %v; want %s", in, got.Format(time.RFC3339Nano), err, want)
		}
	}
	for _, bad := range []string{"", "NaN", "-5", "1e400", "yesterday", "0001-01-01T00:00:00Z"} {
		if _, err := parseTime(bad); err == nil {
			t.Errorf("parseTime(%q) accepted", bad)
		}
	}
}
