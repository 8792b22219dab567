package erasure_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/erasure"
	"github.com/reboundhq/rebound/internal/guard"
	"github.com/reboundhq/rebound/internal/policy"
	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
	"github.com/reboundhq/rebound/internal/transfer"
)

// The person to erase. Every trace of them carries "zqx": the local part, the reply
// texts, the ESP's event IDs. The bystander's data must stay.
const (
	target    = "zqx.private.person@example.com"
	bystander = "other.person@example.com"
)

type bundle struct {
	ctx    context.Context
	rdb    *redis.Client
	prefix string
	store  *suppress.Store
	alerts *alert.Store
	guard  *guard.Guard
}

func setup(t *testing.T, hashKey []byte) bundle {
	t.Helper()
	rdb := testsvc.RedisClient(t)
	prefix := testsvc.Prefix(t, rdb)
	ctx := context.Background()
	st := suppress.New(rdb, suppress.Options{Prefix: prefix, AddressHashKey: hashKey})
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	al := alert.NewStore(rdb, alert.StoreOptions{Prefix: prefix, RecipientKey: hashKey})
	if err := al.Load(ctx); err != nil {
		t.Fatal(err)
	}
	g := guard.New(guard.Config{Redis: rdb, Prefix: prefix, Store: st, Alerts: al})
	if err := g.Load(ctx); err != nil {
		t.Fatal(err)
	}
	return bundle{ctx: ctx, rdb: rdb, prefix: prefix, store: st, alerts: al, guard: g}
}

// history gives both people everything Rebound can hold about a recipient.
func history(t *testing.T, b bundle) {
	t.Helper()
	for _, who := range []string{target, bystander} {
		local := who[:strings.IndexByte(who, '@')]
		changes := []suppress.Change{
			{EventID: b.store.EventID("ses:fb-" + local + ":" + who), ESP: "ses", Tenant: "acme", Address: who, Action: suppress.ActionSoft,
				Class: "mailbox_full", Reply: "452 4.2.2 <" + who + "> mailbox of " + local + " full", SoftWindow: time.Hour, SoftThreshold: 5, SoftTTL: time.Hour},
			{EventID: b.store.EventID("generic:rec-" + local), ESP: "generic", Tenant: "acme", Address: who, Action: suppress.ActionRecord,
				Class: "unknown", Reply: "550 something about " + local},
			{EventID: b.store.EventID("ses:hard-" + local + ":" + who), ESP: "ses", Tenant: "", Address: who, Action: suppress.ActionSuppress,
				Reason: "recipient_unknown", Class: "recipient_unknown", Code: "5.1.1", Reply: "550 5.1.1 <" + who + ">: no mailbox " + local},
			{EventID: b.store.EventID("ses:ten-" + local + ":" + who), ESP: "ses", Tenant: "acme", Address: who, Action: suppress.ActionSuppress,
				Reason: "complaint", Class: "complaint", Reply: "complaint from " + local},
		}
		if _, err := b.store.Apply(b.ctx, changes); err != nil {
			t.Fatal(err)
		}
		// Lifted by hand (removal log), suppressed again, audited.
		if _, err := b.store.Remove(b.ctx, "acme", who, "support", "asked by "+local); err != nil {
			t.Fatal(err)
		}
		if err := b.store.Audit(b.ctx, suppress.AuditEntry{Actor: "support", Action: suppress.AuditSuppressionRemove, Tenant: "acme", Target: who, Reason: "asked by " + local}, true); err != nil {
			t.Fatal(err)
		}
		imp := fmt.Sprintf("email,created,reason,status\n%s,2026-02-01 10:15:00,550 5.1.1 %s unknown here,5.1.1\n", who, local)
		if _, err := transfer.Import(b.ctx, b.store, transfer.NewReader(strings.NewReader(imp), transfer.FormatAuto), transfer.Options{Tenant: "acme"}); err != nil {
			t.Fatal(err)
		}
		// Held by the mass-bounce guard (tenant threshold 1) …
		mb := policy.MassBounce{Enabled: true, Window: time.Hour, Threshold: 1000, TenantThreshold: 1, HoldFor: time.Hour, OnRecovery: "hold"}
		hold := suppress.Change{EventID: b.store.EventID("mg:held-" + local + ":" + who), ESP: "mailgun", Tenant: "acme", EventTenant: "acme", Address: who,
			Action: suppress.ActionSuppress, Reason: "recipient_unknown", Class: "recipient_unknown", Reply: "550 <" + who + "> gone " + local}
		if _, err := b.guard.Hold(b.ctx, mb, map[string][]suppress.Change{"example.com": {hold}}); err != nil {
			t.Fatal(err)
		}
		// … and counted into a sender-side incident whose example names them.
		if _, err := b.alerts.Observe(b.ctx, []alert.Observation{{EventID: "ses:auth-" + local + ":" + who, Tenant: "acme", Class: "auth_failed", Severity: "critical",
			SendingDomain: "sender.example.net", Recipient: who, Code: "535", ESP: "ses", Reply: "535 5.7.8 auth failed while sending to " + who}}); err != nil {
			t.Fatal(err)
		}
	}
}

// dump reads every key under the prefix, its name and its whole value, as text.
func dump(t *testing.T, b bundle) string {
	t.Helper()
	var out strings.Builder
	iter := b.rdb.Scan(b.ctx, 0, b.prefix+"*", 500).Iterator()
	for iter.Next(b.ctx) {
		k := iter.Val()
		typ := b.rdb.Type(b.ctx, k).Val()
		var v any
		switch typ {
		case "string":
			v = b.rdb.Get(b.ctx, k).Val()
		case "hash":
			v = b.rdb.HGetAll(b.ctx, k).Val()
		case "list":
			v = b.rdb.LRange(b.ctx, k, 0, -1).Val()
		case "set":
			v = b.rdb.SMembers(b.ctx, k).Val()
		case "zset":
			v = b.rdb.ZRangeWithScores(b.ctx, k, 0, -1).Val()
		default:
			t.Fatalf("key %s of type %s: the dump does not read it", k, typ)
		}
		fmt.Fprintf(&out, "%s %s %v\n", k, typ, v)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// After the erasure no key name or value under the prefix holds anything of the
// person (their address, local part, reply texts or event IDs all carry "zqx"), the
// bystander's data is untouched, and the policy's marker is there or not.
func TestEraseLeavesNothingReadable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		key    []byte
		marker bool
	}{
		{"clear addresses", nil, true}, // a marker is asked for but cannot be kept
		{"hashed addresses, marker kept", []byte("0123456789abcdef-erasure"), true},
		{"hashed addresses, marker dropped", []byte("0123456789abcdef-erasure"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, tc.key)
			history(t, b)
			before := dump(t, b)
			if !strings.Contains(before, "zqx") {
				t.Fatal("the history holds nothing of the person: the test cannot fail")
			}
			rep, err := erasure.Eraser{Store: b.store, Guard: b.guard, Alerts: b.alerts}.Erase(b.ctx, "acme", target, tc.marker)
			if err != nil {
				t.Fatal(err)
			}
			if rep.KeysDeleted < 4 || rep.IndexEntries < 2 || rep.AuditEntries < 2 || rep.GuardEntries < 2 {
				t.Fatalf("erasure report %+v: removed less than the history wrote", rep)
			}
			after := dump(t, b)
			for _, line := range strings.Split(after, "\n") {
				if strings.Contains(strings.ToLower(line), "zqx") {
					t.Errorf("left after the erasure: %s", line)
				}
			}
			if tc.key == nil && !strings.Contains(after, "fb-other.person") {
				t.Error("the bystander's soft-bounce window went too")
			}
			by, err := b.store.Recipient(b.ctx, "acme", bystander)
			if err != nil || by.Suppression == nil || len(by.History) == 0 {
				t.Fatalf("the bystander's state: %+v, %v", by, err)
			}
			rec, err := b.store.Suppression(b.ctx, "acme", target)
			if err != nil {
				t.Fatal(err)
			}
			wantMarker := tc.marker && tc.key != nil
			if rep.Marker != wantMarker || (rec != nil) != wantMarker {
				t.Fatalf("marker reported %v, record %+v; want a marker: %v", rep.Marker, rec, wantMarker)
			}
			if wantMarker && (rec.Reason != suppress.MarkerReason || rec.Reply != "" || rec.Code != "") {
				t.Fatalf("marker holds more than the hash and the reason: %+v", rec)
			}
			if tc.marker && tc.key == nil && rep.MarkerSkipped == "" {
				t.Fatal("no marker and no reason why")
			}
			if global, _ := b.store.Suppression(b.ctx, "", target); global != nil {
				t.Fatalf("the global suppression stays: %+v", global)
			}
		})
	}
}
