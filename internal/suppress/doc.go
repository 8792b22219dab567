// Package suppress owns Rebound's state in Redis: suppression records, soft-bounce
// windows, per-event idempotency, recipient history and sender-side incidents. Every
// change to one recipient (or one incident) is one Lua script whose keys share a hash
// tag, so it is atomic on a single Redis, Sentinel and Cluster alike, and a batch of
// events costs one pipelined round trip.
package suppress
