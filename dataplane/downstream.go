package dataplane

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// The connection manager's limits on what a client sends, as Envoy has them
// (http_connection_manager.proto) and envoy/*.yaml sets them.
const (
	// request_timeout: receiving the whole request, headers and body.
	DefaultRequestTimeout = 300 * time.Second
	// max_request_headers_kb and common_http_protocol_options
	// .max_headers_count, Envoy's defaults.
	DefaultMaxRequestHeadersKB = 60
	DefaultMaxHeadersCount     = 100
)

// Envoy's local replies for a request body that does not arrive in time
// (ConnectionManagerImpl::ActiveStream::onRequestTimeout and onIdleTimeout):
// 408 while the request is incomplete, and an HTTP/1 connection cannot be
// reused after it.
var (
	errRequestTimeout = errors.New("request timeout")
	errBodyIdle       = errors.New("stream timeout")
)

// headersTooLarge says whether r's header fields are over Envoy's HTTP/1
// codec limits: more than maxCount fields, or more than maxKB KiB of names
// and values (ConnectionImpl::checkMaxHeadersSize counts the header map's
// bytes, without the request line). Go keeps Host and Transfer-Encoding
// out of r.Header; the codec counts them as fields.
func headersTooLarge(r *http.Request, maxKB, maxCount int) bool {
	count, size := 0, 0
	if r.Host != "" {
		count, size = 1, len("host")+len(r.Host)
	}
	for _, te := range r.TransferEncoding {
		count++
		size += len("transfer-encoding") + len(te)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			count++
			size += len(k) + len(v)
		}
	}
	return count > maxCount || size > maxKB*1024
}

// MaxHeaderBytes is what an http.Server serving the Proxy should allow
// (http.Server.MaxHeaderBytes), so that Go's own, rougher limit never
// answers before the proxy's exact one: twice the header limit (field
// separators, the request line) and at least Go's default.
func (p *Proxy) MaxHeaderBytes() int {
	return max(http.DefaultMaxHeaderBytes, 2*p.cfg.MaxRequestHeadersKB*1024)
}

// tooLarge is the codec's reply to headers over the limits: 431 with the
// status text as its body, before any filter, and the connection closed
// (ServerConnectionImpl::sendProtocolError).
func tooLarge(w http.ResponseWriter) {
	const body = "Request Header Fields Too Large"
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusRequestHeaderFieldsTooLarge)
	_, _ = io.WriteString(w, body)
}

// timedBody is the request body under the connection manager's timers:
// each read must come within the stream idle timeout (the routes'
// idle_timeout, which Envoy's stream idle timer takes from the route and
// re-arms on every byte), and the body must be complete by the request
// deadline (request_timeout, counted from the request's arrival). Both are
// read deadlines on the connection, so a stalled client holds no goroutine
// beyond them. Once the body has ended the deadline is lifted: Go's server
// then reads the connection in the background to notice a client that
// goes away, and that read must not time out.
type timedBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	idle     time.Duration
	deadline time.Time
	// timedOut is errRequestTimeout or errBodyIdle once a deadline passed;
	// the body may be read on the upstream transport's goroutine.
	timedOut atomic.Pointer[error]
}

func (b *timedBody) Read(p []byte) (int, error) {
	if err := b.timedOut.Load(); err != nil {
		return 0, *err
	}
	d, why := time.Now().Add(b.idle), errBodyIdle
	if b.deadline.Before(d) {
		d, why = b.deadline, errRequestTimeout
	}
	_ = b.rc.SetReadDeadline(d)
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.timedOut.Store(&why)
		return n, why
	}
	return n, err
}

// timeout is errRequestTimeout or errBodyIdle when the body stopped on one
// of them; nil otherwise.
func (b *timedBody) timeout() error {
	if b == nil {
		return nil
	}
	if err := b.timedOut.Load(); err != nil {
		return *err
	}
	return nil
}

// timeBody puts the request body under the timers. A ResponseWriter that
// cannot set read deadlines (not a net/http server's) leaves it as it is.
func (x *exchange) timeBody(arrived time.Time) {
	if x.r.Body == nil || x.r.Body == http.NoBody {
		return
	}
	rc := x.controller()
	if err := rc.SetReadDeadline(time.Time{}); err != nil {
		x.logger().Debug("dataplane: no read deadlines on this connection; the request body is not timed", "err", err)
		return
	}
	x.body = &timedBody{ReadCloser: x.r.Body, rc: rc, idle: x.p.cfg.StreamIdleTimeout, deadline: arrived.Add(x.p.cfg.RequestTimeout)}
	x.r.Body = x.body
}

// bodyTimedOut answers a request whose body timed out, as the connection
// manager does: 408 with "request timeout" or "stream timeout", straight to
// the client (Go has cancelled the request's context on the failed read, so
// the processor stream is gone too). It returns false when the body did
// not time out.
func (x *exchange) bodyTimedOut() bool {
	err := x.body.timeout()
	if err == nil {
		return false
	}
	x.closeProcessor()
	x.w.Header().Set("Connection", "close")
	x.sendDirect(http.StatusRequestTimeout, err.Error())
	return true
}
