package suppress_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/ingest"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestAddressHashKeyLeavesNoClearAddressInRedis writes every kind of state with a hash
// key configured, then reads every key and value under the prefix.
func TestAddressHashKeyLeavesNoClearAddressInRedis(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	prefix := testsvc.Prefix(t, rdb)
	st := suppress.New(rdb, suppress.Options{Prefix: prefix, AddressHashKey: []byte("0123456789abcdef0123456789abcdef")})
	ctx := context.Background()
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	h := hard("generic:x1", "secret.person@example.com")
	h.Reply = "550 5.1.1 <secret.person@example.com>: user unknown"
	s1, s2, s3 := soft("generic:x2", "full.person@example.com"), soft("generic:x3", "full.person@example.com"), soft("generic:x4", "full.person@example.com")
	inc := suppress.Change{EventID: "generic:x5", ESP: "generic", Address: "other.person@example.com", Action: suppress.ActionRecord,
		Class: "auth_required", Reply: "530 5.7.0 Authentication required for <other.person@example.com>"}
	if _, err := st.Apply(ctx, []suppress.Change{h, s1, s2, s3, inc}); err != nil {
		t.Fatal(err)
	}
	// Held suppressions are protected too: one stays pending, one is held and applied
	// (protected when held and again when applied: Protect is idempotent).
	g := guard.New(guard.Config{Redis: rdb, Prefix: prefix, Store: st})
	mb := policy.MassBounce{Enabled: true, Window: time.Minute, Threshold: 1, HoldFor: time.Hour}
	if _, err := g.Hold(ctx, mb, map[string][]suppress.Change{
		"outage.example":   {hard("generic:x6", "held.person@outage.example")},
		"released.example": {hard("generic:x7", "released.person@released.example")},
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := g.Release(ctx, "released.example", true); err != nil || n != 1 {
		t.Fatalf("Release(apply) = %d, %v", n, err)
	}
	if rec, err := st.Suppression(ctx, "", "released.person@released.example"); err != nil || rec == nil {
		t.Fatalf("released suppression by clear address = %v, %v", rec, err)
	}
	if _, err := st.Remove(ctx, "", "full.person@example.com", "ops", ""); err != nil {
		t.Fatal(err)
	}

	// Look-ups by clear address still work.
	if rec, err := st.Suppression(ctx, "", "secret.person@example.com"); err != nil || rec == nil {
		t.Fatalf("look-up by address with hashing = %v, %v", rec, err)
	}
	if res, _ := st.CheckMany(ctx, "", []string{"secret.person@example.com"}); !res[0].Suppressed {
		t.Fatal("bulk check by address with hashing found nothing")
	}

	var keys []string
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) < 5 {
		t.Fatalf("only %d keys written: the test would prove nothing", len(keys))
	}
	for _, k := range keys {
		dump := k
		switch rdb.Type(ctx, k).Val() {
		case "string":
			dump += rdb.Get(ctx, k).Val()
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				dump += f + v
			}
		case "list":
			dump += strings.Join(rdb.LRange(ctx, k, 0, -1).Val(), "")
		case "zset":
			dump += strings.Join(rdb.ZRange(ctx, k, 0, -1).Val(), "")
		case "set":
			dump += strings.Join(rdb.SMembers(ctx, k).Val(), "")
		}
		if strings.Contains(dump, "person@") {
			t.Errorf("clear-text address in %s: %.200s", k, dump)
		}
	}
}

func TestEventIDHidesAddressesWhenHashing(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	plain := suppress.New(rdb, suppress.Options{Prefix: "unused:"})
	hashed := suppress.New(rdb, suppress.Options{Prefix: "unused:", AddressHashKey: []byte("0123456789abcdef0123456789abcdef")})
	for _, id := range []string{"ses:0100018c-feedback:Ana.Person@Example.com", "resend:msg_123:ana@example.com", "generic:abc"} {
		if got := plain.EventID(id); got != id {
			t.Errorf("without a key EventID(%q) = %q, want it unchanged", id, got)
		}
		got := hashed.EventID(id)
		if strings.Contains(strings.ToLower(got), "example.com") || strings.Contains(got, "Person") {
			t.Errorf("EventID(%q) = %q still names the address", id, got)
		}
		if hashed.EventID(id) != got {
			t.Errorf("EventID(%q) is not stable", id)
		}
	}
	if hashed.EventID("ses:f1:a@example.com") == hashed.EventID("ses:f1:b@example.com") {
		t.Error("two recipients of one SES notification got one ID")
	}
	if got := hashed.EventID("ses:f1:a@example.com"); !strings.HasPrefix(got, "ses:f1:h:") {
		t.Errorf("EventID keeps the ESP and its own ID visible: got %q", got)
	}

	// A composite ID (an ESP without IDs) is an unkeyed hash over fields that include
	// the address: with a key it is hashed again under the key.
	composite := ingest.CompositeID("mailjet", "1152921508740301824", "bounce", "1767225600", "lena.hart@example.net")
	got := hashed.EventID(composite)
	if got == composite || !strings.HasPrefix(got, "mailjet:k") || len(got) != len("mailjet:k")+32 {
		t.Errorf("EventID(composite %q) = %q, want mailjet:k and a keyed digest", composite, got)
	}
	if plain.EventID(composite) != composite {
		t.Error("without a key a composite ID must stay as it is")
	}
	other := suppress.New(rdb, suppress.Options{Prefix: "unused:", AddressHashKey: []byte("another key, another digest......")})
	if other.EventID(composite) == got {
		t.Error("the composite digest does not depend on the key")
	}
	for _, id := range []string{"sendgrid:hello", "x:h" + strings.Repeat("z", 32), "a:b:h" + strings.Repeat("0", 32)} {
		if hashed.EventID(id) != id {
			t.Errorf("EventID(%q) changed an ID that is not composite", id)
		}
	}
}
