// Package resend is the Resend webhook adapter: it verifies the Svix signature
// (svix-id, svix-timestamp, svix-signature; HMAC-SHA256 over id.timestamp.body) within a
// five-minute window, refuses replayed svix-ids, and maps one Resend event per POST onto
// canonical events. Package ingest/all lists it as "resend".
package resend
