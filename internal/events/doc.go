// Package events defines Rebound's canonical event (schema v1): the one shape every
// ESP webhook is turned into before it is published to JetStream. It owns the JSON codec,
// validation whose errors name the field, address normalisation and the stream and
// subject names that carry events between roles.
package events
