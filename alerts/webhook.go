package alerts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// payload is the JSON body POSTed to a rule's webhook.
type payload struct {
	Rule         Rule      `json:"rule"` // without webhook_url: the receiver knows it
	Value        float64   `json:"value"`
	Threshold    float64   `json:"threshold"`
	Window       string    `json:"window"`
	FiredAt      time.Time `json:"fired_at"`
	DashboardURL string    `json:"dashboard_url,omitempty"`
}

// notifier POSTs payloads with a timeout per attempt and a bounded number
// of attempts, backing off between them.
type notifier struct {
	client   *http.Client
	timeout  time.Duration
	attempts int
	backoff  time.Duration // before the second attempt; doubled after
}

// send delivers body to target; the error says why the last attempt
// failed, never naming the URL (it may hold a token).
func (n *notifier) send(ctx context.Context, target, eventID string, body []byte) (attempts int, err error) {
	wait := n.backoff
	for attempts = 1; ; attempts++ {
		retry, err := n.attempt(ctx, target, eventID, body)
		if err == nil {
			return attempts, nil
		}
		if !retry || attempts >= n.attempts {
			return attempts, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempts, err
		case <-t.C:
		}
		wait *= 2
	}
}

func (n *notifier) attempt(ctx context.Context, target, eventID string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("the webhook URL cannot be requested")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tollgate-alerts")
	// Lets a receiver drop the repeat of an attempt that did arrive.
	req.Header.Set("X-Tollgate-Alert-Event", eventID)
	resp, err := n.client.Do(req)
	if err != nil {
		return ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded), n.describe(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
	return retry, fmt.Errorf("webhook answered HTTP %d", resp.StatusCode)
}

// describe drops the URL that net/http puts in its errors.
func (n *notifier) describe(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("webhook did not answer within %s", n.timeout)
		}
		err = ue.Err
	}
	return fmt.Errorf("webhook unreachable: %w", err)
}

// noRedirects keeps a delivery at the configured URL: a redirect is
// reported as the 3xx it is.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
