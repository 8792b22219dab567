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
	// relay lets items name another ESP (REBOUND_GENERIC_ALLOW_RELAY). Off, an item
	// must be esp "generic": its ID then lives in generic:…, and a holder of the
	// generic token cannot publish "sendgrid:<id>" first and so have the real SendGrid
	// event with that ID dropped as a duplicate.
	relay bool
}

// NewGeneric returns the generic adapter, taking esp "generic" events only. An empty
// token disables the endpoint.
func NewGeneric(token string) *Generic { return &Generic{token: []byte(token)} }

// AllowRelay sets whether items may carry another ESP's canonical events
// (REBOUND_GENERIC_ALLOW_RELAY) and returns g.
func (g *Generic) AllowRelay(allow bool) *Generic {
	g.relay = allow
	return g
}

// ESP implements Adapter.
func (g *Generic) ESP() string { return "generic" }

// Authenticate implements Adapter: `Authorization: Bearer <REBOUND_GENERIC_TOKEN>`.
func (g *Generic) Authenticate(r *http.Request, _ []byte) error {
	if len(g.token) == 0 {
		return fmt.Errorf("%w: REBOUND_GENERIC_TOKEN is not set, the generic webhook is disabled", ErrUnauthenticated)
	}
	return BearerToken(r, string(g.token))
}

// AuthenticateHeaders implements HeaderAuthenticator: the bearer token is the whole
// check, made before the body is read.
func (g *Generic) AuthenticateHeaders(r *http.Request) error { return g.Authenticate(r, nil) }

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
		if !g.relay && e.ESP != g.ESP() {
			b.Rejects = append(b.Rejects, Reject{Index: i, Raw: raw,
				Reason: fmt.Sprintf("esp: %q is not accepted here: this endpoint takes esp \"generic\" only (REBOUND_GENERIC_ALLOW_RELAY=true relays other ESPs' events)", e.ESP)})
			continue
		}
		b.Events = append(b.Events, e)
	}
	return b, nil
}
