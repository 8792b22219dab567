// Package policy decides what an event does: suppress its recipient, count a soft
// bounce, open a sender-side incident, or only record it. The decision is made from the
// event type and the classification's scope and permanence, never from the basic SMTP
// code alone, so a sender-side fault (530, DMARC, a blocklist) can never suppress a
// recipient.
package policy
