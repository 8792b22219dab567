package alert

import (
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/reboundhq/rebound/internal/testsvc"
)

// zclock is a clock the test sets by hand.
type zclock struct{ t time.Time }

func (c *zclock) Now() time.Time { return c.t }

// dumpAll reads every key under prefix: hashes, sorted sets with scores, HyperLogLog
// counts, and TTLs.
func dumpAll(t *testing.T, rdb *redis.Client, prefix string) map[string]any {
	ctx := t.Context()
	keys, _ := rdb.Keys(ctx, prefix+"*").Result()
	out := map[string]any{}
	for _, k := range keys {
		typ := rdb.Type(ctx, k).Val()
		name := strings.TrimPrefix(k, prefix)
		ttl := rdb.PTTL(ctx, k).Val()
		switch typ {
		case "hash":
			out[name] = rdb.HGetAll(ctx, k).Val()
		case "zset":
			out[name] = rdb.ZRangeWithScores(ctx, k, 0, -1).Val()
		case "string":
			out[name] = rdb.PFCount(ctx, k).Val()
		}
		out[name+" ttl"] = ttl
	}
	return out
}

// TestBatchAndPerIncidentScriptsAgree observes one random workload (redeliveries,
// several incidents a batch, replies and recipients or none, resolves and reopens)
// with one script call per batch and with one per incident, and wants the same
// outcomes and the same keys, fields, members, scores and TTLs.
func TestBatchAndPerIncidentScriptsAgree(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	base := testsvc.Prefix(t, rdb)
	run := func(prefix string, perIncident bool) map[string]any {
		r := rand.New(rand.NewSource(7))
		clk := &zclock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
		st := NewStore(rdb, StoreOptions{Prefix: prefix, Now: clk.Now, PerIncidentScripts: perIncident})
		var outs []string
		for b := 0; b < 120; b++ {
			clk.t = clk.t.Add(time.Duration(1+r.Intn(5000)) * time.Millisecond)
			var obs []Observation
			n := 1 + r.Intn(60)
			for i := 0; i < n; i++ {
				o := Observation{EventID: fmt.Sprintf("e%d", r.Intn(3000)), Tenant: fmt.Sprintf("t%d", r.Intn(3)), Class: "auth_required", Severity: "critical",
					SendingDomain: "mail.example.com", SendingIP: fmt.Sprintf("192.0.2.%d", r.Intn(4)), Recipient: fmt.Sprintf("u%d@d%d.example", r.Intn(50), r.Intn(400)),
					Code: fmt.Sprint(530 + r.Intn(3)), Rule: "r", ESP: "sg", Fix: []string{"fix", fmt.Sprint(r.Intn(2))}}
				if r.Intn(3) > 0 {
					o.Reply = fmt.Sprintf("530 reply %d", r.Intn(9))
				}
				if r.Intn(10) == 0 {
					o.Recipient = ""
				}
				if r.Intn(8) == 0 {
					o.ReceivingDomain = fmt.Sprintf("rd%d", r.Intn(2))
					o.Class = ClassMassBounce
				}
				obs = append(obs, o)
			}
			out, err := st.Observe(t.Context(), obs)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, fmt.Sprintf("%+v", out))
			if r.Intn(6) == 0 {
				ids, _ := rdb.ZRange(t.Context(), st.keys.active(), 0, -1).Result()
				sort.Strings(ids)
				if len(ids) > 0 {
					if _, err := st.Resolve(t.Context(), ids[r.Intn(len(ids))], "x"); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		d := dumpAll(t, rdb, prefix)
		d["outs"] = outs
		return d
	}
	a := run(base+"each:", true)
	b := run(base+"batch:", false)
	for _, x := range []map[string]any{b} {
		if !reflect.DeepEqual(a, x) {
			for k, v := range a {
				if d, ok := v.(time.Duration); ok {
					// The two runs are apart in real time, which TTLs count down.
					if e, _ := x[k].(time.Duration); (d < 0) != (e < 0) || (d-e).Abs() > 5*time.Second {
						t.Errorf("%s: per incident %v, batch %v", k, d, e)
					}
					continue
				}
				if !reflect.DeepEqual(v, x[k]) {
					t.Errorf("%s:\n per incident %v\n batch %v", k, v, x[k])
				}
			}
			for k := range x {
				if _, ok := a[k]; !ok {
					t.Errorf("extra %s", k)
				}
			}
		}
	}
	if len(a) < 50 {
		t.Errorf("only %d keys and TTLs compared", len(a))
	}
}
