package dataplane

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// upstreamRequest is the request as the router sees it once every
// request-path ext_proc phase is done. It can build any number of
// *http.Request attempts from it when the body is buffered.
type upstreamRequest struct {
	method string
	url    string
	header http.Header
	body   *pooledBody // buffered or replaced body; replayable
	stream io.Reader   // body passed through unbuffered (mode NONE, no processor); not replayable
	length int64       // -1 when unknown (chunked)
}

// newAttempt builds the *http.Request for one upstream attempt.
func (u *upstreamRequest) newAttempt(ctx context.Context) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, u.method, u.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header = u.header
	req.ContentLength = u.length
	switch {
	case u.length == 0:
		req.Body = http.NoBody
	case u.body != nil:
		req.Body = u.body.reader()
		b := u.body
		req.GetBody = func() (io.ReadCloser, error) { return b.reader(), nil }
	default:
		req.Body = io.NopCloser(u.stream)
	}
	return req, nil
}

// upstreamCaller is the router's one seam to the upstream: it takes the
// finished request and returns the response to send downstream. Today it
// makes exactly one attempt (singleAttempt). See the package documentation for
// the retry policy and the upstream ext_proc filter that plug in here.
type upstreamCaller interface {
	call(ctx context.Context, u *upstreamRequest) (*http.Response, error)
}

type singleAttempt struct{ rt http.RoundTripper }

func (s singleAttempt) call(ctx context.Context, u *upstreamRequest) (*http.Response, error) {
	req, err := u.newAttempt(ctx)
	if err != nil {
		return nil, err
	}
	return s.rt.RoundTrip(req)
}

var (
	errRouteTimeout = errors.New("upstream request timeout")
	errStreamIdle   = errors.New("stream idle timeout")
)

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
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return http.StatusServiceUnavailable, "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
	}
	return http.StatusServiceUnavailable, "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
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
