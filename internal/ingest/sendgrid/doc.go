// Package sendgrid is the SendGrid (Twilio) Event Webhook adapter: it verifies the
// ECDSA-signed request and turns each element of the posted array into one canonical
// event. Package ingest/all lists it as "sendgrid"; see docs/webhooks.md for the settings.
package sendgrid
