package process

import (
	"testing"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/suppress"
)

// TestOpenedHere: of all the deliveries of the event that opened an incident, exactly
// the one whose recipients' write was not a duplicate reports it, whichever of them
// ran the observation that opened it.
func TestOpenedHere(t *testing.T) {
	for _, c := range []struct {
		name             string
		inc              *alert.Outcome
		duplicate        bool
		opened, reopened bool
	}{
		{"no incident", nil, false, false, false},
		{"opened it, first write", &alert.Outcome{Opened: true}, false, true, false},
		{"opened it, but another delivery wrote first (it reports)", &alert.Outcome{Opened: true}, true, false, false},
		{"another delivery opened it, this one wrote first", &alert.Outcome{OpenedEarlier: true}, false, true, false},
		{"redelivered after a lost ack", &alert.Outcome{OpenedEarlier: true}, true, false, false},
		{"reopened it, first write", &alert.Outcome{Reopened: true}, false, false, true},
		{"another delivery reopened it, this one wrote first", &alert.Outcome{ReopenedEarlier: true}, false, false, true},
		{"reopened it, a duplicate write", &alert.Outcome{Reopened: true}, true, false, false},
		{"counted only", &alert.Outcome{Count: 3}, false, false, false},
	} {
		r := Result{Incident: c.inc, Outcome: suppress.Outcome{Duplicate: c.duplicate}}
		if o, re := r.OpenedHere(); o != c.opened || re != c.reopened {
			t.Errorf("%s: OpenedHere() = %v, %v, want %v, %v", c.name, o, re, c.opened, c.reopened)
		}
	}
}
