// Package metrics defines Rebound's Prometheus metrics in one place, so names, labels
// and their closed value sets are reviewed together. Labels never carry addresses or
// domains: only ESP, class, scope, action, stage and reason from closed sets.
package metrics

import "github.com/prometheus/client_golang/prometheus"

// Metrics holds every collector. Each process (and each test) makes its own registry.
type Metrics struct {
	Registry *prometheus.Registry

	WebhookRequests  *prometheus.CounterVec   // esp, code
	WebhookSeconds   *prometheus.HistogramVec // esp
	EventsIngested   *prometheus.CounterVec   // esp
	EventsRejected   *prometheus.CounterVec   // esp, reason
	EventsProcessed  *prometheus.CounterVec   // esp, class, scope, action
	EventsDuplicate  *prometheus.CounterVec   // esp
	EventsFailed     *prometheus.CounterVec   // stage, reason
	DeadLetters      *prometheus.CounterVec   // stage
	BatchSeconds     prometheus.Histogram
	BatchSize        prometheus.Histogram
	Suppressions     *prometheus.CounterVec // reason
	IncidentsOpened  *prometheus.CounterVec // class
	ConsumerPending  prometheus.Gauge
	ConsumerAckPend  prometheus.Gauge
	ConsumerRedelivd prometheus.Gauge
	// ConsumerStallRecoveries counts the times the process role found its consumer
	// stalled (nothing delivered while the stream had pending events) and re-created it.
	ConsumerStallRecoveries prometheus.Counter
	// ProcessPaused is 1 while the process role has stopped pulling because Redis is
	// unavailable; ProcessPauses counts the pauses.
	ProcessPaused prometheus.Gauge
	ProcessPauses prometheus.Counter
	// DeadLetterMessages is the dead-letter stream's message count: it grows whoever
	// wrote the letters (every replica, ingest or process, the MaxDeliver advisory).
	DeadLetterMessages prometheus.Gauge

	ShadowDisagreements *prometheus.CounterVec // class, live, shadow
	PolicyReloads       *prometheus.CounterVec // result
	SuppressionsHeld    prometheus.Counter
	UnknownReplies      *prometheus.CounterVec // esp
	// GuardHoldsExpired counts mass-bounce holds nobody decided on within hold_for,
	// discarded by the sweeper; GuardExpiredSuppressions the held suppressions they kept.
	GuardHoldsExpired        prometheus.Counter
	GuardExpiredSuppressions prometheus.Counter

	IncidentsReopened *prometheus.CounterVec   // class
	IncidentsResolved *prometheus.CounterVec   // class, how (quiet, manual, expired)
	IncidentsActive   prometheus.Gauge         // incidents not resolved
	AlertSent         *prometheus.CounterVec   // receiver, kind
	AlertFailed       *prometheus.CounterVec   // receiver, reason
	AlertRetried      *prometheus.CounterVec   // receiver
	AlertDropped      *prometheus.CounterVec   // receiver, reason
	AlertSendSeconds  *prometheus.HistogramVec // receiver
}

// New registers every collector on a fresh registry, with the Go and process collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry:                 r,
		WebhookRequests:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_webhook_requests_total", Help: "Webhook requests by ESP and HTTP status code."}, []string{"esp", "code"}),
		WebhookSeconds:           prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rebound_webhook_request_seconds", Help: "Time to verify, parse and publish one webhook request.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"esp"}),
		EventsIngested:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_events_ingested_total", Help: "Canonical events published to JetStream."}, []string{"esp"}),
		EventsRejected:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_events_rejected_total", Help: "Webhook items that were not turned into events (dead-lettered or ignored on purpose)."}, []string{"esp", "reason"}),
		EventsProcessed:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_events_processed_total", Help: "Events processed by class, scope and action."}, []string{"esp", "class", "scope", "action"}),
		EventsDuplicate:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_events_duplicate_total", Help: "Redelivered or re-sent events that changed nothing."}, []string{"esp"}),
		EventsFailed:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_events_failed_total", Help: "Events that failed a step and were retried or dead-lettered."}, []string{"stage", "reason"}),
		DeadLetters:              prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_dead_letters_total", Help: "Items written to the dead-letter stream."}, []string{"stage"}),
		BatchSeconds:             prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rebound_process_batch_seconds", Help: "Time to process one batch (decode, classify, Redis, ack).", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		BatchSize:                prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rebound_process_batch_events", Help: "Events per processed batch.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		Suppressions:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_suppressions_total", Help: "Recipients newly suppressed, by reason."}, []string{"reason"}),
		IncidentsOpened:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_incidents_opened_total", Help: "Sender-side incidents opened, by class."}, []string{"class"}),
		IncidentsReopened:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_incidents_reopened_total", Help: "Resolved incidents whose fault showed again, by class."}, []string{"class"}),
		IncidentsResolved:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_incidents_resolved_total", Help: "Incidents resolved, by class and how (quiet, manual, expired)."}, []string{"class", "how"}),
		IncidentsActive:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "rebound_incidents_active", Help: "Incidents not resolved (as of the notify role's last sweep)."}),
		AlertSent:                prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_alert_notifications_sent_total", Help: "Incident notifications delivered, by receiver and kind (trigger, reminder, ack, resolve)."}, []string{"receiver", "kind"}),
		AlertFailed:              prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_alert_notifications_failed_total", Help: "Failed notification attempts, by receiver and reason."}, []string{"receiver", "reason"}),
		AlertRetried:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_alert_notifications_retried_total", Help: "Failed notification attempts scheduled for a retry, by receiver."}, []string{"receiver"}),
		AlertDropped:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_alert_notifications_dropped_total", Help: "Notifications given up on (refused by the receiver, or expired), by receiver and reason."}, []string{"receiver", "reason"}),
		AlertSendSeconds:         prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rebound_alert_send_seconds", Help: "Time of one notification attempt, by receiver.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"receiver"}),
		ConsumerPending:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "rebound_consumer_pending_events", Help: "Events in the stream not yet delivered to the process role (consumer lag)."}),
		ConsumerAckPend:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "rebound_consumer_ack_pending_events", Help: "Events delivered but not yet acknowledged."}),
		ConsumerRedelivd:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "rebound_consumer_redelivered_events", Help: "Events currently being redelivered."}),
		ConsumerStallRecoveries:  prometheus.NewCounter(prometheus.CounterOpts{Name: "rebound_consumer_stall_recoveries_total", Help: "Times the process role found its consumer stalled (nothing delivered while events were pending) and re-created it."}),
		ProcessPaused:            prometheus.NewGauge(prometheus.GaugeOpts{Name: "rebound_process_paused", Help: "1 while the process role has stopped pulling events because Redis is unavailable."}),
		ProcessPauses:            prometheus.NewCounter(prometheus.CounterOpts{Name: "rebound_process_pauses_total", Help: "Times the process role stopped pulling events because Redis was unavailable."}),
		DeadLetterMessages:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "rebound_dead_letter_stream_messages", Help: "Messages in the dead-letter stream (as of the process role's last look)."}),
		ShadowDisagreements:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_policy_shadow_disagreements_total", Help: "Events on which the shadow policy would have decided otherwise."}, []string{"class", "live", "shadow"}),
		UnknownReplies:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_unknown_replies_total", Help: "Events whose reply no rule recognised (class unknown, or decided by the statistical fallback alone), by ESP: review them with GET /v1/unknown-replies."}, []string{"esp"}),
		SuppressionsHeld:         prometheus.NewCounter(prometheus.CounterOpts{Name: "rebound_suppressions_held_total", Help: "Suppressions held by the mass-bounce guard instead of applied."}),
		GuardHoldsExpired:        prometheus.NewCounter(prometheus.CounterOpts{Name: "rebound_guard_holds_expired_total", Help: "Mass-bounce holds nobody applied or discarded within hold_for, discarded by the sweeper."}),
		GuardExpiredSuppressions: prometheus.NewCounter(prometheus.CounterOpts{Name: "rebound_guard_expired_suppressions_total", Help: "Held suppressions discarded because their mass-bounce hold expired undecided."}),
		PolicyReloads:            prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebound_policy_reloads_total", Help: "Policy file reloads by result (applied, refused)."}, []string{"result"}),
	}
	r.MustRegister(
		m.ShadowDisagreements, m.PolicyReloads, m.SuppressionsHeld, m.UnknownReplies, m.GuardHoldsExpired, m.GuardExpiredSuppressions,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}),
		m.WebhookRequests, m.WebhookSeconds, m.EventsIngested, m.EventsRejected, m.EventsProcessed,
		m.EventsDuplicate, m.EventsFailed, m.DeadLetters, m.BatchSeconds, m.BatchSize, m.Suppressions,
		m.IncidentsOpened, m.IncidentsReopened, m.IncidentsResolved, m.IncidentsActive,
		m.AlertSent, m.AlertFailed, m.AlertRetried, m.AlertDropped, m.AlertSendSeconds, m.ConsumerPending, m.ConsumerAckPend, m.ConsumerRedelivd,
		m.ConsumerStallRecoveries, m.ProcessPaused, m.ProcessPauses, m.DeadLetterMessages,
	)
	return m
}
