// Package mailjet is the Mailjet Event API adapter: it checks HTTP basic auth and maps
// one event object, or the array Mailjet posts in grouped (Version 2) mode, to one
// canonical event each. Package ingest/all lists it as "mailjet"; see docs/webhooks.md.
package mailjet
