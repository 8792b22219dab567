package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/reboundhq/rebound/internal/events"
)

// Generic accepts canonical v1 events as they are, one object or an array, from
// in-house MTAs and relays, authenticated by a bearer token.
type Generic struct {
	token []byte // empty: every request is refused
}

// NewGeneric returns the generic adapter. An empty token disables the endpoint.
func NewGeneric(token string) *Generic { return &Generic{token: []byte(token)} }

// ESP implements Adapter.
func (g *Generic) ESP() string { return "generic" }

// Authenticate implements Adapter: `Authorization: Bearer <REBOUND_GENERIC_TOKEN>`.
func (g *Generic) Authenticate(r *http.Request, _ []byte) error {
	if len(g.token) == 0 {
		return fmt.Errorf("%w: REBOUND_GENERIC_TOKEN is not set, the generic webhook is disabled", ErrUnauthenticated)
	}
	return BearerToken(r, string(g.token))
}

// Parse implements Adapter. A body that is not JSON is a 400; an item that is JSON
// but not a valid event is a reject with the field it got wrong.
func (g *Generic) Parse(body []byte) (Batch, error) {
	trimmed := bytes.TrimSpace(body)
	var items []json.RawMessage
	switch {
	case len(trimmed) == 0:
		return Batch{}, fmt.Errorf("%w: empty body", ErrBadRequest)
	case trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return Batch{}, fmt.Errorf("%w: not a JSON array of events: %v", ErrBadRequest, err)
		}
	case trimmed[0] == '{':
		if !json.Valid(trimmed) {
			return Batch{}, fmt.Errorf("%w: not a JSON object", ErrBadRequest)
		}
		items = []json.RawMessage{trimmed}
	default:
		return Batch{}, fmt.Errorf("%w: body must be a JSON event object or an array of them", ErrBadRequest)
	}
	b := Batch{Events: make([]events.Event, 0, len(items))}
	for i, raw := range items {
		e, err := events.DecodeStrict(raw)
		if err != nil {
			b.Rejects = append(b.Rejects, Reject{Index: i, Reason: strings.TrimPrefix(err.Error(), events.ErrUndecodable.Error()+": "), Raw: raw})
			continue
		}
		b.Events = append(b.Events, e)
	}
	return b, nil
}
