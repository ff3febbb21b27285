package dataplane

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/tollgate-dev/tollgate/dataplane/internal/headers"
	"github.com/tollgate-dev/tollgate/dataplane/internal/retry"
)

// upstreamRequest is the request as the router hands it to the upstream once
// every request-path ext_proc phase is done. The router's retry loop
// (retryingCaller) makes one *http.Request per attempt from it.
type upstreamRequest struct {
	// hdrs is the router's header map: the route's header removals done,
	// :authority the upstream host, :scheme its scheme, :path with the
	// route's prefix, retry headers consumed. As in Envoy, all attempts
	// share it: the attempt count and the upstream filter's header
	// mutations of one attempt are still there in the next.
	hdrs             headers.List
	origin           string            // scheme://host[:port] the :path is appended to
	chain            []*upstreamTarget // a fallback chain route's priority levels; the attempt's level sets origin and host
	level            int               // the current attempt's level of chain
	filtered         bool              // the route's cluster has the upstream filter
	dropAttemptCount bool              // the route removes x-envoy-attempt-count (see route)
	body             *pooledBody       // buffered or replaced body; replayable
	stream           io.Reader         // body passed through unbuffered (mode NONE, no processor); not replayable
	length           int64             // -1 when unknown (chunked)
	retry            retry.Policy
	streamDeadline   time.Time // advertised to the upstream filter's processor streams
	meta             *dynamicMetadata
	log              *slog.Logger
}

func (u *upstreamRequest) replayable() bool { return u.stream == nil || u.length == 0 }

// attemptBody is the body one attempt sends: the router's, or the upstream
// filter's replacement for that attempt only.
type attemptBody struct {
	buf    *pooledBody
	stream io.Reader
	length int64
}

func bytesBody(b []byte) attemptBody {
	pb := &pooledBody{data: b}
	pb.refs.Store(1)
	return attemptBody{buf: pb, length: int64(len(b))}
}

// newAttemptRequest builds the *http.Request for one attempt from the
// router's header map as it stands.
func newAttemptRequest(ctx context.Context, hdrs headers.List, origin string, b attemptBody) (*http.Request, error) {
	method, _ := hdrs.Get(":method")
	path, _ := hdrs.Get(":path")
	req, err := http.NewRequestWithContext(ctx, method, origin+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header = make(http.Header, len(hdrs))
	// Go writes content-length from the body length.
	hdrs.AppendHTTPHeader(req.Header, func(k string) bool { return k == "content-length" })
	req.ContentLength = b.length
	switch {
	case b.length == 0:
		req.Body = http.NoBody
	case b.buf != nil && b.length <= maxInlineBody:
		// A small body goes as a type net/http knows to be in memory, so
		// the transport writes headers and body in one go instead of
		// flushing the headers on their own first (one write and one
		// packet fewer per attempt, as Envoy sends a buffered request).
		// The transport may still read it after the request is over, so
		// its bytes leave the pool for good.
		data := b.buf.detach()
		req.Body = io.NopCloser(bytes.NewReader(data))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	case b.buf != nil:
		req.Body = b.buf.reader()
		pb := b.buf
		req.GetBody = func() (io.ReadCloser, error) { return pb.reader(), nil }
	default:
		req.Body = io.NopCloser(b.stream)
	}
	return req, nil
}

// maxInlineBody is the largest buffered body sent upstream as a plain
// in-memory reader (detached from the pool); larger ones are written from
// the pooled buffer, released by the transport when it is done.
const maxInlineBody = 64 << 10

// upstreamCaller is the router's one seam to the upstream: it takes the
// finished request and returns the response to send downstream, after any
// retries (retryingCaller).
type upstreamCaller interface {
	call(ctx context.Context, u *upstreamRequest) (*http.Response, error)
}

var (
	errRouteTimeout = errors.New("upstream request timeout")
	errStreamIdle   = errors.New("stream idle timeout")
)

// errRetried wraps the failure of the last attempt when there were retries,
// which Envoy's local reply mentions.
type errRetried struct{ err error }

func (e errRetried) Error() string { return "retried: " + e.err.Error() }
func (e errRetried) Unwrap() error { return e.err }

// upstreamFailure maps an error from the upstream call (before response
// headers) to the router's local reply, like Envoy's router does.
func upstreamFailure(cause, err error) (int, string) {
	switch {
	case errors.Is(cause, errRouteTimeout):
		return http.StatusGatewayTimeout, "upstream request timeout"
	case errors.Is(cause, errStreamIdle):
		// Envoy's idle timeout before any response header is a 408.
		return http.StatusRequestTimeout, "stream timeout"
	}
	detail := "upstream connect error or disconnect/reset before headers. "
	if errors.As(err, new(errRetried)) {
		detail += "retried and the latest "
	}
	if isConnectFailure(err) {
		return http.StatusServiceUnavailable, detail + "reset reason: connection failure"
	}
	return http.StatusServiceUnavailable, detail + "reset reason: connection termination"
}

func isConnectFailure(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// pooledBody is a buffered request body shared by the processor message, the
// upstream attempt(s) and the exchange. The transport may keep reading it on
// its own goroutine after RoundTrip returns, so it goes back to the pool only
// when every holder has let go.
type pooledBody struct {
	buf  *bytes.Buffer
	data []byte // nil when buf is pooled; a replacement from the processor otherwise
	refs atomic.Int32
}

func newPooledBody(buf *bytes.Buffer) *pooledBody {
	b := &pooledBody{buf: buf}
	b.refs.Store(1)
	return b
}

func (b *pooledBody) bytes() []byte {
	if b.buf != nil {
		return b.buf.Bytes()
	}
	return b.data
}

// replace swaps in the processor's body. It is only called before any reader
// was handed out, so the pooled buffer can go back right away.
func (b *pooledBody) replace(data []byte) {
	if b.buf != nil {
		putBuffer(b.buf)
		b.buf = nil
	}
	b.data = data
}

// detach hands the bytes over to the garbage collector: the pooled buffer
// is not put back when the last holder lets go. Only for a body whose
// readers are never refcounted (see maxInlineBody).
func (b *pooledBody) detach() []byte {
	if b.buf != nil {
		b.data = b.buf.Bytes()
		b.buf = nil
	}
	return b.data
}

func (b *pooledBody) release() {
	if b.refs.Add(-1) == 0 && b.buf != nil {
		putBuffer(b.buf)
		b.buf = nil
	}
}

func (b *pooledBody) reader() io.ReadCloser {
	b.refs.Add(1)
	return &bodyReader{Reader: bytes.NewReader(b.bytes()), owner: b}
}

// bodyReader hands the pooled bytes to the transport and releases them on
// Close, which the transport guarantees to call.
type bodyReader struct {
	*bytes.Reader
	owner  *pooledBody
	closed atomic.Bool
}

func (r *bodyReader) Close() error {
	if r.closed.CompareAndSwap(false, true) {
		r.owner.release()
	}
	return nil
}
