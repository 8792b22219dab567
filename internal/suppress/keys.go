package suppress

import "strings"

// Keys builds every Redis key Rebound uses. All of them start with the configured
// prefix. Keys of one recipient share the hash tag {<tenant>:<address>}, so each Lua
// script touches exactly one Cluster slot. (Incident keys are the alert package's, the
// mass-bounce guard's the guard package's, the console's hourly counts the stats
// package's; all under the same prefix.)
type Keys struct{ prefix string }

// NewKeys returns the key builder for a prefix such as "rebound:".
func NewKeys(prefix string) Keys { return Keys{prefix: prefix} }

// Prefix is the configured key prefix.
func (k Keys) Prefix() string { return k.prefix }

func (k Keys) recipient(tenant, addr, suffix string) string {
	var b strings.Builder
	b.Grow(len(k.prefix) + len(tenant) + len(addr) + len(suffix) + 8)
	b.WriteString(k.prefix)
	b.WriteString("r{")
	b.WriteString(tenant)
	b.WriteByte(':')
	b.WriteString(addr)
	b.WriteString("}:")
	b.WriteString(suffix)
	return b.String()
}

// Suppression is the hash holding a recipient's suppression record.
func (k Keys) Suppression(tenant, addr string) string { return k.recipient(tenant, addr, "sup") }

// SoftWindow is the sorted set of soft-bounce event IDs scored by time (ms).
func (k Keys) SoftWindow(tenant, addr string) string { return k.recipient(tenant, addr, "soft") }

// Log is the hash of the recipient's recent events: field = event ID, value = the
// history entry. It is both the history and what makes a redelivered event change
// nothing.
func (k Keys) Log(tenant, addr string) string { return k.recipient(tenant, addr, "log") }

// SuppressionIndex is the per-tenant sorted set of suppressed addresses, scored by the
// record's expiry in ms (permanent records score +inf) so expired ones can be pruned by
// score without reading them.
func (k Keys) SuppressionIndex(tenant string) string { return k.prefix + "idx:sup:" + tenant }

// SuppressionsByAddress is the per-tenant sorted set of the same addresses, every one
// scored 0, so ZRANGE BYLEX walks them in address order: the listing's cursor is the
// last address returned, which stays valid whatever is written meanwhile (the expiry
// index's scores move when a record is refreshed). Its hash tag is the whole name of
// the expiry index (or the prefix's own tag), so both indexes of a tenant live in one
// Cluster slot and one script prunes them together.
func (k Keys) SuppressionsByAddress(tenant string) string {
	return k.prefix + "{" + k.SuppressionIndex(tenant) + "}:addr"
}

// SuppressionsByAddressReady marks that SuppressionsByAddress holds every address of
// the expiry index (it is filled from it once, for state written before it existed).
func (k Keys) SuppressionsByAddressReady(tenant string) string {
	return k.prefix + "{" + k.SuppressionIndex(tenant) + "}:addr:ready"
}

// UnknownReplies is the sorted set of replies no rule recognised (addresses redacted),
// scored by how often they were seen.
func (k Keys) UnknownReplies() string { return k.prefix + "unknown:replies" }

// UnknownSeen is the hash of those replies' last sighting: "<ms>|<esp>".
func (k Keys) UnknownSeen() string { return k.prefix + "unknown:seen" }

// ShadowCounts is the hash of shadow-policy disagreements: field "class|live|shadow".
func (k Keys) ShadowCounts() string { return k.prefix + "shadow:counts" }

// ShadowSamples is the capped list of recent disagreements (JSON, newest first).
func (k Keys) ShadowSamples() string { return k.prefix + "shadow:samples" }

// RemovalLog is the capped list of suppressions lifted by hand (the audit record).
func (k Keys) RemovalLog() string { return k.prefix + "audit:removals" }

// ChangeLog is the capped list of every change made through the API (AuditEntry JSON,
// newest first): who, what, when and why.
func (k Keys) ChangeLog() string { return k.prefix + "audit:changes" }
