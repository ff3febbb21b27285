package dataplane

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/tollgate-dev/tollgate/dataplane/internal/headers"
	"github.com/tollgate-dev/tollgate/dataplane/internal/retry"
)

// Bounds for reading out a discarded response so its connection can be
// reused; anything bigger or slower is cut off, as Envoy resets the stream.
const (
	maxDrain     = 64 << 10
	drainTimeout = 100 * time.Millisecond
)

// retryingCaller is the upstream side of Envoy's router: one attempt after
// another, each with x-envoy-attempt-count and its own run of the upstream
// filter, until a response is not worth retrying or the retries run out.
// The route timeout (the context) bounds everything, back-off included.
type retryingCaller struct{ p *Proxy }

func (c retryingCaller) call(ctx context.Context, u *upstreamRequest) (*http.Response, error) {
	policy := u.retry
	if !u.replayable() {
		policy = retry.Policy{}
	}
	backoff := retry.NewBackOff(c.p.cfg.RetryBaseInterval, c.p.cfg.RetryMaxInterval, c.p.jitter)
	levels := previousPriorities{n: len(u.chain)}
	for attempt := 1; ; attempt++ {
		// include_request_attempt_count: true in Tollgate's routes. The
		// router overwrites a client's count before the plain routes'
		// removals (see route.dropAttemptCount), so none goes there.
		if attempt == 1 && u.dropAttemptCount {
			u.hdrs.Del(retry.HeaderAttemptCount)
		} else {
			u.hdrs.SetSorted(retry.HeaderAttemptCount, strconv.Itoa(attempt))
		}
		if u.chain != nil {
			// The host is chosen before the upstream filters run.
			u.level = levels.next()
			u.origin = u.chain[u.level].origin()
		}
		resp, final, err := c.attempt(ctx, u)
		if final {
			// Envoy sends an upstream filter's local reply through the
			// downstream filter chain: the router never sees it.
			u.log.Debug("router: local reply on the upstream side; no retry", "attempt", attempt, "status", resp.StatusCode)
			return resp, nil
		}
		var reason string
		var wait time.Duration
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			if reason = policy.RetriableFailure(isConnectFailure(err)); reason == "" || policy.RetriesLeft == 0 {
				if attempt > 1 {
					err = errRetried{err}
				}
				return nil, err
			}
			wait = backoff.Next()
		} else {
			if reason = policy.RetriableResponse(resp); reason == "" || policy.RetriesLeft == 0 {
				return resp, nil
			}
			wait = c.waitAfter(resp, backoff)
			discard(resp)
		}
		policy.RetriesLeft--
		outcome := slog.Any("error", err)
		if err == nil {
			outcome = slog.Int("status", resp.StatusCode)
		}
		u.log.Debug("router: retrying the upstream request", "attempt", attempt+1, "reason", reason, outcome, "backoff", wait)
		if err := c.p.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// waitAfter is the back-off before retrying resp: the interval of the
// first reset header that names a usable one (Envoy's
// rate_limited_retry_back_off, which leaves the exponential back-off where
// it was), else the exponential one. The response's headers are the ones
// the upstream filter left, as Envoy's router sees them.
func (c retryingCaller) waitAfter(resp *http.Response, backoff *retry.BackOff) time.Duration {
	if d, ok := retry.ResetInterval(resp.Header, c.p.cfg.RateLimitedResetHeaders, c.p.cfg.RateLimitedRetryMaxInterval); ok {
		return retry.RateLimitedWait(d, c.p.jitter)
	}
	return backoff.Next()
}

// attempt makes one attempt under its own context, so a discarded response
// can be cut off without touching the others. The context lives as long as
// the response body. final reports a local reply of the upstream side (see
// send), which ends the request whatever the retry policy says.
func (c retryingCaller) attempt(ctx context.Context, u *upstreamRequest) (resp *http.Response, final bool, err error) {
	actx, cancel := context.WithCancel(ctx)
	resp, final, err = c.send(actx, u)
	if err != nil {
		cancel()
		return nil, false, err
	}
	if resp.Body == http.NoBody {
		cancel()
		return resp, final, nil
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, final, nil
}

// send runs the upstream filter's request phases, the upstream call and the
// filter's response phase for one attempt. What the filter answers itself
// (an immediate_response, a local reply for its failure) and the data
// plane's own checks of the attempt are local replies: final, not retried.
func (c retryingCaller) send(ctx context.Context, u *upstreamRequest) (*http.Response, bool, error) {
	body := attemptBody{buf: u.body, stream: u.stream, length: u.length}
	f := c.p.openUpstreamFilter(ctx, u)
	if f != nil {
		defer f.close()
		if local, err := f.request(ctx, &u.hdrs, &body); local != nil || err != nil {
			return local, local != nil, err
		}
		if !f.wantsResponseHeaders() {
			f.close()
		}
	}
	if u.chain != nil {
		// auto_host_rewrite: the endpoint's hostname, written into the
		// shared header map when the connection is ready
		// (upstream_request.cc, onPoolReady), so after the upstream filter
		// saw the headers; the next attempt's filter sees this one's host.
		t := u.chain[u.level]
		u.hdrs.Set(":authority", t.host)
		u.hdrs.Set(":scheme", t.scheme)
	}
	if cl, ok := u.hdrs.Get("content-length"); ok && body.length >= 0 && cl != strconv.FormatInt(body.length, 10) {
		// Envoy would send a request whose framing lies; surface it.
		u.log.Error("ext_proc: upstream filter left a content-length that does not match the body",
			"content_length", cl, "body_length", body.length)
		return localReply(http.StatusInternalServerError, "ext_proc error"), true, nil
	}
	if path, _ := u.hdrs.Get(":path"); path == "" || path[0] != '/' {
		return localReply(http.StatusBadRequest, "invalid :path"), true, nil
	}
	req, err := newAttemptRequest(ctx, u.hdrs, u.origin, body)
	if err != nil {
		return nil, false, err
	}
	resp, err := c.p.cfg.Transport.RoundTrip(req)
	if err != nil {
		return nil, false, err
	}
	if f != nil {
		return f.response(ctx, resp, req.Method)
	}
	return resp, false, nil
}

// discard drops the response of an attempt that is retried.
func discard(resp *http.Response) {
	if cb, ok := resp.Body.(*cancelOnClose); ok {
		stop := time.AfterFunc(drainTimeout, cb.cancel)
		defer stop.Stop()
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	_ = resp.Body.Close()
}

// sleepTimer waits for d or until the context ends (route timeout, client
// gone).
func sleepTimer(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// cancelOnClose ends an attempt's context when its response body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// localReply is a reply made on the upstream side of the router (by the
// upstream filter or the attempt's checks). Envoy sends those through the
// downstream filter chain: they go through the router-level filter's
// response phases like the router's own local replies, but are never
// retried.
func localReply(status int, detail string) *http.Response {
	body := []byte(detail)
	return localResponse(plainReplyHeaders(status, body), body)
}

// plainReplyHeaders are the headers of a local reply with a text body, the
// router's or the upstream side's.
func plainReplyHeaders(status int, body []byte) headers.List {
	return headers.Of(":status", strconv.Itoa(status), "content-length", strconv.Itoa(len(body)), "content-type", "text/plain")
}

// localResponse turns headers (:status first) and a body into a response.
func localResponse(hdrs headers.List, body []byte) *http.Response {
	status := http.StatusOK
	if s, ok := hdrs.Get(":status"); ok {
		if n, err := strconv.Atoi(s); err == nil {
			status = n
		}
	}
	h := make(http.Header, len(hdrs))
	hdrs.AppendHTTPHeader(h, nil)
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
	}
}

// previousPriorities is Envoy's retry priority
// envoy.retry_priorities.previous_priorities with update_frequency 1, for
// an upstream of n priority levels with one healthy endpoint each (no
// health checks, nothing ejected): the first attempt goes to level 0 and
// each retry to the first level not tried yet. Once every level was tried,
// the plugin forgets the attempts and starts over from level 0
// (previous_priorities.cc, adjustForAttemptedPriorities: the excluded
// levels, a vector<bool>, are cleared through its bit references).
type previousPriorities struct {
	n     int
	tried int // attempts made so far
}

func (p *previousPriorities) next() int {
	l := p.tried % p.n
	p.tried++
	return l
}
