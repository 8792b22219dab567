// Package mailgun is the Mailgun webhook adapter (JSON "event-data" format): it checks
// the HMAC signature Mailgun puts in the body, refuses stale timestamps and replayed
// tokens, and turns the one event per request into a canonical event. Package ingest/all
// lists it as "mailgun"; see docs/webhooks.md for the settings.
package mailgun
