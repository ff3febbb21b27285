// Package alerts watches the request log and calls webhooks when a metric
// crosses a threshold.
//
// A rule names a metric (cost_usd, error_rate as a fraction from 0 to 1,
// latency_p95_ms), a threshold, a window (1m to 7d), an optional scope
// (model, user, one property), a webhook URL (http or https) and a
// cooldown (default 1h). Rules come from a YAML file (LoadFile; read-only
// through the API) or from the HTTP API (Manager.Create and Delete; kept
// in the Store, in production chquery.Alerts: ClickHouse, table
// alert_rules, so they survive a restart). Rules are
// global: they see every tenant's requests within their scope.
//
// Every Interval (Start) or on demand (EvaluateOnce) each enabled rule's
// metric is measured over [now - window, now]. A value above the threshold
// opens an incident and fires one event, notified by a JSON POST
//
//	{"rule": {…}, "value": 12.5, "threshold": 10, "window": "15m",
//	 "fired_at": "2026-03-01T10:00:00Z", "dashboard_url": "…"}
//
// with a timeout and bounded retries (5xx, 408, 429 and network errors),
// and header X-Tollgate-Alert-Event carrying the event id. While the
// incident lasts nothing more fires; it ends when the value is back at or
// below the threshold. A new breach then fires again, but not before the
// cooldown since the last event has passed.
//
// Events are recorded in the Store before they are sent (table
// alert_events), and the state (open incidents, cooldowns, deliveries due)
// is read from it at every evaluation, so it survives a restart and is shared
// between replicas. Replicas that fire the same incident at once decide by
// their claims: the earliest sends, the others do not (EvaluateOnce tells
// what is left of that race). An event the webhook did not take (network
// error, 5xx after the retries, a shutdown in the middle) is tried again
// by later evaluations while its incident is open, at most 5 tries spread
// over the cooldown; a 4xx other than 408 and 429 is final.
//
// A rule's incident and cooldown belong to its generation: its metric,
// threshold, window, scope and webhook URL. Events of another generation
// do not count, and the open incidents of a rule that is changed,
// disabled or deleted are closed at the next evaluation.
//
// Webhook URLs may carry tokens: they are never logged, never sent in the
// payload, shown by the API as their origin only, and delivery errors
// name neither them nor the host or its addresses. By default webhooks
// may reach public addresses only (Options.AllowPrivateWebhooks), checked
// for every connection after DNS resolution. Metrics:
// tollgate_alert_evaluations_total{outcome}, tollgate_alerts_fired_total
// {metric}, tollgate_alert_delivery_failures_total.
package alerts
