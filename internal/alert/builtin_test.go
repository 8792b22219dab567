package alert_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/reboundhq/rebound/internal/alert"
	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/alert/receiver/receivertest"
	"github.com/reboundhq/rebound/internal/testsvc"
)

func TestLogReceiver(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	n := receivertest.Sample()
	if err := (alert.LogReceiver{Log: zap.New(core)}).Send(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	all := logs.All()
	if len(all) != 1 || all[0].Level != zapcore.WarnLevel || all[0].Message != "ALERT: sender-side incident trigger" {
		t.Fatalf("logged %+v, want one warning", all)
	}
	f := all[0].ContextMap()
	if f["id"] != n.ID || f["summary"] != n.Summary || f["code"] != "530" || f["sending_domain"] != "mail.example.com" {
		t.Errorf("fields = %v", f)
	}
}

// The control signal: "opened" on a trigger, "resolved" on a resolve, nothing for the
// other transitions or for the mass-bounce guard's incidents; deduplicated by ID-seq.
func TestControlReceiver(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(testsvc.NATS(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	prefix := "rbt" + testsvc.ID()
	sub, err := nc.SubscribeSync(prefix + ".control.sender.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	cr := alert.ControlReceiver{NC: nc, Prefix: prefix}

	trigger := receivertest.Sample()
	reminder, ack := trigger, trigger
	reminder.Kind, reminder.Seq = receiver.KindReminder, 2
	ack.Kind, ack.Seq = receiver.KindAck, 3
	mass := trigger
	mass.Class, mass.ReceivingDomain = alert.ClassMassBounce, "example.net"
	resolve := receivertest.Resolved()
	for _, n := range []receiver.Notification{trigger, reminder, ack, mass, resolve} {
		if err := cr.Send(t.Context(), n); err != nil {
			t.Fatalf("Send %s: %v", n.Kind, err)
		}
	}
	// Each Send flushes, and one subscription sees one connection's messages in order:
	// the trigger and the resolve being the first two messages proves nothing was
	// published for the three in between.
	for _, want := range []struct {
		n     receiver.Notification
		event string
	}{{trigger, "opened"}, {resolve, "resolved"}} {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("waiting for %q: %v", want.event, err)
		}
		if msg.Subject != alert.ControlSubject(prefix, "auth_required") {
			t.Errorf("subject = %s", msg.Subject)
		}
		if id := msg.Header.Get(nats.MsgIdHdr); id != want.n.ID+"-"+strconv.FormatInt(want.n.Seq, 10) {
			t.Errorf("Nats-Msg-Id = %q, want %s-%d", id, want.n.ID, want.n.Seq)
		}
		var cm alert.ControlMessage
		if err := json.Unmarshal(msg.Data, &cm); err != nil {
			t.Fatal(err)
		}
		if cm.Version != 1 || cm.Event != want.event || cm.ID != want.n.ID || cm.Seq != want.n.Seq || cm.Class != "auth_required" ||
			cm.SendingDomain != "mail.example.com" || cm.Messages != 1243 || cm.IncidentURL != want.n.IncidentURL || !cm.At.Equal(want.n.At) {
			t.Errorf("control message = %+v, want %s of %+v", cm, want.event, want.n)
		}
	}

	// NATS gone: a retryable error, so the outbox keeps the signal.
	nc.Close()
	err = cr.Send(t.Context(), trigger)
	var re *receiver.Error
	if !errors.As(err, &re) || !re.Retry || re.Reason != "network" {
		t.Errorf("Send on a closed connection = %v, want a retryable network error", err)
	}
}
