// Package mandrill is the Mandrill (Mailchimp Transactional) webhook adapter: it checks
// X-Mandrill-Signature (base64 HMAC-SHA1 over the registered URL and the sorted POST
// parameters) and fans the form field mandrill_events, a JSON array, out into one
// canonical event per item. Package ingest/all lists it as "mandrill".
package mandrill
