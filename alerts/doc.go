// Package alerts watches the request log and calls webhooks when a metric
// crosses a threshold.
//
// A rule names a metric (cost_usd, error_rate as a fraction from 0 to 1,
// latency_p95_ms), a threshold, a window (1m to 7d), an optional scope
// (model, user, one property), a webhook URL (http or https) and a
// cooldown (default 1h). Rules come from a YAML file (LoadFile; read-only
// through the API) or from the HTTP API (Manager.Create and Delete; stored
// in ClickHouse, table alert_rules, so they survive a restart). Rules are
// global: they see every tenant's requests within their scope.
//
// Every Interval (Start) or on demand (EvaluateOnce) each enabled rule's
// metric is measured over [now - window, now]. A value above the threshold
// opens an incident and notifies once: a JSON POST
//
//	{"rule": {…}, "value": 12.5, "threshold": 10, "window": "15m",
//	 "fired_at": "2026-03-01T10:00:00Z", "dashboard_url": "…"}
//
// with a timeout and bounded retries (5xx, 429 and network errors), and
// header X-Tollgate-Alert-Event carrying the event id. The event is
// recorded (table alert_events) whether or not the webhook took it, and
// starts the cooldown. While the incident lasts nothing more is sent; it
// ends when the value is back at or below the threshold. A new breach then
// notifies again, but not before the cooldown has passed. Both facts are
// derived from the rule's latest event in ClickHouse at every evaluation,
// so they survive a restart and are shared between replicas (two replicas
// evaluating in the same instant can still both notify).
//
// Webhook URLs may carry tokens: they are never logged, never sent in the
// payload, and delivery errors leave them out. Metrics:
// tollgate_alert_evaluations_total{outcome}, tollgate_alerts_fired_total
// {metric}, tollgate_alert_delivery_failures_total.
package alerts
