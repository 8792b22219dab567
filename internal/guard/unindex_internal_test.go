package guard

import (
	"context"
	"testing"

	"github.com/reboundhq/rebound/internal/suppress"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// TestUnindexKeepsADomainWithAHold: the batch script skips the hold state of domains the
// index does not name, so taking a domain out of it must check, in the same step, that
// no hold of it is on — the domain-wide one or any tenant's ("<tenant>" fields; the
// "<tenant>|count" and "<tenant>|last" fields of an ended hold do not count).
func TestUnindexKeepsADomainWithAHold(t *testing.T) {
	t.Parallel()
	rdb := testsvc.RedisClient(t)
	prefix := testsvc.Prefix(t, rdb)
	g := New(Config{Redis: rdb, Prefix: prefix, Store: suppress.New(rdb, suppress.Options{Prefix: prefix})})
	ctx := context.Background()
	idx := g.keys.HeldDomains()
	for _, tc := range []struct {
		name        string
		state       map[string]any // the domain-wide hold's hash
		tenants     map[string]any // the tenant holds' hash
		wantRemoved bool
	}{
		{"domain-wide hold", map[string]any{"held": 1, "since": 1}, nil, false},
		{"a tenant's hold", nil, map[string]any{"acme": 1, "acme|count": 3}, false},
		{"ended holds only", map[string]any{"count": 3}, map[string]any{"acme|count": 3, "acme|last": 1}, true},
		{"no keys at all", nil, nil, true},
	} {
		domain := "d-" + tc.name + ".example"
		if tc.state != nil {
			rdb.HSet(ctx, g.keys.State(domain), tc.state)
		}
		if tc.tenants != nil {
			rdb.HSet(ctx, g.keys.Tenants(domain), tc.tenants)
		}
		rdb.SAdd(ctx, idx, domain)
		removed, err := g.unindex(ctx, domain)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		listed, _ := rdb.SIsMember(ctx, idx, domain).Result()
		if removed != tc.wantRemoved || listed == removed {
			t.Errorf("%s: removed %v, still listed %v; want removed %v", tc.name, removed, listed, tc.wantRemoved)
		}
	}
}
