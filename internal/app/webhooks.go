package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/webhook"
)

// withWebhooks puts the webhook dispatcher in front of the log sink when
// destinations are configured: every record written to the log (proxied
// calls and those logged through the API alike) is offered to it first,
// without waiting. Closing the sink drains the webhooks.
func withWebhooks(sink record.Sink, cfg *Config, reg prometheus.Registerer, log *slog.Logger) (record.Sink, error) {
	d, err := webhook.New(webhook.Options{
		Destinations: cfg.Webhooks,
		QueueSize:    cfg.WebhookQueueSize,
		Workers:      cfg.WebhookWorkers,
		Timeout:      cfg.WebhookTimeout.Duration,
		MaxAttempts:  cfg.WebhookMaxAttempts,
		MaxBody:      cfg.WebhookMaxBody,
		Registerer:   reg,
		Logger:       log,
	})
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sink.Close(ctx) // serve gives up: the log opened before must not leak
		return nil, err
	}
	if d != nil {
		log.Info("posting finished calls to webhooks", "destinations", len(cfg.Webhooks))
	}
	return webhook.Tee(sink, d), nil
}
