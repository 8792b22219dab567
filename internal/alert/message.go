package alert

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/reboundhq/rebound/internal/alert/receiver"
	"github.com/reboundhq/rebound/internal/catalog"
)

// Describer looks up what a code means (the catalog).
type Describer interface {
	Entry(code string) (catalog.Entry, bool)
}

// Notification builds what receivers are sent for one transition of inc.
func (c *Config) Notification(inc *Incident, t Transition, cat Describer) receiver.Notification {
	n := receiver.Notification{
		Kind: kindOf(t.Kind), ID: inc.ID, Seq: t.Seq, At: t.At,
		Class: inc.Class, Severity: inc.Severity, State: string(inc.State),
		Tenant: inc.Tenant, SendingDomain: inc.SendingDomain, SendingIP: inc.SendingIP, ReceivingDomain: inc.ReceivingDomain,
		Code: inc.Code, Rule: inc.Rule, ESP: inc.ESP,
		Messages: inc.Messages, Recipients: inc.Recipients, FirstSeen: inc.FirstSeen, LastSeen: inc.LastSeen,
		ResolvedAt: inc.ResolvedAt, ResolvedBy: inc.ResolvedBy, AckedBy: inc.AckedBy, Reopened: inc.Reopened,
		Examples: inc.Examples, ReceivingDomains: inc.Domains, Fix: inc.Fix,
	}
	if cat != nil && inc.Code != "" {
		if e, ok := cat.Entry(inc.Code); ok {
			n.CodeTitle, n.Meaning = e.Title, e.Meaning
		}
	}
	// A resolve or an ack is reported as the transition recorded it: the incident may
	// have moved on since (a late resolve of a reopened incident has no resolved_at or
	// resolved_by any more, or those of a later resolve).
	switch n.Kind {
	case receiver.KindResolve:
		n.ResolvedAt, n.ResolvedBy = t.At, t.By
	case receiver.KindAck:
		n.AckedBy = t.By
	}
	n.Summary = Summary(inc, n.CodeTitle)
	if c.RunbookURL != "" {
		n.RunbookURL = strings.NewReplacer("{class}", inc.Class, "{code}", inc.Code, "{severity}", inc.Severity, "{id}", inc.ID).Replace(c.RunbookURL)
	}
	if c.ExternalURL != "" {
		n.IncidentURL = c.ExternalURL + "/v1/alerts/" + inc.ID
	}
	return n
}

func kindOf(k string) receiver.Kind {
	switch k {
	case "resolve":
		return receiver.KindResolve
	case "ack":
		return receiver.KindAck
	case "reminder":
		return receiver.KindReminder
	}
	return receiver.KindTrigger
}

// Summary is the one line that says what happened, e.g. "SMTP 530 Authentication
// required for mail.example.com via 192.0.2.10 — 1,243 messages to 1,201 recipients
// in 5 min".
func Summary(inc *Incident, codeTitle string) string {
	span := humanSpan(inc.LastSeen.Sub(inc.FirstSeen))
	if inc.Class == ClassMassBounce {
		return fmt.Sprintf("Mass bounce at %s: %s recipients answered %s %s; new suppressions for the domain are held",
			inc.ReceivingDomain, thousands(inc.Recipients), orWord(inc.Code, "hard bounces"), span)
	}
	what := inc.Class
	if inc.Code != "" {
		what = "SMTP " + inc.Code
		if codeTitle != "" {
			what += " " + codeTitle
		}
	}
	where := inc.SendingDomain
	if where == "" {
		where = "an unknown sending domain"
	}
	if inc.SendingIP != "" {
		where += " via " + inc.SendingIP
	}
	if inc.Tenant != "" {
		where += " (tenant " + inc.Tenant + ")"
	}
	return fmt.Sprintf("%s for %s — %s %s to %s %s %s", what, where,
		thousands(inc.Messages), plural(inc.Messages, "message", "messages"),
		thousands(inc.Recipients), plural(inc.Recipients, "recipient", "recipients"), span)
}

func orWord(s, w string) string {
	if s == "" {
		return w
	}
	return s
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// humanSpan says how long the episode has lasted: "in under a minute", "in 5 min",
// "in 2 h 10 min".
func humanSpan(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "in under a minute"
	case d < time.Hour:
		return fmt.Sprintf("in %d min", int(d.Minutes()))
	default:
		h := int(d.Hours())
		m := int(d.Minutes()) - 60*h
		if m == 0 {
			return fmt.Sprintf("in %d h", h)
		}
		return fmt.Sprintf("in %d h %d min", h, m)
	}
}

// thousands writes n with comma separators: 1243 → "1,243".
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
