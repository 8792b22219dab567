package events

import (
	"fmt"
	"strings"
)

// Names holds the stream and subject names of one installation. Two installations on
// one NATS account differ by their subject prefix and stream names, so they never see
// each other's events.
type Names struct {
	SubjectPrefix string // "rebound"
	Stream        string // "REBOUND_EVENTS"
	DeadStream    string // "REBOUND_DEADLETTER"
	Consumer      string // "rebound-process"
}

// DefaultNames are the names used when nothing is configured.
func DefaultNames() Names {
	return Names{SubjectPrefix: "rebound", Stream: "REBOUND_EVENTS", DeadStream: "REBOUND_DEADLETTER", Consumer: "rebound-process"}
}

// EventSubject is the subject one ESP's events are published on.
func (n Names) EventSubject(esp string) string { return n.SubjectPrefix + ".events." + esp }

// EventSubjects is the wildcard the events stream and consumer listen on.
func (n Names) EventSubjects() string { return n.SubjectPrefix + ".events.>" }

// DeadSubject is the subject a dead letter from the given stage is published on.
func (n Names) DeadSubject(stage string) string { return n.SubjectPrefix + ".dead." + stage }

// DeadSubjects is the wildcard of the dead-letter stream.
func (n Names) DeadSubjects() string { return n.SubjectPrefix + ".dead.>" }

// MaxDeliverAdvisories is the subject on which JetStream reports that the process
// consumer gave up on an event (its MaxDeliver advisory).
func (n Names) MaxDeliverAdvisories() string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + n.Stream + "." + n.Consumer
}

// AdvisoryStream keeps the MaxDeliver advisories until a process replica has
// dead-lettered their events: core NATS would drop one sent while no replica listens.
func (n Names) AdvisoryStream() string { return n.Stream + "_ADVISORIES" }

// AdvisoryConsumer is the durable consumer the process replicas share on AdvisoryStream.
func (n Names) AdvisoryConsumer() string { return n.Consumer + "-max-deliveries" }

// Validate checks that the names are legal NATS tokens.
func (n Names) Validate() error {
	if n.SubjectPrefix == "" || strings.ContainsAny(n.SubjectPrefix, " \t*>") || strings.HasPrefix(n.SubjectPrefix, ".") || strings.HasSuffix(n.SubjectPrefix, ".") {
		return fmt.Errorf("REBOUND_SUBJECT_PREFIX: %q is not a valid subject prefix (no spaces, wildcards or leading/trailing dots)", n.SubjectPrefix)
	}
	for setting, v := range map[string]string{"REBOUND_STREAM": n.Stream, "REBOUND_DEADLETTER_STREAM": n.DeadStream, "REBOUND_CONSUMER": n.Consumer} {
		if v == "" || strings.ContainsAny(v, " \t.*>/\\") {
			return fmt.Errorf("%s: %q is not a valid name (no spaces, dots, wildcards or slashes)", setting, v)
		}
	}
	if n.Stream == n.DeadStream {
		return fmt.Errorf("REBOUND_DEADLETTER_STREAM: must differ from REBOUND_STREAM (%q)", n.Stream)
	}
	if n.DeadStream == n.AdvisoryStream() {
		return fmt.Errorf("REBOUND_DEADLETTER_STREAM: %q is the name of the advisory stream of REBOUND_STREAM; choose another", n.DeadStream)
	}
	return nil
}
