// Package sparkpost is the SparkPost (Bird Email) message-event webhook adapter: it
// checks HTTP basic auth and fans the posted array of {"msys":{…}} events out into one
// canonical event each. Package ingest/all lists it as "sparkpost"; see docs/webhooks.md.
package sparkpost
