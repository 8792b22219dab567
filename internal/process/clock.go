package process

import "time"

// Clock is the processor's time: the real one in production; tests pass one they move
// by hand, so no test sleeps to wait for a stall check or a Redis probe.
type Clock interface {
	Now() time.Time
	// After delivers once d has passed on this clock.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
