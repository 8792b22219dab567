// Package postmark is the Postmark webhook adapter (Bounce, SpamComplaint and Delivery
// records), authenticated by HTTP basic auth since Postmark signs nothing. Package
// ingest/all lists it as "postmark"; see docs/webhooks.md for the settings.
package postmark
