// Package ses is the Amazon SES adapter: SES notifications arrive through an SNS HTTPS
// subscription, so it verifies the SNS signature (v1 SHA1withRSA, v2 SHA256withRSA) with
// a certificate fetched only from an SNS host, accepts allow-listed topics only,
// confirms their subscriptions, and fans SES bounce, complaint, delay and delivery
// notifications out into one canonical event per recipient. Package ingest/all lists
// it as "ses".
package ses
