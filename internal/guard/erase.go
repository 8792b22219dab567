package guard

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Forget removes one recipient from the mass-bounce guard of its domain: its counted
// entries and its held suppressions, in the given namespaces ("" is the global one),
// from the domain-wide hold and from the holds of held tenants and of the tenants
// named. addrKey is the address in its Redis form (suppress.Store.AddressKey). It
// returns how many entries it removed. (Another tenant's count of a global
// suppression, which no hold keeps, is dropped with its window.)
func (g *Guard) Forget(ctx context.Context, domain, addrKey string, namespaces, tenants []string) (int, error) {
	domain = strings.ToLower(domain)
	held, err := g.rdb.HKeys(ctx, g.keys.Tenants(domain)).Result()
	if err != nil {
		return 0, fmt.Errorf("forget recipient: read holds of %s: %w", domain, err)
	}
	seen := map[string]bool{}
	var all []string
	for _, t := range append(append([]string{}, tenants...), held...) {
		if !strings.Contains(t, "|") && !seen[t] {
			seen[t] = true
			all = append(all, t)
		}
	}
	members := make([]string, len(namespaces))
	anyMembers := make([]any, len(namespaces))
	for i, ns := range namespaces {
		members[i] = ns + "|" + addrKey
		anyMembers[i] = members[i]
	}
	// Every key here carries the hash tag {domain}: one transaction on Cluster too.
	pipe := g.rdb.TxPipeline()
	var cmds []*redis.IntCmd
	cmds = append(cmds, pipe.ZRem(ctx, g.keys.Recipients(domain), anyMembers...), pipe.HDel(ctx, g.keys.Pending(domain), members...))
	for _, t := range all {
		cmds = append(cmds, pipe.ZRem(ctx, g.keys.TenantRecipients(domain, t), anyMembers...), pipe.HDel(ctx, g.keys.TenantPending(domain, t), members...))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("forget recipient in the holds of %s: %w", domain, err)
	}
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n, nil
}
