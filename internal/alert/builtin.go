package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/alert/receiver"
)

// LogReceiver writes each notification as one warning line: the receiver used when
// none is configured, so an incident is never silent.
type LogReceiver struct{ Log *zap.Logger }

// Send logs the notification.
func (l LogReceiver) Send(_ context.Context, n receiver.Notification) error {
	l.Log.Warn("ALERT: sender-side incident "+string(n.Kind), zap.String("id", n.ID), zap.String("class", n.Class),
		zap.String("severity", n.Severity), zap.String("state", n.State), zap.String("summary", n.Summary),
		zap.String("tenant", n.Tenant), zap.String("sending_domain", n.SendingDomain), zap.String("sending_ip", n.SendingIP),
		zap.String("code", n.Code), zap.Strings("examples", n.Examples), zap.Strings("fix", n.Fix))
	return nil
}

// ControlMessage is the control signal a sending platform can subscribe to, published
// on <subject prefix>.control.sender.<class> when a sender-side incident opens (or
// reopens) and when it resolves: pause the sender on "opened", resume it on
// "resolved". Version 1; fields are only ever added.
type ControlMessage struct {
	Version       int       `json:"version"`
	Event         string    `json:"event"` // "opened" | "resolved"
	ID            string    `json:"id"`    // the incident (fingerprint)
	Seq           int64     `json:"seq"`   // the transition: later seq wins when two arrive out of order
	At            time.Time `json:"at"`
	Class         string    `json:"class"`
	Severity      string    `json:"severity"`
	Tenant        string    `json:"tenant"`
	SendingDomain string    `json:"sending_domain,omitempty"`
	SendingIP     string    `json:"sending_ip,omitempty"`
	Code          string    `json:"code,omitempty"`
	Messages      int64     `json:"messages"`
	Recipients    int64     `json:"recipients"`
	IncidentURL   string    `json:"incident_url,omitempty"`
}

// ControlSubject is the subject of a class's control signal.
func ControlSubject(prefix, class string) string { return prefix + ".control.sender." + class }

// ControlReceiver publishes the control signal on NATS. It goes through the same
// outbox as the pages, so an open or a resolve reaches NATS once NATS is reachable.
type ControlReceiver struct {
	NC     *nats.Conn
	Prefix string // the subject prefix (REBOUND_SUBJECT_PREFIX)
}

// Send publishes opens and resolves of sender-side incidents; other transitions and
// the mass-bounce guard's incidents (a receiving domain's trouble, not a sender's) are
// not control signals.
func (c ControlReceiver) Send(ctx context.Context, n receiver.Notification) error {
	if n.Class == ClassMassBounce {
		return nil
	}
	var event string
	switch n.Kind {
	case receiver.KindTrigger:
		event = "opened"
	case receiver.KindResolve:
		event = "resolved"
	default:
		return nil
	}
	body, err := json.Marshal(ControlMessage{Version: 1, Event: event, ID: n.ID, Seq: n.Seq, At: n.At, Class: n.Class,
		Severity: n.Severity, Tenant: n.Tenant, SendingDomain: n.SendingDomain, SendingIP: n.SendingIP, Code: n.Code,
		Messages: n.Messages, Recipients: n.Recipients, IncidentURL: n.IncidentURL})
	if err != nil {
		return &receiver.Error{Reason: "encode", Err: err}
	}
	msg := nats.NewMsg(ControlSubject(c.Prefix, n.Class))
	msg.Data = body
	msg.Header.Set("Content-Type", "application/json")
	// A JetStream stream that captures the subject drops a re-sent signal by this ID.
	msg.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s-%d", n.ID, n.Seq))
	if err := c.NC.PublishMsg(msg); err != nil {
		return &receiver.Error{Retry: true, Reason: "network", Err: err}
	}
	deadline := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	// The flush makes "sent" mean "the server has it", not "in our buffer".
	if err := c.NC.FlushTimeout(max(deadline, time.Millisecond)); err != nil {
		return &receiver.Error{Retry: true, Reason: "network", Err: err}
	}
	return nil
}
