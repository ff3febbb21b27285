package dataplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/dataplane/internal/headers"
	"github.com/tollgate-dev/tollgate/dataplane/internal/procmsg"
	"github.com/tollgate-dev/tollgate/dataplane/internal/retry"
)

// exchange is the state of one HTTP request as it moves through the
// connection manager, the ext_proc filter and the router; Envoy calls this an
// active stream.
type exchange struct {
	p   *Proxy
	w   http.ResponseWriter
	r   *http.Request
	rc  *http.ResponseController
	log *slog.Logger
	id  string

	proc  *procStream // nil: no processor, or done with it for this request
	modes procmsg.Modes

	reqHdrs       headers.List
	route         route
	routeDeadline time.Time
	reqBody       *pooledBody // buffered or replaced request body
	body          *timedBody  // the client's body under the timers; nil: none

	upCtx      context.Context
	upCancel   context.CancelFunc
	idleCancel context.CancelCauseFunc
	idle       *time.Timer
	resp       *http.Response
	respBuf    *bytes.Buffer

	meta dynamicMetadata // the request's, shared with the upstream filter

	wroteHeader bool
}

// ServeHTTP proxies one request. It drives the processor over one ext_proc
// stream: request_headers, request_body, then the upstream call, then
// response_headers and response_body, with the modes and failure handling of
// Envoy's ext_proc filter (see the package documentation).
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if headersTooLarge(r, p.cfg.MaxRequestHeadersKB, p.cfg.MaxHeadersCount) {
		tooLarge(w)
		return
	}
	now := time.Now()
	x := &exchange{
		p:             p,
		w:             w,
		r:             r,
		modes:         procmsg.DefaultModes(),
		routeDeadline: now.Add(p.cfg.RouteTimeout),
	}
	defer x.finish()
	x.timeBody(now)
	x.serve()
}

func (x *exchange) serve() {
	x.reqHdrs = x.requestHeaders()
	x.route = x.p.pickRoute(x.reqHdrs)
	// For server requests Go reports 0 only when there is no body; -1 means
	// a body of unknown length (chunked).
	hasBody := x.r.ContentLength != 0

	if x.p.client != nil {
		x.proc = openProcStream(x.r.Context(), x.p.client, x.routeDeadline.Add(x.streamGrace()), x.p.cfg.MessageTimeout)
		resp, ok := x.call(procmsg.RequestHeaders(x.reqHdrs, !hasBody), procmsg.PhaseRequestHeaders)
		if !ok {
			return
		}
		if resp != nil && !x.onRequestHeaders(procmsg.Common(resp)) {
			return
		}
	}
	up, ok := x.requestBody(hasBody)
	if !ok {
		return
	}
	x.forward(up)
}

// streamGrace is how long the processor stream outlives the route deadline,
// so that a 504 for a route timeout can still go through the response
// phases (two replies of at most MessageTimeout each).
func (x *exchange) streamGrace() time.Duration {
	return 2*x.p.cfg.MessageTimeout + 100*time.Millisecond
}

// requestHeaders builds the request header map as Envoy's HTTP/1 codec and
// connection manager hand it to the filters: pseudo-headers first (host
// becomes :authority), hop-by-hop headers gone, x-request-id generated when
// missing or empty, x-forwarded-proto set to the connection's scheme.
func (x *exchange) requestHeaders() headers.List {
	r := x.r
	path := r.RequestURI
	if path == "" || path[0] != '/' {
		path = r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	h := make(headers.List, 0, len(r.Header)+6)
	h = append(h,
		headers.Entry{Key: ":method", Value: r.Method},
		headers.Entry{Key: ":path", Value: path},
		headers.Entry{Key: ":authority", Value: r.Host},
		headers.Entry{Key: ":scheme", Value: scheme},
	)
	h = headers.AppendSorted(h, r.Header)
	x.cleanRequestHeaders(&h)
	added := false
	if id, _ := h.Get("x-request-id"); id == "" {
		h.Del("x-request-id")
		h.Add("x-request-id", uuid.NewString())
		added = true
	}
	// use_remote_address (Tollgate's configs): the connection's scheme, not
	// the client's claim.
	if v, ok := h.Get("x-forwarded-proto"); !ok || v != scheme {
		h.Del("x-forwarded-proto")
		h.Add("x-forwarded-proto", scheme)
		added = true
	}
	if added {
		slices.SortStableFunc(h[4:], func(a, b headers.Entry) int { return strings.Compare(a.Key, b.Key) })
	}
	x.id, _ = h.Get("x-request-id")
	return h
}

func (x *exchange) logger() *slog.Logger {
	if x.log == nil {
		x.log = x.p.log.With("request_id", x.id)
	}
	return x.log
}

// call runs one exchange with the processor and sorts out what Envoy would do
// with the reply. It returns the reply when it is of the expected kind, nil
// when the processor is (now) out of the picture and the request goes on
// without it, and ok=false when the request is over (a reply was sent or the
// client is gone).
func (x *exchange) call(req *extprocv3.ProcessingRequest, want procmsg.Phase) (*extprocv3.ProcessingResponse, bool) {
	if x.proc == nil {
		return nil, true
	}
	req.MetadataContext = x.meta.forward(x.p.cfg.ForwardingNamespaces)
	resp, err := x.proc.exchange(req)
	if err != nil {
		return nil, x.processorFailed(err)
	}
	x.meta.receive(resp, x.p.cfg.ReceivingNamespaces)
	// mode_override counts only in reply to a headers message (Envoy's
	// inHeaderProcessState); allow_mode_override is on in production.
	if o := resp.GetModeOverride(); o != nil && (want == procmsg.PhaseRequestHeaders || want == procmsg.PhaseResponseHeaders) {
		if err := x.modes.Override(o); err != nil {
			return nil, x.processorFailed(err)
		}
	}
	if ir := resp.GetImmediateResponse(); ir != nil {
		x.closeProcessor()
		x.immediate(ir)
		return nil, false
	}
	if !procmsg.ReplyMatches(resp, want) {
		return nil, x.processorFailed(fmt.Errorf("%w: got %T", errSpurious, resp.GetResponse()))
	}
	return resp, true
}

// processorFailed handles a stream error, a message timeout or a spurious
// reply: with failure_mode_allow the request goes on without the processor,
// otherwise the client gets a local reply (504 for a message timeout, as
// current Envoy sends, 500 otherwise) that does not go through the
// processor. A stream the processor closed with OK status is not a failure:
// Envoy just stops processing.
func (x *exchange) processorFailed(err error) bool {
	x.closeProcessor()
	switch {
	case errors.Is(err, errClientGone):
		return false
	case errors.Is(err, errProcessorClosed):
		x.logger().Debug("ext_proc: processor closed the stream; continuing without it")
		return true
	}
	if x.p.cfg.FailureModeAllow {
		x.logger().Warn("ext_proc: processor failed; continuing without it (failure_mode_allow)", "error", err)
		return true
	}
	x.logger().Error("ext_proc: processor failed", "error", err)
	status := http.StatusInternalServerError
	if errors.Is(err, errMessageTimeout) {
		status = http.StatusGatewayTimeout
	}
	x.sendDirect(status, "ext_proc error")
	return false
}

// mutationFailed answers a reply Envoy would reject (bad header mutation) or
// a request the processor broke (content-length that does not match the
// body): a 500 local reply, whatever failure_mode_allow says.
func (x *exchange) mutationFailed(err error) bool {
	x.closeProcessor()
	x.logger().Error("ext_proc: processor reply rejected", "error", err)
	x.sendDirect(http.StatusInternalServerError, "ext_proc error")
	return false
}

func (x *exchange) closeProcessor() {
	if x.proc != nil {
		x.proc.close()
		x.proc = nil
	}
}

// onRequestHeaders applies the reply to request_headers.
func (x *exchange) onRequestHeaders(cr *extprocv3.CommonResponse) bool {
	replacing := cr.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE
	if m := cr.GetHeaderMutation(); m != nil {
		if err := headers.ApplyMutation(&x.reqHdrs, m, replacing, x.p.rules, x.logger()); err != nil {
			return x.mutationFailed(err)
		}
	}
	x.clearRouteCache(cr)
	if replacing {
		// The processor takes over the body (if it sent one) and sees nothing
		// more of the request.
		if bm := cr.GetBodyMutation(); bm != nil {
			x.reqHdrs.Del("content-length")
			body, _, _ := procmsg.MutateBody(nil, bm)
			x.reqBody = &pooledBody{data: body}
			x.reqBody.refs.Store(1)
		}
		x.modes.ReqBody = filterv3.ProcessingMode_NONE
	}
	return true
}

// clearRouteCache re-picks the route after a reply with clear_route_cache.
// Envoy's router-level ext_proc filter honours the flag only when the same
// reply carries a header mutation (DecodingProcessorState::clearRouteCache in
// source/extensions/filters/http/ext_proc/processor_state.cc); without one
// the cached route stays.
func (x *exchange) clearRouteCache(cr *extprocv3.CommonResponse) {
	if cr.GetClearRouteCache() && cr.GetHeaderMutation() != nil {
		x.route = x.p.pickRoute(x.reqHdrs)
	}
}

// requestBody produces the body for the upstream request, running the
// request_body phase when the mode asks for it. STREAMED and BUFFERED_PARTIAL
// are served like BUFFERED: the whole body in one message with end_of_stream.
func (x *exchange) requestBody(hasBody bool) (*upstreamRequest, bool) {
	up := &upstreamRequest{}
	switch {
	case x.reqBody != nil:
		up.body, up.length = x.reqBody, int64(len(x.reqBody.bytes()))
		return up, true
	case !hasBody:
		return up, true
	case x.proc == nil || x.modes.ReqBody == filterv3.ProcessingMode_NONE:
		up.stream, up.length = x.r.Body, x.r.ContentLength
		return up, true
	}

	limit := x.p.cfg.MaxRequestBody
	if x.r.ContentLength > limit {
		x.routerLocal(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", limit))
		return nil, false
	}
	buf := getBuffer()
	if x.r.ContentLength > 0 {
		buf.Grow(int(x.r.ContentLength))
	}
	x.reqBody = newPooledBody(buf)
	if _, err := buf.ReadFrom(io.LimitReader(x.r.Body, limit+1)); err != nil {
		if !x.bodyTimedOut() && x.r.Context().Err() == nil {
			// Envoy's codec answers a malformed body with a 400.
			x.closeProcessor()
			x.sendDirect(http.StatusBadRequest, "invalid request body")
		}
		return nil, false
	}
	if int64(buf.Len()) > limit {
		x.routerLocal(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", limit))
		return nil, false
	}

	mode := x.modes.ReqBody
	resp, ok := x.call(procmsg.RequestBody(buf.Bytes(), !x.requestHasTrailers()), procmsg.PhaseRequestBody)
	if !ok {
		return nil, false
	}
	if resp != nil {
		cr := procmsg.Common(resp)
		// Only the buffered body callback still holds the headers.
		if m := cr.GetHeaderMutation(); m != nil && mode == filterv3.ProcessingMode_BUFFERED {
			if err := headers.ApplyMutation(&x.reqHdrs, m, false, x.p.rules, x.logger()); err != nil {
				return nil, x.mutationFailed(err)
			}
		}
		if nb, swapped, present := procmsg.MutateBody(buf.Bytes(), cr.GetBodyMutation()); present {
			if mode == filterv3.ProcessingMode_BUFFERED {
				x.reqHdrs.Del("content-length")
			}
			if swapped {
				x.reqBody.replace(nb)
			}
		}
		x.clearRouteCache(cr)
	}
	up.body, up.length = x.reqBody, int64(len(x.reqBody.bytes()))
	return up, true
}

// forward is the router: it checks the route, builds the upstream request and
// makes the call.
func (x *exchange) forward(up *upstreamRequest) {
	if x.route.target == nil {
		x.routerLocal(x.route.status, x.route.detail)
		return
	}
	if cl, ok := x.reqHdrs.Get("content-length"); ok {
		if up.length < 0 {
			n, err := strconv.ParseInt(cl, 10, 64)
			if err != nil || n < 0 {
				x.mutationFailed(fmt.Errorf("invalid content-length %q", cl))
				return
			}
			up.length = n
		} else if cl != strconv.FormatInt(up.length, 10) {
			// Envoy would send a request whose framing lies; surface it.
			x.mutationFailed(fmt.Errorf("content-length %q does not match the %d-byte body sent upstream", cl, up.length))
			return
		}
	}
	path, _ := x.reqHdrs.Get(":path")
	if path == "" || path[0] != '/' {
		x.routerLocal(http.StatusBadRequest, "invalid :path")
		return
	}
	up.hdrs = x.upstreamHeaders(path)
	up.retry = retry.Consume(&up.hdrs)
	up.origin = x.route.target.origin()
	up.chain = x.route.chain
	up.filtered, up.dropAttemptCount = x.route.filtered, x.route.dropAttemptCount
	up.streamDeadline = x.routeDeadline.Add(x.streamGrace())
	up.meta = &x.meta
	up.log = x.logger()
	if up.retry.Enabled() && !up.replayable() && !x.bufferForRetries(up) {
		return
	}

	ctx := x.startUpstream()
	resp, err := x.p.upstream.call(ctx, up)
	if err != nil {
		if x.bodyTimedOut() || x.r.Context().Err() != nil {
			return
		}
		status, detail := upstreamFailure(context.Cause(ctx), err)
		x.logger().Warn("upstream call failed", "upstream", up.origin, "error", err, "status", status)
		x.routerLocal(status, detail)
		return
	}
	x.resp = resp
	x.idle.Reset(x.p.cfg.StreamIdleTimeout)
	x.respondUpstream(resp)
}

// startUpstream sets up the route timeout (a deadline on the whole call,
// response body included) and the stream idle timeout (a timer re-armed on
// every read). Both cancel the upstream context with a cause, so a failed
// read can tell them apart.
func (x *exchange) startUpstream() context.Context {
	rctx, rcancel := context.WithDeadlineCause(x.r.Context(), x.routeDeadline, errRouteTimeout)
	ictx, icancel := context.WithCancelCause(rctx)
	x.upCtx, x.upCancel, x.idleCancel = ictx, rcancel, icancel
	x.idle = time.AfterFunc(x.p.cfg.StreamIdleTimeout, func() { icancel(errStreamIdle) })
	return ictx
}

// finish releases everything the request held. The processor stream is
// half-closed and reset unless a route timeout handed it over to its
// deadline.
func (x *exchange) finish() {
	if x.resp != nil {
		_ = x.resp.Body.Close()
	}
	if x.idle != nil {
		x.idle.Stop()
	}
	if x.upCancel != nil {
		x.idleCancel(context.Canceled)
		x.upCancel()
	}
	x.closeProcessor()
	if x.reqBody != nil {
		x.reqBody.release()
	}
	if x.respBuf != nil {
		putBuffer(x.respBuf)
	}
}
