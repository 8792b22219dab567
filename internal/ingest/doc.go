// Package ingest is the ingest role: `POST /webhooks/{esp}`. One Adapter per ESP
// authenticates the raw request and turns it into canonical events; the handler
// publishes them to JetStream and answers 2xx only after every PubAck, so an ESP never
// hears "taken" for an event that is not stored. Items that cannot be mapped go to the
// dead-letter stream with the raw bytes and the reason; nothing is silently dropped.
package ingest
