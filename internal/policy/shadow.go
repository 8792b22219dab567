package policy

import (
	"strconv"
	"strings"
	"time"
)

// Disagreement is one event on which a shadow policy would have decided otherwise.
// Live and Shadow are the effects' kinds (EffectKind); LiveEffect and ShadowEffect say
// the whole effect (expiry, scope, soft count), since two effects of one kind may differ.
type Disagreement struct {
	EventID      string `json:"event_id"`
	Recipient    string `json:"recipient"` // local part redacted
	Class        string `json:"class"`
	Live         Action `json:"live"`
	Shadow       Action `json:"shadow"`
	LiveEffect   string `json:"live_effect"`
	ShadowEffect string `json:"shadow_effect"`
	LiveRule     string `json:"live_rule"`
	ShadowRule   string `json:"shadow_rule"`
}

// Effect is what one decision does, as far as comparing two policies goes: a
// shadow policy or a replayed candidate "decides differently" when the effect differs,
// not merely the action's name. Two soft decisions with different thresholds have the
// same action but, at the third soft bounce, different effects.
type Effect struct {
	Suppress bool          // the event writes (or refreshes) a suppression
	TTL      time.Duration // … expiring this long after it is written (0: permanent)
	Global   bool          // the namespace it suppresses or counts in: every tenant, or the event's own
	Soft     bool          // the event counts into the recipient's soft window
	Window   time.Duration // … of this length
	Incident bool          // the event opens or updates a sender-side incident
	Reset    bool          // delivered: the soft window is cleared (and a soft-threshold suppression lifted)

	// SoftCount and Threshold describe a soft decision (its soft bounces within the
	// window, this one included, and the threshold). They explain Suppress; Differs does
	// not compare them: two policies that count different events see different counts
	// without the event having a different effect.
	SoftCount, Threshold int
}

// Effect is the effect of decision d under p. soft is the recipient's number of soft
// bounces within p's window after this event, this one included; it is read only for a
// soft decision, whose effect depends on it (suppressed iff soft ≥ p.SoftThreshold, for
// p.SoftSuppressionTTL). A soft count below 1 is taken as 1: the event itself counts.
func (p *Policy) Effect(d Decision, soft int) Effect {
	switch d.Action {
	case ActionSuppress:
		return Effect{Suppress: true, TTL: d.SuppressTTL, Global: d.Global}
	case ActionSoft:
		soft = max(soft, 1)
		e := Effect{Soft: true, Window: p.SoftWindow, Global: d.Global, SoftCount: soft, Threshold: p.SoftThreshold}
		if soft >= p.SoftThreshold {
			e.Suppress, e.TTL = true, p.SoftSuppressionTTL
		}
		return e
	case ActionAlert:
		return Effect{Incident: true}
	case ActionReset:
		return Effect{Reset: true, Global: d.Global}
	}
	return Effect{}
}

// Differs reports whether two effects differ: suppressed or not, the expiry, the scope,
// counted in the soft window or not and the window's length, an incident or not, a
// reset or not. The scope matters only where the event suppresses, counts or resets.
func Differs(a, b Effect) bool {
	if !a.Suppress && !a.Soft && !a.Reset {
		a.Global = false
	}
	if !b.Suppress && !b.Soft && !b.Reset {
		b.Global = false
	}
	a.SoftCount, a.Threshold, b.SoftCount, b.Threshold = 0, 0, 0, 0
	return a != b
}

// Kind names the effect by the action that has it: suppress (a suppression is
// written, by a hard bounce or by the soft threshold), soft (counted, not suppressed),
// alert, reset or none. It is a closed set, fit for a metric label.
func (e Effect) Kind() Action {
	switch {
	case e.Suppress:
		return ActionSuppress
	case e.Soft:
		return ActionSoft
	case e.Incident:
		return ActionAlert
	case e.Reset:
		return ActionReset
	}
	return ActionNone
}

// Summary describes the effect without the soft count, e.g. "suppress for 30d (global)",
// "soft, 7d window (tenant)"; equal effects have equal summaries.
func (e Effect) Summary() string {
	return e.describe(false)
}

// String describes the effect with the soft count, e.g.
// "soft 3/1 in 7d window → suppress for 30d (global)".
func (e Effect) String() string {
	return e.describe(true)
}

func (e Effect) describe(count bool) string {
	scope := "tenant"
	if e.Global {
		scope = "global"
	}
	var b strings.Builder
	if e.Soft {
		b.WriteString("soft")
		if count {
			b.WriteString(" " + strconv.Itoa(e.SoftCount) + "/" + strconv.Itoa(e.Threshold) + " in")
		} else {
			b.WriteString(",")
		}
		b.WriteString(" " + FormatDuration(e.Window) + " window")
		if e.Suppress {
			b.WriteString(" → ")
		}
	}
	switch {
	case e.Suppress:
		b.WriteString("suppress ")
		if e.TTL > 0 {
			b.WriteString("for " + FormatDuration(e.TTL))
		} else {
			b.WriteString("permanently")
		}
	case e.Incident:
		return "incident"
	case e.Reset:
		b.WriteString("reset")
	case !e.Soft:
		return "record"
	}
	b.WriteString(" (" + scope + ")")
	return b.String()
}

// FormatDuration writes a duration as the policy file would: "7d", "30d", "36h", "90s",
// "1d12h".
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	day := 24 * time.Hour
	days, rest := d/day, d%day
	s := ""
	if days > 0 {
		s = strconv.FormatInt(int64(days), 10) + "d"
	}
	if rest == 0 {
		return s
	}
	h, m := rest/time.Hour, rest%time.Hour/time.Minute
	switch {
	case rest%time.Minute != 0:
		return s + rest.String()
	case h > 0 && m > 0:
		return s + strconv.FormatInt(int64(h), 10) + "h" + strconv.FormatInt(int64(m), 10) + "m"
	case h > 0:
		return s + strconv.FormatInt(int64(h), 10) + "h"
	}
	r := strconv.FormatInt(int64(m), 10) + "m"
	return s + r
}
