// Package brevo is the Brevo (ex-Sendinblue) transactional webhook adapter. Brevo signs
// nothing, so the request must carry the configured bearer token (or basic-auth
// credentials); one event object or a batched array is mapped onto canonical events,
// one per item. Package ingest/all lists it as "brevo".
package brevo
