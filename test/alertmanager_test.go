package test

import (
	"bufio"
	"context"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/alert/alertmanager"
	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/alert/receiver/receivertest"
	"github.com/reboundhq/rebound/internal/testsvc"
)

// rebase moves every time in n by d. The kit's sample is pinned to a fixed date, and
// Alertmanager judges endsAt against its own clock: a sample from the past would be
// taken as already resolved at the trigger, one from the future would still be firing
// after the resolve. Moving the notifications next to the present keeps the test
// about Rebound's encoding, not about the date it runs on.
func rebase(n receiver.Notification, d time.Duration) receiver.Notification {
	for _, p := range []*time.Time{&n.At, &n.FirstSeen, &n.LastSeen, &n.ResolvedAt} {
		if !p.IsZero() {
			*p = p.Add(d)
		}
	}
	return n
}

// TestAlertmanagerReceiverAgainstRealAlertmanager sends an incident's trigger, a
// reminder and its resolve through the alertmanager receiver to a real Alertmanager and
// reads the result back through Alertmanager's own API: what Alertmanager accepts and
// lists is the contract, not our reading of its OpenAPI file.
func TestAlertmanagerReceiverAgainstRealAlertmanager(t *testing.T) {
	t.Parallel()
	am := testsvc.StartAlertmanager(t)

	cfg := alertmanager.Config{URL: am.URL, Labels: map[string]string{"team": "mail"}}
	if err := cfg.Prepare(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	n := alertmanager.New(cfg, nil)
	ctx := context.Background()

	// Whole seconds: Alertmanager answers times with millisecond precision. The shift
	// puts the resolve a second in the past, and so the trigger 35 minutes before it.
	now := time.Now().UTC().Truncate(time.Second)
	shift := now.Add(-time.Second).Sub(receivertest.Resolved().ResolvedAt)
	trigger := rebase(receivertest.Sample(), shift)
	resolved := rebase(receivertest.Resolved(), shift)
	filter := `incident="` + trigger.ID + `"`

	if err := n.Send(ctx, trigger); err != nil {
		t.Fatalf("send trigger: %v", err)
	}
	var got []map[string]any
	eventually(t, "Alertmanager to list the alert as active", func() bool {
		got = am.Alerts(t, filter)
		return len(got) == 1 && state(got[0]) == "active"
	})
	a := got[0]
	wantLabels := map[string]string{
		"alertname": "ReboundSenderIncident", "severity": "critical", "class": "auth_required",
		"incident": trigger.ID, "tenant": "acme", "sending_domain": "mail.example.com",
		"sending_ip": "192.0.2.10", "team": "mail",
	}
	if l := strMap(a["labels"]); !maps.Equal(l, wantLabels) {
		t.Errorf("labels = %v\nwant     %v", l, wantLabels)
	}
	ann := strMap(a["annotations"])
	wantAnn := map[string]string{
		"summary":      trigger.Summary,
		"example":      trigger.Examples[0],
		"runbook_url":  trigger.RunbookURL,
		"incident_url": trigger.IncidentURL,
		"messages":     "1243",
		"recipients":   "1201",
	}
	for k, v := range wantAnn {
		if ann[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, ann[k], v)
		}
	}
	if d := ann["description"]; !strings.HasPrefix(d, trigger.Meaning) || !strings.Contains(d, "\n1. "+trigger.Fix[0]) || !strings.Contains(d, "\n2. "+trigger.Fix[1]) {
		t.Errorf("description = %q, want the meaning and the numbered fix steps", d)
	}
	if s := timeOf(t, a["startsAt"]); !s.Equal(trigger.FirstSeen) {
		t.Errorf("startsAt = %v, want first seen %v", s, trigger.FirstSeen)
	}
	if e := timeOf(t, a["endsAt"]); !e.Equal(trigger.At.Add(24 * time.Hour)) {
		t.Errorf("endsAt = %v, want trigger + firing_ttl %v", e, trigger.At.Add(24*time.Hour))
	}
	if a["generatorURL"] != trigger.IncidentURL {
		t.Errorf("generatorURL = %v, want %s", a["generatorURL"], trigger.IncidentURL)
	}
	fingerprint := a["fingerprint"]

	// A reminder is the same alert to Alertmanager (same labels, same fingerprint),
	// with endsAt pushed out so that it does not expire while the incident is open.
	reminder := trigger
	reminder.Kind, reminder.Seq, reminder.At = receiver.KindReminder, 2, trigger.At.Add(10*time.Minute)
	if err := n.Send(ctx, reminder); err != nil {
		t.Fatalf("send reminder: %v", err)
	}
	got = am.Alerts(t, filter)
	if len(got) != 1 || got[0]["fingerprint"] != fingerprint || state(got[0]) != "active" {
		t.Fatalf("after the reminder: %v, want the one active alert %v", got, fingerprint)
	}
	if e := timeOf(t, got[0]["endsAt"]); !e.Equal(reminder.At.Add(24 * time.Hour)) {
		t.Errorf("after the reminder endsAt = %v, want %v", e, reminder.At.Add(24*time.Hour))
	}

	ack := trigger
	ack.Kind, ack.AckedBy = receiver.KindAck, "oncall@example.com"
	if err := n.Send(ctx, ack); err != nil {
		t.Fatalf("send ack: %v", err)
	}

	if err := n.Send(ctx, resolved); err != nil {
		t.Fatalf("send resolve: %v", err)
	}
	// What Alertmanager v0.35 shows for a resolved alert: nothing. GET /api/v2/alerts
	// drops every alert whose endsAt has passed before it looks at the active,
	// silenced, inhibited or unprocessed parameters, so there is no "resolved" state
	// to read back; the alert stays in memory only until its GC, to send the resolved
	// notification. To tell "resolved" from "never arrived" the test also reads
	// Alertmanager's count of received alerts: one firing (trigger) plus one firing
	// (reminder), then one resolved, and none invalid.
	if got := am.Alerts(t, filter); len(got) != 0 {
		t.Fatalf("after the resolve Alertmanager still lists %v", got)
	}
	all := am.Alerts(t)
	if len(all) != 0 {
		t.Fatalf("after the resolve Alertmanager lists %v, want nothing", all)
	}
	m := amMetrics(t, am.URL)
	if m[`alertmanager_alerts_received_total{status="firing",version="v2"}`] != 2 ||
		m[`alertmanager_alerts_received_total{status="resolved",version="v2"}`] != 1 ||
		m[`alertmanager_alerts_invalid_total{version="v2"}`] != 0 {
		t.Errorf("received: firing %v resolved %v invalid %v, want 2, 1, 0 (the ack must send nothing)",
			m[`alertmanager_alerts_received_total{status="firing",version="v2"}`],
			m[`alertmanager_alerts_received_total{status="resolved",version="v2"}`],
			m[`alertmanager_alerts_invalid_total{version="v2"}`])
	}
}

func state(a map[string]any) string {
	s, _ := a["status"].(map[string]any)
	v, _ := s["state"].(string)
	return v
}

func strMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, x := range m {
		out[k], _ = x.(string)
	}
	return out
}

func timeOf(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %v: %v", v, err)
	}
	return tm
}

// amMetrics reads Alertmanager's /metrics into series → value, for the alertmanager_
// series without a histogram suffix.
func amMetrics(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "alertmanager_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
