package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/alert/receiver/receivertest"
)

const (
	pathToken   = "SECRETTOKEN123"
	hmacSecret  = "s3cr3t-hmac-key-9f8e7d"
	headerToken = "Bearer HEADERTOKEN456"
)

func notifications() []receiver.Notification {
	trigger := receivertest.Sample()
	reminder := receivertest.Sample()
	reminder.Kind, reminder.Seq, reminder.State = receiver.KindReminder, 2, "notified"
	ack := receivertest.Sample()
	ack.Kind, ack.Seq, ack.AckedBy = receiver.KindAck, 3, "alice@example.com"
	return []receiver.Notification{trigger, reminder, ack, receivertest.Resolved()}
}

func TestSendRequest(t *testing.T) {
	t.Parallel()
	for _, note := range notifications() {
		t.Run(string(note.Kind), func(t *testing.T) {
			t.Parallel()
			srv := receivertest.NewServer(t)
			n := New(Config{
				URL:     srv.URL + "/hook/" + pathToken,
				Secret:  hmacSecret,
				Headers: map[string]string{"authorization": headerToken},
			}, nil)
			before := time.Now().Unix()
			if err := n.Send(context.Background(), note); err != nil {
				t.Fatalf("Send: %v", err)
			}
			after := time.Now().Unix()
			r := srv.Last(t)

			if r.Method != http.MethodPost {
				t.Errorf("method = %s, want POST", r.Method)
			}
			if r.Path != "/hook/"+pathToken {
				t.Errorf("path = %q", r.Path)
			}
			headers := map[string]string{
				"Content-Type":       "application/json",
				"Authorization":      headerToken,
				"X-Rebound-Delivery": note.ID + "-" + strconv.FormatInt(note.Seq, 10),
				"User-Agent":         "rebound-alert/1",
			}
			for k, want := range headers {
				if got := r.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			ts, err := strconv.ParseInt(r.Header.Get("X-Rebound-Timestamp"), 10, 64)
			if err != nil || ts < before || ts > after {
				t.Errorf("X-Rebound-Timestamp = %q, want unix seconds in [%d, %d]", r.Header.Get("X-Rebound-Timestamp"), before, after)
			}
			if got, want := r.Header.Get("X-Rebound-Signature"), Sign([]byte(hmacSecret), r.Header.Get("X-Rebound-Timestamp"), r.Body); got != want {
				t.Errorf("X-Rebound-Signature = %q, want %q", got, want)
			}

			var body struct {
				Version  string                `json:"version"`
				Kind     string                `json:"kind"`
				Incident receiver.Notification `json:"incident"`
			}
			dec := json.NewDecoder(strings.NewReader(string(r.Body)))
			dec.DisallowUnknownFields() // the envelope has exactly these three fields
			if err := dec.Decode(&body); err != nil {
				t.Fatalf("body: %v\n%s", err, r.Body)
			}
			if body.Version != "1" {
				t.Errorf("version = %q", body.Version)
			}
			if want := "rebound.incident." + string(note.Kind); body.Kind != want {
				t.Errorf("kind = %q, want %q", body.Kind, want)
			}
			if !reflect.DeepEqual(body.Incident, note) {
				t.Errorf("incident round trip:\n got %+v\nwant %+v", body.Incident, note)
			}
		})
	}
}

// The consumer needs no more than what it received to verify it, and every way of
// tampering with a delivery fails.
func TestVerify(t *testing.T) {
	t.Parallel()
	srv := receivertest.NewServer(t)
	if err := New(Config{URL: srv.URL, Secret: hmacSecret}, nil).Send(context.Background(), receivertest.Sample()); err != nil {
		t.Fatal(err)
	}
	r := srv.Last(t)
	sec, _ := strconv.ParseInt(r.Header.Get("X-Rebound-Timestamp"), 10, 64)
	sent := time.Unix(sec, 0)
	const tolerance = 5 * time.Minute

	withHeader := func(k, v string) http.Header {
		h := r.Header.Clone()
		h.Set(k, v)
		return h
	}
	without := func(k string) http.Header {
		h := r.Header.Clone()
		h.Del(k)
		return h
	}
	changed := append([]byte(nil), r.Body...)
	changed[len(changed)-2] ^= 1

	cases := []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		now    time.Time
		ok     bool
	}{
		{"as received", hmacSecret, r.Header, r.Body, sent, true},
		{"late within tolerance", hmacSecret, r.Header, r.Body, sent.Add(tolerance), true},
		{"early within tolerance (clock skew)", hmacSecret, r.Header, r.Body, sent.Add(-tolerance), true},
		{"upper-case hex", hmacSecret, withHeader("X-Rebound-Signature", "v1="+strings.ToUpper(strings.TrimPrefix(r.Header.Get("X-Rebound-Signature"), "v1="))), r.Body, sent, true},
		{"one of several signatures", hmacSecret, withHeader("X-Rebound-Signature", "v1=00ff, "+r.Header.Get("X-Rebound-Signature")+",v2=zz"), r.Body, sent, true},
		{"wrong secret", "another-secret", r.Header, r.Body, sent, false},
		{"empty secret", "", r.Header, r.Body, sent, false},
		{"changed body", hmacSecret, r.Header, changed, sent, false},
		{"empty body", hmacSecret, r.Header, nil, sent, false},
		{"replayed after tolerance", hmacSecret, r.Header, r.Body, sent.Add(tolerance + time.Second), false},
		{"from the future", hmacSecret, r.Header, r.Body, sent.Add(-tolerance - time.Second), false},
		{"zero tolerance, a second late", hmacSecret, r.Header, r.Body, sent.Add(time.Second), false},
		{"timestamp moved into the window", hmacSecret, withHeader("X-Rebound-Timestamp", strconv.FormatInt(sec+1, 10)), r.Body, sent, false},
		{"no timestamp", hmacSecret, without("X-Rebound-Timestamp"), r.Body, sent, false},
		{"signed timestamp", hmacSecret, withHeader("X-Rebound-Timestamp", "+"+r.Header.Get("X-Rebound-Timestamp")), r.Body, sent, false},
		{"no signature", hmacSecret, without("X-Rebound-Signature"), r.Body, sent, false},
		{"unversioned signature", hmacSecret, withHeader("X-Rebound-Signature", strings.TrimPrefix(r.Header.Get("X-Rebound-Signature"), "v1=")), r.Body, sent, false},
		{"truncated signature", hmacSecret, withHeader("X-Rebound-Signature", r.Header.Get("X-Rebound-Signature")[:20]), r.Body, sent, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tol := tolerance
			if strings.HasPrefix(c.name, "zero tolerance") {
				tol = 0
			}
			err := Verify([]byte(c.secret), c.header, c.body, c.now, tol)
			if (err == nil) != c.ok {
				t.Errorf("Verify = %v, want ok %v", err, c.ok)
			}
		})
	}
}

// A fixed vector, so a consumer in another language can check its implementation.
func TestSignVector(t *testing.T) {
	t.Parallel()
	got := Sign([]byte("whsec_test"), "1796029200", []byte(`{"a":1}`))
	const want = "v1=ea4a45578ddff5b19736089acbbf6d67c57cc559378c707fb4bb62552a21e504"
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestUnsigned(t *testing.T) {
	t.Parallel()
	srv := receivertest.NewServer(t)
	if err := New(Config{URL: srv.URL}, nil).Send(context.Background(), receivertest.Sample()); err != nil {
		t.Fatal(err)
	}
	r := srv.Last(t)
	if v, ok := r.Header["X-Rebound-Signature"]; ok {
		t.Errorf("unsigned delivery carries X-Rebound-Signature %q", v)
	}
	for _, k := range []string{"X-Rebound-Timestamp", "X-Rebound-Delivery"} {
		if r.Header.Get(k) == "" {
			t.Errorf("unsigned delivery lacks %s", k)
		}
	}
}

func TestUnknownKind(t *testing.T) {
	t.Parallel()
	srv := receivertest.NewServer(t)
	note := receivertest.Sample()
	note.Kind = "escalate"
	err := New(Config{URL: srv.URL}, nil).Send(context.Background(), note)
	if err == nil || receiver.Retryable(err) || receiver.ReasonOf(err) != "encode" {
		t.Errorf("unknown kind: err = %v, want a non-retryable encode error", err)
	}
	if len(srv.Requests()) != 0 {
		t.Error("an unknown kind was sent")
	}
}

func build(u string) receiver.Receiver {
	return New(Config{
		URL:     u + "/hook/" + pathToken,
		Secret:  hmacSecret,
		Headers: map[string]string{"Authorization": headerToken},
	}, nil)
}

func TestRetryCases(t *testing.T) {
	t.Parallel()
	receivertest.RetryCases(t, build)
}

func TestNoSecretInErrors(t *testing.T) {
	t.Parallel()
	receivertest.NoSecretInErrors(t, build, pathToken, hmacSecret, "HEADERTOKEN456")
}

func TestPrepare(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const hookURL = "https://hooks.example.com/hook/" + pathToken
	write("url", hookURL+"\n")
	write("secret", hmacSecret+"\n")
	write("empty", "\n")

	cases := []struct {
		name    string
		in      Config
		want    Config // compared when wantErr is empty
		wantErr string // a substring of the error
	}{
		{
			name: "inline",
			in:   Config{URL: hookURL, Secret: hmacSecret, Headers: map[string]string{"Authorization": headerToken}},
			want: Config{URL: hookURL, Secret: hmacSecret, Headers: map[string]string{"Authorization": headerToken}},
		},
		{
			name: "no secret means unsigned",
			in:   Config{URL: hookURL},
			want: Config{URL: hookURL},
		},
		{
			name: "files relative to baseDir",
			in:   Config{URLFile: "url", SecretFile: "secret"},
			want: Config{URL: hookURL, Secret: hmacSecret},
		},
		{
			name: "absolute file",
			in:   Config{URLFile: filepath.Join(dir, "url")},
			want: Config{URL: hookURL},
		},
		{name: "url missing", in: Config{Secret: hmacSecret}, wantErr: "url (or url_file): required"},
		{name: "url and url_file", in: Config{URL: hookURL, URLFile: "url"}, wantErr: "url and url_file are both set"},
		{name: "secret and secret_file", in: Config{URL: hookURL, Secret: hmacSecret, SecretFile: "secret"}, wantErr: "secret and secret_file are both set"},
		{name: "secret_file empty", in: Config{URL: hookURL, SecretFile: "empty"}, wantErr: "secret_file: the file is empty"},
		{name: "url_file missing", in: Config{URLFile: "nope"}, wantErr: "url_file:"},
		{name: "bad scheme", in: Config{URL: "ftp://hooks.example.com/hook/" + pathToken}, wantErr: "url: not an http(s) URL"},
		{name: "no host", in: Config{URL: "https:///hook/" + pathToken}, wantErr: "url: not an http(s) URL"},
		{name: "unparsable", in: Config{URL: "https://hooks.example.com/%zz/" + pathToken}, wantErr: "url: not an http(s) URL"},
		{name: "bad url from file", in: Config{URLFile: "secret"}, wantErr: "url_file: not an http(s) URL"},
		{name: "header name", in: Config{URL: hookURL, Headers: map[string]string{"Bad Name": headerToken}}, wantErr: `headers: "Bad Name" is not a valid header name`},
		{name: "reserved header", in: Config{URL: hookURL, Headers: map[string]string{"x-rebound-signature": "v1=00"}}, wantErr: "set by Rebound"},
		{name: "content type", in: Config{URL: hookURL, Headers: map[string]string{"Content-Type": "text/plain"}}, wantErr: "set by Rebound"},
		{name: "header twice", in: Config{URL: hookURL, Headers: map[string]string{"Authorization": headerToken, "authorization": headerToken}}, wantErr: "set twice"},
		{name: "header value with newline", in: Config{URL: hookURL, Headers: map[string]string{"Authorization": headerToken + "\r\nX-Evil: 1"}}, wantErr: "line break"},
		{name: "empty header value", in: Config{URL: hookURL, Headers: map[string]string{"Authorization": " "}}, wantErr: "empty value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := c.in
			err := got.Prepare(dir)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				for _, s := range []string{pathToken, hmacSecret, "HEADERTOKEN456", "hooks.example.com"} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q leaks %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("prepared = %+v, want %+v", got, c.want)
			}
			// Prepare's output is a valid input: a reload may prepare twice.
			again := got
			if err := again.Prepare(dir); err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("second Prepare = %+v, %v", again, err)
			}
		})
	}
}

func TestShortcut(t *testing.T) {
	t.Parallel()
	c := Shortcut(" https://hooks.example.com/hook/" + pathToken + "\n")
	if err := c.Prepare(""); err != nil {
		t.Fatal(err)
	}
	want := Config{URL: "https://hooks.example.com/hook/" + pathToken}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Shortcut = %+v, want %+v", c, want)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte("whsec_test"), "1796029200", "v1=ea4a45578ddff5b19736089acbbf6d67c57cc559378c707fb4bb62552a21e504", []byte(`{"a":1}`), int64(1796029200), int64(300))
	f.Add([]byte("k"), "999999999999", "v1=,v1=zz, v2=00", []byte{}, int64(-1<<63), int64(-1))
	f.Add([]byte{}, "", "", []byte(nil), int64(0), int64(1<<62))
	f.Add([]byte("k"), "-1", "v1=00\x00", []byte("\xff"), int64(1<<62), int64(1<<63-1))
	f.Fuzz(func(t *testing.T, secret []byte, ts, sig string, body []byte, nowUnix, tolNanos int64) {
		h := http.Header{}
		h["X-Rebound-Timestamp"] = []string{ts}
		h["X-Rebound-Signature"] = []string{sig}
		now := time.Unix(nowUnix, 0)
		_ = Verify(secret, h, body, now, time.Duration(tolNanos))

		// What Sign produces for a well-formed timestamp always verifies at that instant.
		if sec, ok := parseTimestamp(ts); ok && len(secret) > 0 {
			h.Set("X-Rebound-Signature", Sign(secret, ts, body))
			if err := Verify(secret, h, body, time.Unix(sec, 0), 0); err != nil {
				t.Errorf("own signature refused: %v", err)
			}
		}
	})
}

// The keys are the documented ones: the loader decodes strictly, so a renamed tag
// would break every configuration that uses it.
func TestYAMLKeys(t *testing.T) {
	t.Parallel()
	const doc = `
url: https://hooks.example.com/in
url_file: ""
secret: s
secret_file: ""
headers: {Authorization: Bearer t}
`
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	want := Config{URL: "https://hooks.example.com/in", Secret: "s", Headers: map[string]string{"Authorization": "Bearer t"}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("decoded %+v, want %+v", c, want)
	}
}
