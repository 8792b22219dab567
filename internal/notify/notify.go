// Package notify is the notify role: it sends each sender-side incident's alert once,
// when the incident opens, with the catalog's fix steps. It works from the pending
// queue in Redis rather than from an in-process channel, so an alert survives a crash
// of the process that opened the incident and the role can run as its own Deployment.
// This first notifier writes a log line and, when REBOUND_ALERT_WEBHOOK_URL is set,
// POSTs the incident as JSON.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/reboundhq/rebound/internal/metrics"
	"github.com/reboundhq/rebound/internal/suppress"
)

// Notifier polls the pending queue and sends alerts.
type Notifier struct {
	Store      *suppress.Store
	WebhookURL string // optional; may carry a token, so it is never logged
	Client     *http.Client
	Metrics    *metrics.Metrics
	Log        *zap.Logger
	Interval   time.Duration // poll interval (default 1s)
	// OnSent, if set, is called after an alert was sent (the demo prints it).
	OnSent func(suppress.Incident)
}

// Alert is the JSON body POSTed to the alert webhook.
type Alert struct {
	Kind     string            `json:"kind"` // "rebound.incident.opened"
	Summary  string            `json:"summary"`
	Incident suppress.Incident `json:"incident"`
}

// Run polls until ctx is cancelled.
func (n *Notifier) Run(ctx context.Context) error {
	interval := n.Interval
	if interval <= 0 {
		interval = time.Second
	}
	if n.Client == nil {
		n.Client = &http.Client{Timeout: 10 * time.Second}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n.sweep(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (n *Notifier) sweep(ctx context.Context) {
	incs, err := n.Store.PendingNotifications(ctx, 100)
	if err != nil {
		if ctx.Err() == nil {
			n.Log.Warn("notify: read pending alerts", zap.Error(err))
		}
		return
	}
	for _, inc := range incs {
		// The claim outlives one send attempt, so a failing receiver is retried at that pace.
		ok, err := n.Store.ClaimNotification(ctx, inc.Fingerprint, 30*time.Second)
		if err != nil || !ok {
			continue
		}
		if err := n.send(ctx, inc); err != nil {
			n.Metrics.Notifications.WithLabelValues("failed").Inc()
			n.Log.Warn("notify: alert not sent; will retry", zap.String("fingerprint", inc.Fingerprint), zap.Error(err))
			continue
		}
		if err := n.Store.MarkNotified(ctx, inc.Fingerprint); err != nil {
			n.Log.Warn("notify: alert sent but not marked; it may be sent again", zap.Error(err))
			continue
		}
		n.Metrics.Notifications.WithLabelValues("sent").Inc()
		if n.OnSent != nil {
			n.OnSent(inc)
		}
	}
}

// Summary is the one-line description of an incident used in alerts.
func Summary(inc suppress.Incident) string {
	where := inc.SendingDomain
	if where == "" {
		where = "(unknown sending domain)"
	}
	if inc.SendingIP != "" {
		where += " via " + inc.SendingIP
	}
	return fmt.Sprintf("Sender-side %s on %s: %d event(s), e.g. %q", inc.Class, where, inc.Count, inc.ExampleReply)
}

func (n *Notifier) send(ctx context.Context, inc suppress.Incident) error {
	n.Log.Warn("ALERT: sender-side incident opened",
		zap.String("class", inc.Class), zap.String("tenant", inc.Tenant), zap.String("sending_domain", inc.SendingDomain),
		zap.String("sending_ip", inc.SendingIP), zap.String("code", inc.Code), zap.Int("count", inc.Count),
		zap.String("example_reply", inc.ExampleReply), zap.Strings("fix", inc.Fix), zap.String("fingerprint", inc.Fingerprint))
	if n.WebhookURL == "" {
		return nil
	}
	body, err := json.Marshal(Alert{Kind: "rebound.incident.opened", Summary: Summary(inc), Incident: inc})
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("alert request: %w", redact(err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post alert: %w", redact(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post alert: receiver answered %s", resp.Status)
	}
	return nil
}

// redact drops the URL from a client error: alert URLs often carry a token.
func redact(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok {
		if inner := u.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
