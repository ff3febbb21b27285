package alerts

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
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

// budget is the longest one try (send) can take, with some slack: how
// long a claim keeps other replicas from trying the same event.
func (n *notifier) budget() time.Duration {
	d := time.Duration(n.attempts)*n.timeout + n.backoff*(1<<uint(min(n.attempts-1, 20))-1)
	return d + recordTimeout + 30*time.Second
}

// tryResult is the outcome of one try (up to attempts requests).
type tryResult struct {
	requests int
	err      error // why the last request failed; nil: delivered
	// final: the webhook refused the notification for good (HTTP 4xx
	// other than 408 and 429): no later try.
	final bool
}

// send delivers body to target; the error says why the last attempt
// failed, never naming the URL (it may hold a token), the host or its
// address.
func (n *notifier) send(ctx context.Context, target, eventID string, body []byte) tryResult {
	wait := n.backoff
	for requests := 1; ; requests++ {
		retry, final, err := n.attempt(ctx, target, eventID, body)
		if err == nil {
			return tryResult{requests: requests}
		}
		if !retry || requests >= n.attempts {
			return tryResult{requests: requests, err: err, final: final}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return tryResult{requests: requests, err: err}
		case <-t.C:
		}
		wait *= 2
	}
}

func (n *notifier) attempt(ctx context.Context, target, eventID string, body []byte) (retry, final bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, true, errors.New("the webhook URL cannot be requested")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tollgate-alerts")
	// Lets a receiver drop the repeat of an attempt that did arrive.
	req.Header.Set("X-Tollgate-Alert-Event", eventID)
	resp, err := n.client.Do(req)
	if err != nil {
		var refused *refusedError
		if errors.As(err, &refused) {
			return false, false, n.describe(err, target)
		}
		return ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded), false, n.describe(err, target)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, false, nil
	}
	retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout
	return retry, !retry && resp.StatusCode >= 400, fmt.Errorf("webhook answered HTTP %d", resp.StatusCode)
}

// describe turns a request error into a delivery error that names neither
// the URL (net/http puts it in its errors) nor the host name or address
// (DNS and dial errors carry them): delivery errors are shown by the API.
func (n *notifier) describe(err error, target string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("webhook did not answer within %s", n.timeout)
		}
		err = ue.Err
	}
	var refused *refusedError
	if errors.As(err, &refused) {
		return errors.New("webhook refused: " + refused.Error())
	}
	return errors.New("webhook unreachable: " + scrub(netErrorText(err), target))
}

// netErrorText describes a network error without its host name and
// addresses.
func netErrorText(err error) string {
	var dnsErr *net.DNSError
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var certErr x509.CertificateInvalidError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsNotFound:
			return "DNS lookup: no such host"
		case dnsErr.IsTimeout:
			return "DNS lookup timed out"
		default:
			return "DNS lookup failed: " + dnsErr.Err
		}
	case errors.As(err, &hostErr):
		return "the TLS certificate is not valid for the webhook's host"
	case errors.As(err, &authErr):
		return "the TLS certificate is signed by an unknown authority"
	case errors.As(err, &certErr):
		if certErr.Reason == x509.Expired {
			return "the TLS certificate has expired or is not yet valid"
		}
		return "the TLS certificate is not valid"
	case errors.As(err, &opErr):
		// OpError.Error() names the source and destination addresses.
		op := opErr.Op
		if opErr.Net != "" {
			op += " " + opErr.Net
		}
		var se *os.SyscallError
		if errors.As(opErr.Err, &se) {
			return op + ": " + se.Syscall + ": " + se.Err.Error()
		}
		if opErr.Err != nil {
			return op + ": " + netErrorText(opErr.Err)
		}
		return op + " failed"
	}
	return err.Error()
}

var (
	ipv4Text = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b`)
	ipv6Text = regexp.MustCompile(`\[[0-9A-Fa-f:.]+(%[0-9A-Za-z._-]+)?\](:\d+)?|\b([0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}\b`)
)

// scrub removes what is left of the target's host, address, path and
// query from an error text (a last line of defence: netErrorText already
// leaves them out of the errors it knows).
func scrub(text, target string) string {
	if u, err := url.Parse(target); err == nil {
		secrets := []string{target}
		if u.User != nil {
			secrets = append(secrets, u.User.String())
		}
		if u.RawQuery != "" {
			secrets = append(secrets, u.RawQuery)
		}
		if len(u.Path) > 1 {
			secrets = append(secrets, u.EscapedPath(), u.Path)
		}
		secrets = append(secrets, u.Host, u.Hostname())
		for _, s := range secrets {
			if s != "" {
				text = strings.ReplaceAll(text, s, "[hidden]")
			}
		}
	}
	text = ipv6Text.ReplaceAllString(text, "[address]")
	return ipv4Text.ReplaceAllString(text, "[address]")
}

// noRedirects keeps a delivery at the configured URL: a redirect is
// reported as the 3xx it is.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
