// Package stream owns Rebound's use of NATS JetStream: provisioning the events stream,
// the dead-letter stream and the durable consumer (idempotently, on NATS 2.9 and newer),
// publishing canonical events with their ID as Nats-Msg-Id, and writing dead letters
// that carry the raw bytes and the reason.
package stream
