// Package process is the process role: it consumes canonical events from JetStream in
// batches, classifies each reply, asks the policy what to do, applies every decision of
// the batch to Redis in one round trip, and acknowledges only what Redis confirmed.
// Transient failures are retried with back-off; input that can never be processed goes
// to the dead-letter stream with the reason.
package process
