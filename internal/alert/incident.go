package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// State is where an incident is in its life.
type State string

// The states. An incident opens with its first event, is notified once a receiver has
// its trigger, resolves after a quiet period (or by hand) and reopens when its fault
// shows again; a reopened incident is notified again like a new one.
const (
	StateOpen     State = "open"
	StateNotified State = "notified"
	StateResolved State = "resolved"
	StateReopened State = "reopened"
)

// Firing reports whether the state is one that pages (anything but resolved).
func (s State) Firing() bool { return s != StateResolved && s != "" }

// ClassMassBounce is the class of the mass-bounce guard's incident: a receiving domain
// that suddenly answers "user unknown" for many recipients.
const ClassMassBounce = "mass_bounce"

// Observation is one event's contribution to a sender-side incident, as the process
// role decided it. Recipient is used only for the distinct-recipient count: the store
// keeps a keyed hash of it, never the address.
type Observation struct {
	EventID         string
	Tenant          string
	Class           string
	Severity        string
	SendingDomain   string
	SendingIP       string
	ReceivingDomain string // set when the incident is about one receiving domain (mass bounce)
	Recipient       string
	Code            string
	Rule            string
	ESP             string
	Reply           string // redacted of addresses by the caller
	Fix             []string
}

// Fingerprint identifies the observation's incident: the same fault of the same
// sending path (or, for the guard, the same receiving domain) is one incident however
// many recipients it hits.
func (o *Observation) Fingerprint() string {
	if o.ReceivingDomain != "" {
		return Fingerprint("", o.Class, "rcpt:"+o.ReceivingDomain, "")
	}
	return Fingerprint(o.Tenant, o.Class, o.SendingDomain, o.SendingIP)
}

// Fingerprint hashes an incident's identity into a short stable ID.
func Fingerprint(tenant, class, domain, ip string) string {
	sum := sha256.Sum256([]byte(tenant + "\x00" + class + "\x00" + domain + "\x00" + ip))
	return hex.EncodeToString(sum[:12])
}

// Outcome is what one observation did to its incident.
type Outcome struct {
	Fingerprint string
	Class       string
	Duplicate   bool // the event had been counted before
	Opened      bool // this batch opened the incident
	Reopened    bool // this batch reopened a resolved incident
	// OpenedEarlier (ReopenedEarlier): a duplicate that is the event which opened
	// (reopened) the incident's current episode in an earlier delivery. When that
	// delivery failed after the observation (the recipients' write), the redelivery
	// owes the opening its log line and metric.
	OpenedEarlier, ReopenedEarlier bool
	Count                          int64 // messages in the episode after the batch
	Err                            error // the incident could not be updated: retry the event
}

// Incident is one sender-side incident as the API, the CLI and the receivers see it.
type Incident struct {
	ID              string    `json:"id"` // the fingerprint
	State           State     `json:"state"`
	Class           string    `json:"class"`
	Severity        string    `json:"severity"`
	Tenant          string    `json:"tenant"`
	SendingDomain   string    `json:"sending_domain,omitempty"`
	SendingIP       string    `json:"sending_ip,omitempty"`
	ReceivingDomain string    `json:"receiving_domain,omitempty"`
	Code            string    `json:"code,omitempty"`
	Rule            string    `json:"rule,omitempty"`
	ESP             string    `json:"esp,omitempty"`
	Messages        int64     `json:"messages"`       // this episode
	TotalMessages   int64     `json:"total_messages"` // every episode
	Recipients      int64     `json:"recipients"`     // distinct, this episode (HyperLogLog estimate)
	FirstSeen       time.Time `json:"first_seen"`     // of this episode
	LastSeen        time.Time `json:"last_seen"`
	CreatedAt       time.Time `json:"created_at"`
	Reopened        int64     `json:"reopened"`
	ResolvedAt      time.Time `json:"resolved_at,omitzero"`
	ResolvedBy      string    `json:"resolved_by,omitempty"`
	AckedAt         time.Time `json:"acked_at,omitzero"`
	AckedBy         string    `json:"acked_by,omitempty"`
	Examples        []string  `json:"examples"`
	Domains         []string  `json:"receiving_domains"` // most affected first
	Fix             []string  `json:"fix"`
	Seq             int64     `json:"seq"` // transitions so far
	// Transitions are the kept transitions, oldest first.
	Transitions []Transition `json:"transitions"`
	// Deliveries is each receiver's progress through the transitions.
	Deliveries []Delivery `json:"deliveries"`
}

// Transition is one change of an incident that receivers are told about.
type Transition struct {
	Seq  int64     `json:"seq"`
	Kind string    `json:"kind"` // trigger | reminder | ack | resolve
	At   time.Time `json:"at"`
	By   string    `json:"by,omitempty"`
}

// Delivery is one receiver's delivery state for an incident.
type Delivery struct {
	Receiver  string    `json:"receiver"`
	Sent      int64     `json:"sent_seq"` // last transition delivered (or dropped)
	Tries     int64     `json:"tries,omitempty"`
	NextTry   time.Time `json:"next_try,omitzero"`
	LastOK    time.Time `json:"last_ok,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}
