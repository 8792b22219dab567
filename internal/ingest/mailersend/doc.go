// Package mailersend is the MailerSend webhook adapter: it checks the hex HMAC-SHA256 in
// the Signature header and maps one activity per POST (bounces, deferrals, complaints,
// deliveries) onto canonical events. Package ingest/all lists it as "mailersend".
package mailersend
