package guard

// Keys builds the guard's Redis keys. They carry the configured prefix, and the keys of
// one receiving domain share the hash tag {<domain>}, so a domain's hold is changed by
// one script (or transaction) on a single Redis, Sentinel and Cluster alike. The
// strings are the ones the suppress package used, so existing holds stay readable.
type Keys struct{ prefix string }

// NewKeys returns the key builder for a prefix such as "rebound:".
func NewKeys(prefix string) Keys { return Keys{prefix: prefix} }

// Recipients is the sorted set of the domain's recipients suppressed (or held)
// recently, member "namespace|address", scored by time (ms).
func (k Keys) Recipients(domain string) string { return k.prefix + "g{" + domain + "}:rcpts" }

// State is the hash of the domain's guard: held, since, count, last_seen.
func (k Keys) State(domain string) string { return k.prefix + "g{" + domain + "}" }

// Pending is the hash of the suppressions held for the domain: field
// "namespace|address", value the held suppress.Change as JSON.
func (k Keys) Pending(domain string) string { return k.prefix + "g{" + domain + "}:pending" }

// HeldDomains is the set of domains whose guard is holding suppressions.
func (k Keys) HeldDomains() string { return k.prefix + "idx:held" }
