// Package ingesttest holds what the ESP adapters' tests share: an injected environment,
// fixtures, field-by-field event assertions, the default catalog and policy, the shared
// verification rule, and the fuzz and benchmark bodies. It is imported by tests only.
package ingesttest
