// Package alert owns sender-side incidents, all of them: the fingerprint that makes a
// storm of 530s one incident, its state in Redis (open → notified → resolved →
// reopened), the scripts that change that state atomically, the outbox of
// notifications each transition leaves behind, and their delivery to the receivers
// (one sub-package per integration) with retries, back-off and expiry. The process
// role hands it observations; the notify role runs its Notifier; the API reads it.
//
// Every key of this package shares one Cluster hash tag, so each transition — the
// incident, the outbox entry and the indexes the dispatcher reads — is one Lua script
// and atomic on a single Redis, Sentinel and Cluster alike. Incidents are few next to
// events (a 530 storm is one incident, and a batch's events of one incident are one
// script call), so one slot carries them without becoming a hot spot.
package alert
