package guard

// Keys builds the guard's Redis keys. They carry the configured prefix, and the keys of
// one receiving domain share the hash tag {<domain>}, so a domain's holds are changed by
// one script (or transaction) on a single Redis, Sentinel and Cluster alike. The
// domain-wide keys are the strings the suppress package used, so holds made before
// per-tenant counting stay readable (as domain-wide holds).
type Keys struct{ prefix string }

// NewKeys returns the key builder for a prefix such as "rebound:".
func NewKeys(prefix string) Keys { return Keys{prefix: prefix} }

// Recipients is the sorted set of the domain's recipients suppressed (or held by the
// domain-wide hold) recently, across tenants, member "namespace|address", scored by
// time (ms). A held tenant's recipients are not added: one tenant never holds the domain.
func (k Keys) Recipients(domain string) string { return k.prefix + "g{" + domain + "}:rcpts" }

// State is the hash of the domain-wide hold: held, since, count, last_seen.
func (k Keys) State(domain string) string { return k.prefix + "g{" + domain + "}" }

// Pending is the hash of the suppressions the domain-wide hold keeps: field
// "namespace|address", value the held suppress.Change as JSON.
func (k Keys) Pending(domain string) string { return k.prefix + "g{" + domain + "}:pending" }

// Tenants is the hash of the domain's per-tenant holds: field "<tenant>" = since (ms),
// "<tenant>|count" and "<tenant>|last" (the last held suppression, ms). A tenant is
// held while its field "<tenant>" exists. (Tenant names never contain '|'.)
func (k Keys) Tenants(domain string) string { return k.prefix + "g{" + domain + "}:tenants" }

// TenantRecipients is the sorted set of one tenant's recipients of the domain
// suppressed or held recently, as Recipients.
func (k Keys) TenantRecipients(domain, tenant string) string {
	return k.prefix + "g{" + domain + "}:t:" + tenant + ":rcpts"
}

// TenantPending is the hash of the suppressions one tenant's hold of the domain keeps,
// as Pending.
func (k Keys) TenantPending(domain, tenant string) string {
	return k.prefix + "g{" + domain + "}:t:" + tenant + ":pending"
}

// HeldDomains is the set of domains with a hold (domain-wide or a tenant's).
func (k Keys) HeldDomains() string { return k.prefix + "idx:held" }
