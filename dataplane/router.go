package dataplane

import (
	"bytes"
	"io"
	"net/http"
	"slices"

	"github.com/tollgate-dev/tollgate/dataplane/internal/headers"
	"github.com/tollgate-dev/tollgate/dataplane/internal/retry"
)

// upstreamHeaders is the router's header map for the upstream, as Envoy's
// router finalizes it before the first attempt: the route's
// request_headers_to_remove applied (UpstreamHeader, FallbackChainHeader,
// AttemptsHeader, and x-envoy-external-address as every route in envoy/
// removes it), the host rewritten to
// the upstream's, :scheme the upstream's, and the route's prefix in front of
// the path. The router-level filter's own map stays as it was.
func (x *exchange) upstreamHeaders(path string) headers.List {
	t := x.route.target
	h := slices.Clone(x.reqHdrs)
	h.Del(UpstreamHeader)
	h.Del(FallbackChainHeader)
	h.Del(AttemptsHeader)
	h.Del(externalAddressHeader)
	if x.route.chain == nil {
		// host_rewrite_literal (or the forward proxy's host rewrite): set
		// before any attempt. A chain route rewrites the host per attempt
		// instead (auto_host_rewrite; see retryingCaller).
		h.Set(":authority", t.host)
	}
	h.Set(":scheme", t.scheme)
	h.Set(":path", t.upstreamPath(path))
	return h
}

// bufferForRetries is the router buffering a body that reached it
// unbuffered, so that it can be replayed, as Envoy's router does while a
// retry policy is in effect. A body over MaxRequestBody (Envoy: the buffer
// limit) gives up on retries and streams on, buffered part first. It
// returns false when the request is over (a reply was sent or the client is
// gone).
func (x *exchange) bufferForRetries(up *upstreamRequest) bool {
	limit := x.p.cfg.MaxRequestBody
	buf := getBuffer()
	if _, err := buf.ReadFrom(io.LimitReader(up.stream, limit+1)); err != nil {
		putBuffer(buf)
		if !x.bodyTimedOut() && x.r.Context().Err() == nil {
			x.closeProcessor()
			x.sendDirect(http.StatusBadRequest, "invalid request body")
		}
		return false
	}
	if int64(buf.Len()) > limit {
		x.logger().Debug("router: request body over the buffer limit; giving up on retries", "limit", limit)
		up.retry = retry.Policy{}
		// Not pooled: the transport may read it after the request ended.
		up.stream = io.MultiReader(bytes.NewReader(buf.Bytes()), up.stream)
		return true
	}
	x.reqBody = newPooledBody(buf)
	up.body, up.stream, up.length = x.reqBody, nil, int64(buf.Len())
	return true
}
