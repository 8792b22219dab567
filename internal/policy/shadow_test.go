package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/reboundhq/rebound/internal/catalog"
	"github.com/reboundhq/rebound/internal/events"
)

func parse(t *testing.T, src string) *Policy {
	t.Helper()
	cat, err := catalog.Default()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse([]byte(src), "t.yaml", cat)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDiffersComparesEffects: two policies decide "differently" where the effect
// differs — suppressed or not, expiry, scope, soft window, incident — not only where the
// action's name does (issue #15: a soft threshold 3 → 1 was "no disagreement").
func TestDiffersComparesEffects(t *testing.T) {
	t.Parallel()
	const base = "version: 1\nsoft: {threshold: 3, window: 7d, ttl: 30d}\n"
	live := parse(t, base)
	bounce := &events.Event{Type: events.TypeBounce, Recipient: "a@example.com"}
	for _, tc := range []struct {
		name    string
		shadow  string
		cl      catalog.Classification
		soft    int // the live soft count after the event
		differs bool
	}{
		{"same policy", base, mailboxFull, 1, false},
		{"soft threshold 3 → 1, first soft bounce", "version: 1\nsoft: {threshold: 1, window: 7d, ttl: 30d}\n", mailboxFull, 1, true},
		{"soft threshold 3 → 2, first soft bounce", "version: 1\nsoft: {threshold: 2, window: 7d, ttl: 30d}\n", mailboxFull, 1, false},
		{"soft threshold 3 → 2, second soft bounce", "version: 1\nsoft: {threshold: 2, window: 7d, ttl: 30d}\n", mailboxFull, 2, true},
		{"soft ttl, below the threshold", "version: 1\nsoft: {threshold: 3, window: 7d, ttl: 1d}\n", mailboxFull, 2, false},
		{"soft ttl, at the threshold", "version: 1\nsoft: {threshold: 3, window: 7d, ttl: 1d}\n", mailboxFull, 3, true},
		{"soft window", "version: 1\nsoft: {threshold: 3, window: 1d, ttl: 30d}\n", mailboxFull, 1, true},
		{"soft scope", base + "scopes: {recipient_transient: {action: soft, scope: tenant}}\n", mailboxFull, 1, true},
		{"hard ttl", base + "classes: {recipient_unknown: {action: suppress, ttl: 7d}}\n", recipientUnknown, 0, true},
		{"hard scope", base + "suppression_scope: tenant\n", recipientUnknown, 0, true},
		{"soft settings do not touch a hard bounce", "version: 1\nsoft: {threshold: 1, window: 1d, ttl: 1d}\n", recipientUnknown, 0, false},
		{"scope does not touch an incident", base + "suppression_scope: tenant\n", authRequired, 0, false},
		{"incident → record", base + "classes: {auth_required: record}\n", authRequired, 0, true},
	} {
		shadow := parse(t, tc.shadow)
		ld, sd := live.Decide(bounce, tc.cl), shadow.Decide(bounce, tc.cl)
		le, se := live.Effect(ld, tc.soft), shadow.Effect(sd, tc.soft)
		if got := Differs(le, se); got != tc.differs {
			t.Errorf("%s: Differs(%s, %s) = %t, want %t", tc.name, le, se, got, tc.differs)
		}
	}
}

func TestEffectDescribes(t *testing.T) {
	t.Parallel()
	p := parse(t, "version: 1\nsoft: {threshold: 3, window: 7d, ttl: 30d}\nclasses: {recipient_unknown: {action: suppress, ttl: 36h, scope: tenant}}\n")
	bounce := &events.Event{Type: events.TypeBounce, Recipient: "a@example.com"}
	for _, tc := range []struct {
		e         Effect
		kind      Action
		str, summ string
	}{
		{p.Effect(p.Decide(bounce, mailboxFull), 1), ActionSoft, "soft 1/3 in 7d window (global)", "soft, 7d window (global)"},
		{p.Effect(p.Decide(bounce, mailboxFull), 4), ActionSuppress, "soft 4/3 in 7d window → suppress for 30d (global)", "soft, 7d window → suppress for 30d (global)"},
		{p.Effect(p.Decide(bounce, recipientUnknown), 0), ActionSuppress, "suppress for 1d12h (tenant)", "suppress for 1d12h (tenant)"},
		{p.Effect(p.Decide(bounce, authRequired), 0), ActionAlert, "incident", "incident"},
		{p.Effect(p.Decide(bounce, tooLarge), 0), ActionNone, "record", "record"},
	} {
		if tc.e.Kind() != tc.kind || tc.e.String() != tc.str || tc.e.Summary() != tc.summ {
			t.Errorf("effect %+v: kind %s, %q, %q; want %s, %q, %q", tc.e, tc.e.Kind(), tc.e.String(), tc.e.Summary(), tc.kind, tc.str, tc.summ)
		}
	}
	for d, want := range map[time.Duration]string{30 * time.Minute: "30m", 90 * time.Second: "1m30s", 2 * time.Hour: "2h", 90 * time.Minute: "1h30m", 7 * 24 * time.Hour: "7d", 0: "0s"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestMassBounceTenantThreshold(t *testing.T) {
	t.Parallel()
	if mb := Default().MassBounce; mb.PerTenant() != 100 || mb.Threshold != 100 {
		t.Fatalf("default mass_bounce = %+v, want both thresholds 100", mb)
	}
	p := parse(t, "version: 1\nsoft: {threshold: 3, window: 7d, ttl: 30d}\nmass_bounce: {threshold: 1000}\n")
	if p.MassBounce.PerTenant() != 1000 {
		t.Fatalf("tenant threshold unset = %d, want the threshold", p.MassBounce.PerTenant())
	}
	p = parse(t, "version: 1\nsoft: {threshold: 3, window: 7d, ttl: 30d}\nmass_bounce: {threshold: 1000, tenant_threshold: 200}\n")
	if p.MassBounce.PerTenant() != 200 {
		t.Fatalf("tenant threshold = %d, want 200", p.MassBounce.PerTenant())
	}
	cat, _ := catalog.Default()
	for _, bad := range []string{"{threshold: 100, tenant_threshold: 101}", "{tenant_threshold: 1}"} {
		_, err := Parse([]byte("version: 1\nsoft: {threshold: 3, window: 7d, ttl: 30d}\nmass_bounce: "+bad+"\n"), "t.yaml", cat)
		if err == nil || !strings.Contains(err.Error(), "tenant_threshold") {
			t.Errorf("mass_bounce %s = %v, want refused naming tenant_threshold", bad, err)
		}
	}
}
