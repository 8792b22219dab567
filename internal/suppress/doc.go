// Package suppress owns Rebound's state in Redis: suppression records, soft-bounce
// windows, per-event idempotency and recipient history. Every change to one recipient
// is one Lua script whose keys share a hash
// tag, so it is atomic on a single Redis, Sentinel and Cluster alike, and a batch of
// events costs one pipelined round trip.
package suppress
