// Package guard is the mass-bounce guard: when one receiving domain suddenly turns many
// distinct recipients into hard bounces (a directory outage answering 5.1.1 for
// everyone), it holds the domain's new suppressions as pending instead of writing them,
// until they are applied or discarded — by an operator, or by its sweeper on recovery.
// A hold is one life cycle (count and hold, list, release, resolve the domain's
// mass_bounce incident) whose steps share keys, the pending encoding and the incident's
// identity, so they live here together; the process role, the API and the CLI only call it.
package guard
