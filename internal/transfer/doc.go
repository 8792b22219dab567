// Package transfer moves suppression lists in and out of Rebound: it exports a tenant's
// suppressions as NDJSON or CSV, and imports those files and the suppression or bounce
// lists that SES, SendGrid, Postmark and Mailgun export, recognised by their columns.
// Imports are idempotent (each line becomes an event whose ID is derived from its
// content) and never stop at a bad line: it is rejected with the reason.
package transfer
