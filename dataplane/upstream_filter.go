package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/metadata"

	"github.com/tollgate-dev/tollgate/dataplane/internal/headers"
	"github.com/tollgate-dev/tollgate/dataplane/internal/procmsg"
)

// Tollgate's Envoy configs send this gRPC initial metadata on every stream of
// the upstream-level ext_proc filter (grpc_service.initial_metadata), so the
// processor can tell them from the router-level filter's streams, which carry
// none. Put it in UpstreamFilterConfig.Metadata.
const (
	UpstreamFilterMetadataKey   = "x-tollgate-filter-level"
	UpstreamFilterMetadataValue = "upstream"
)

// UpstreamFilterConfig is the ext_proc filter Envoy runs once per upstream
// attempt (a cluster's HttpProtocolOptions http_filters). Its processing mode
// is fixed to what Tollgate's configs use: request_header_mode SEND,
// request_body_mode NONE, response_header_mode SKIP, response_body_mode NONE,
// trailers SKIP, allow_mode_override true. Its mutation rules are the
// router-level filter's (Config.AllowEnvoyHeaderMutation).
type UpstreamFilterConfig struct {
	Metadata         map[string]string // gRPC initial metadata of each stream, e.g. UpstreamFilterMetadataKey: UpstreamFilterMetadataValue
	FailureModeAllow bool              // processor failure: true = the attempt goes on without it, false = a 500 local reply (504 for a message timeout) ends the request, without retries
	MessageTimeout   time.Duration     // per reply, default Config.MessageTimeout
	// The filter's metadata_options, as Config's: the request's dynamic
	// metadata is the downstream request's, shared with the router-level
	// filter and by every attempt.
	ForwardingNamespaces []string
	ReceivingNamespaces  []string

	// EveryCluster puts the filter on every cluster. false, as envoy/*.yaml:
	// each upstream has two clusters, and only the *_attempts one, picked
	// when the request has AttemptsHeader at routing time (the processor
	// sets it with clear_route_cache), and the fallback chain clusters run
	// the filter; a request on a plain route opens no upstream-level
	// stream, and its route removes x-envoy-attempt-count instead.
	EveryCluster bool
}

// upstreamFilterMode is the upstream filter's configured processing_mode.
var upstreamFilterMode = &filterv3.ProcessingMode{
	RequestHeaderMode:   filterv3.ProcessingMode_SEND,
	ResponseHeaderMode:  filterv3.ProcessingMode_SKIP,
	RequestBodyMode:     filterv3.ProcessingMode_NONE,
	ResponseBodyMode:    filterv3.ProcessingMode_NONE,
	RequestTrailerMode:  filterv3.ProcessingMode_SKIP,
	ResponseTrailerMode: filterv3.ProcessingMode_SKIP,
}

// upstreamFilter is the upstream ext_proc filter for one attempt, with its
// own processor stream. clear_route_cache means nothing there (the route is
// chosen) and is ignored, as Envoy's upstream filter chain has no route
// cache.
type upstreamFilter struct {
	cfg     *UpstreamFilterConfig
	rules   headers.Rules
	log     *slog.Logger
	maxBody int64
	proc    *procStream // nil once the filter is done or out of the picture
	modes   procmsg.Modes
	meta    *dynamicMetadata // the request's
}

// openUpstreamFilter opens the attempt's processor stream on the proxy's
// gRPC client; nil when there is no upstream filter. The attempt's context
// ending (client gone, route timeout) resets the stream.
func (p *Proxy) openUpstreamFilter(ctx context.Context, u *upstreamRequest) *upstreamFilter {
	if !u.filtered || p.client == nil {
		return nil // the route's cluster has no upstream filter
	}
	sctx := metadata.NewOutgoingContext(ctx, p.upMetadata)
	return &upstreamFilter{
		cfg:     p.upFilter,
		rules:   p.rules,
		log:     u.log.With("ext_proc_filter", "upstream"),
		maxBody: p.cfg.MaxRequestBody,
		proc:    openProcStream(sctx, p.client, u.streamDeadline, p.upFilter.MessageTimeout),
		modes:   procmsg.ModesOf(upstreamFilterMode),
		meta:    u.meta,
	}
}

// close half-closes and resets the stream once the attempt's filter work is
// done (or the attempt failed).
func (f *upstreamFilter) close() {
	if f.proc != nil {
		f.proc.close()
		f.proc = nil
	}
}

func (f *upstreamFilter) wantsResponseHeaders() bool {
	return f.proc != nil && f.modes.RespHeader == filterv3.ProcessingMode_SEND
}

// request runs request_headers and, when a mode_override asks for it,
// request_body for one attempt, changing the shared header map and this
// attempt's body. It returns a local reply when the filter answers the
// request itself, and an error only when the attempt's context ended.
func (f *upstreamFilter) request(ctx context.Context, hdrs *headers.List, body *attemptBody) (*http.Response, error) {
	msg := procmsg.RequestHeaders(*hdrs, body.length == 0)
	msg.ProtocolConfig = &extprocv3.ProtocolConfiguration{
		RequestBodyMode:  upstreamFilterMode.GetRequestBodyMode(),
		ResponseBodyMode: upstreamFilterMode.GetResponseBodyMode(),
	}
	reply, local, err := f.call(ctx, msg, procmsg.PhaseRequestHeaders)
	if local != nil || err != nil {
		return local, err
	}
	if reply != nil {
		cr := procmsg.Common(reply)
		replacing := cr.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE
		if m := cr.GetHeaderMutation(); m != nil {
			if err := headers.ApplyMutation(hdrs, m, replacing, f.rules, f.log); err != nil {
				return f.rejected(err), nil
			}
		}
		if replacing {
			// A body_mutation counts only here; in a CONTINUE reply to
			// headers Envoy ignores it.
			if bm := cr.GetBodyMutation(); bm != nil {
				hdrs.Del("content-length")
				b, _, _ := procmsg.MutateBody(nil, bm)
				*body = bytesBody(b)
			}
			f.modes.ReqBody = filterv3.ProcessingMode_NONE
		}
	}
	if f.proc == nil || body.length == 0 || f.modes.ReqBody == filterv3.ProcessingMode_NONE {
		return nil, nil
	}
	return f.requestBody(ctx, hdrs, body)
}

// requestBody sends the attempt's whole body in one message (every body mode
// is served like BUFFERED, as for the router-level filter) and applies the
// reply to this attempt only.
func (f *upstreamFilter) requestBody(ctx context.Context, hdrs *headers.List, body *attemptBody) (*http.Response, error) {
	if body.buf == nil {
		// Not buffered by anyone yet (and so not retried): the filter
		// buffers it, within the same limit.
		data, err := io.ReadAll(io.LimitReader(body.stream, f.maxBody+1))
		switch {
		case errors.Is(err, errRequestTimeout) || errors.Is(err, errBodyIdle):
			// The connection manager answers (exchange.bodyTimedOut).
			return nil, err
		case err != nil && ctx.Err() != nil:
			return nil, context.Cause(ctx)
		case err != nil:
			f.close()
			return localReply(http.StatusBadRequest, "invalid request body"), nil
		case int64(len(data)) > f.maxBody:
			f.close()
			return localReply(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", f.maxBody)), nil
		}
		*body = bytesBody(data)
	}
	mode := f.modes.ReqBody
	data := body.buf.bytes()
	reply, local, err := f.call(ctx, procmsg.RequestBody(data, true), procmsg.PhaseRequestBody)
	if local != nil || err != nil || reply == nil {
		return local, err
	}
	cr := procmsg.Common(reply)
	// Only the buffered body callback still holds the headers.
	if m := cr.GetHeaderMutation(); m != nil && mode == filterv3.ProcessingMode_BUFFERED {
		if err := headers.ApplyMutation(hdrs, m, false, f.rules, f.log); err != nil {
			return f.rejected(err), nil
		}
	}
	if nb, swapped, present := procmsg.MutateBody(data, cr.GetBodyMutation()); present {
		if mode == filterv3.ProcessingMode_BUFFERED {
			hdrs.Del("content-length")
		}
		if swapped {
			*body = bytesBody(nb)
		}
	}
	return nil, nil
}

// response runs response_headers for the attempt when a mode_override asked
// for them. The processor's changes apply before the router's retry
// decision, so a header it sets can make the attempt retriable; final
// reports a local reply of the filter instead (see request). The response
// body is never sent (response_body_mode NONE).
func (f *upstreamFilter) response(ctx context.Context, resp *http.Response, method string) (_ *http.Response, final bool, _ error) {
	if !f.wantsResponseHeaders() {
		return resp, false, nil
	}
	defer f.close()
	hdrs := upstreamResponseHeaders(resp)
	reply, local, err := f.call(ctx, procmsg.ResponseHeaders(hdrs, !upstreamHasBody(resp, method)), procmsg.PhaseResponseHeaders)
	if local != nil || err != nil {
		_ = resp.Body.Close()
		return local, local != nil, err
	}
	if reply == nil {
		return resp, false, nil
	}
	cr := procmsg.Common(reply)
	replacing := cr.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE
	if m := cr.GetHeaderMutation(); m != nil {
		if err := headers.ApplyMutation(&hdrs, m, replacing, f.rules, f.log); err != nil {
			_ = resp.Body.Close()
			return f.rejected(err), true, nil
		}
	}
	if bm := cr.GetBodyMutation(); replacing && bm != nil {
		// The upstream's response with the processor's body: still the
		// upstream's answer as far as the router is concerned.
		_ = resp.Body.Close()
		b, _, _ := procmsg.MutateBody(nil, bm)
		hdrs.Set("content-length", strconv.Itoa(len(b)))
		return localResponse(hdrs, b), false, nil
	}
	if s, ok := hdrs.Get(":status"); ok {
		if n, err := strconv.Atoi(s); err == nil {
			resp.StatusCode, resp.Status = n, s+" "+http.StatusText(n)
		}
	}
	resp.Header = make(http.Header, len(hdrs))
	hdrs.AppendHTTPHeader(resp.Header, nil)
	return resp, false, nil
}

// call is exchange.call for the upstream filter. It returns the reply when it
// is of the expected kind; nil, nil, nil when the filter is (now) out of the
// picture; a local reply when the filter answers the request itself; an
// error when the attempt's context ended.
func (f *upstreamFilter) call(ctx context.Context, req *extprocv3.ProcessingRequest, want procmsg.Phase) (*extprocv3.ProcessingResponse, *http.Response, error) {
	if f.proc == nil {
		return nil, nil, nil
	}
	req.MetadataContext = f.meta.forward(f.cfg.ForwardingNamespaces)
	resp, err := f.proc.exchange(req)
	if err != nil {
		return f.failed(ctx, err)
	}
	f.meta.receive(resp, f.cfg.ReceivingNamespaces)
	if o := resp.GetModeOverride(); o != nil && (want == procmsg.PhaseRequestHeaders || want == procmsg.PhaseResponseHeaders) {
		if err := f.modes.OverrideFrom(upstreamFilterMode, o); err != nil {
			return f.failed(ctx, err)
		}
		if f.modes.RespBody != filterv3.ProcessingMode_NONE {
			// The upstream filter never sends the response body here.
			return f.failed(ctx, fmt.Errorf("%w: response_body_mode %s in the upstream filter", procmsg.ErrUnsupportedMode, f.modes.RespBody))
		}
	}
	if ir := resp.GetImmediateResponse(); ir != nil {
		f.close()
		hdrs, body := immediateReply(ir, f.rules, f.log)
		return nil, localResponse(hdrs, body), nil
	}
	if !procmsg.ReplyMatches(resp, want) {
		return f.failed(ctx, fmt.Errorf("%w: got %T", errSpurious, resp.GetResponse()))
	}
	return resp, nil, nil
}

// failed is exchange.processorFailed for the upstream filter: the attempt
// goes on without the processor (failure_mode_allow, or a stream the
// processor closed with OK), or the filter's local reply ends the request.
func (f *upstreamFilter) failed(ctx context.Context, err error) (*extprocv3.ProcessingResponse, *http.Response, error) {
	f.close()
	switch {
	case errors.Is(err, errClientGone):
		return nil, nil, context.Cause(ctx)
	case errors.Is(err, errProcessorClosed):
		f.log.Debug("ext_proc: processor closed the stream; continuing without it")
		return nil, nil, nil
	}
	if f.cfg.FailureModeAllow {
		f.log.Warn("ext_proc: processor failed; continuing the attempt without it (failure_mode_allow)", "error", err)
		return nil, nil, nil
	}
	f.log.Error("ext_proc: processor failed", "error", err)
	status := http.StatusInternalServerError
	if errors.Is(err, errMessageTimeout) {
		status = http.StatusGatewayTimeout
	}
	return nil, localReply(status, "ext_proc error"), nil
}

// rejected answers a reply Envoy rejects (bad header mutation) with a 500,
// whatever failure_mode_allow says.
func (f *upstreamFilter) rejected(err error) *http.Response {
	f.close()
	f.log.Error("ext_proc: processor reply rejected", "error", err)
	return localReply(http.StatusInternalServerError, "ext_proc error")
}
