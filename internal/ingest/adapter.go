package ingest

import (
	"errors"
	"net/http"
	"time"

	"github.com/reboundhq/rebound/internal/events"
)

// Adapter is one ESP's webhook dialect. Adding an ESP means adding one Adapter.
type Adapter interface {
	// ESP is the name in the path and in the events' `esp` field.
	ESP() string
	// Authenticate verifies the request against the raw body. Its error is logged and
	// counted but never shown to the caller.
	Authenticate(r *http.Request, body []byte) error
	// Parse turns an authenticated body into events. Items it cannot map are returned
	// as rejects (they are dead-lettered); an error means the body as a whole is bad.
	Parse(body []byte) (Batch, error)
}

// Batch is the result of parsing one webhook body.
type Batch struct {
	Events  []events.Event
	Rejects []Reject
	Ignored int // items dropped on purpose (opens, clicks): counted, not dead-lettered
}

// Reject is one item that could not become an event.
type Reject struct {
	Index  int    `json:"index"`
	Reason string `json:"error"`
	Raw    []byte `json:"-"`
}

// ErrBadRequest marks a body the caller must fix (HTTP 400). Adapters for ESPs that
// retry forever use rejects instead, so the body is kept and the ESP is answered.
var ErrBadRequest = errors.New("bad request")

// ErrUnauthenticated is returned by Authenticate when a request is not from the ESP.
var ErrUnauthenticated = errors.New("unauthenticated")

// Challenger is implemented by adapters whose ESP sends credentials only after a 401
// that names the scheme (SNS retries with basic auth only then).
type Challenger interface {
	// Challenge is the WWW-Authenticate value of a 401, "" for none.
	Challenge() string
}

// HeaderAuthenticator is implemented by adapters whose check can be made, in whole or
// in part, from the request's headers. The handler calls it before it reads a byte of
// the body, so a request without the credentials its scheme requires is refused
// without costing a read buffer or an in-flight slot: basic auth and bearer tokens are
// checked in full, signature schemes have their signature and timestamp headers
// checked for presence, form and the replay window. Authenticate still runs on the
// body afterwards and remains the authority.
type HeaderAuthenticator interface {
	AuthenticateHeaders(r *http.Request) error
}

// Replayable is implemented by adapters whose ESP signs a one-time token (Mailgun's
// signature.token, Svix's svix-id). The handler keeps the tokens in its ReplayStore,
// shared by every replica, and refuses a token already used; an adapter does not
// remember tokens itself.
type Replayable interface {
	// ReplayToken returns the one-time token of a request Authenticate accepted and how
	// long it must be remembered; "" when there is none to remember (the request was
	// accepted unchecked, under REBOUND_<ESP>_INSECURE_SKIP_VERIFY).
	ReplayToken(r *http.Request, body []byte) (token string, ttl time.Duration)
}
