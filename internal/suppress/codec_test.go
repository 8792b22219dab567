package suppress

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestCodecsAgree applies the same changes through the MessagePack scripts (what Redis
// runs) and the JSON ones (what the demo's stand-in runs) and compares the outcomes.
func TestCodecsAgree(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	mk := func() *Store {
		st := New(rdb, Options{Prefix: testsvc.Prefix(t, rdb), Now: func() time.Time { return now }})
		if err := st.Load(ctx); err != nil {
			t.Fatal(err)
		}
		return st
	}
	mp, js := mk(), mk()
	if mp.scripts != msgpackScripts {
		t.Fatal("Redis has cmsgpack, but Load did not pick it")
	}
	js.scripts = jsonScripts
	if err := jsonScripts.recipient.Load(ctx, rdb).Err(); err != nil {
		t.Fatal(err)
	}
	changes := func() []Change {
		return []Change{
			{EventID: "generic:1", ESP: "generic", Address: "a@example.com", Action: ActionSuppress, Reason: "recipient_unknown", Class: "recipient_unknown", Reply: "550 \"quoted\" \\ é \x01"},
			{EventID: "generic:2", ESP: "generic", Address: "b@example.com", Action: ActionSoft, SoftWindow: time.Hour, SoftThreshold: 1, SoftTTL: time.Hour, Class: "mailbox_full"},
			{EventID: "generic:3", ESP: "generic", Address: "c@example.com", Action: ActionRecord},
			{EventID: "generic:1", ESP: "generic", Address: "a@example.com", Action: ActionSuppress, Reason: "recipient_unknown"},
		}
	}
	a, err := mp.Apply(ctx, changes())
	if err != nil {
		t.Fatal(err)
	}
	b, err := js.Apply(ctx, changes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("msgpack %+v\njson %+v", a, b)
	}
	ra, _ := mp.Suppression(ctx, "", "a@example.com")
	rb, _ := js.Suppression(ctx, "", "a@example.com")
	if ra == nil || rb == nil || ra.Reply != rb.Reply || ra.Reply != "550 \"quoted\" \\ é \x01" {
		t.Fatalf("reply round trip: msgpack %+v, json %+v", ra, rb)
	}
}

func TestPackJSONIsAJSONArrayOfStrings(t *testing.T) {
	t.Parallel()
	var got []string
	if err := json.Unmarshal(jsonCodec.pack("a\"b", []byte("<c>"), 7, int64(-3)), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []string{"a\"b", "<c>", "7", "-3"}) {
		t.Fatalf("jsonCodec.pack decoded = %q", got)
	}
}
