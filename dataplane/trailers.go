package dataplane

import (
	"net/http"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/dataplane/internal/headers"
	"github.com/tollgate-dev/tollgate/dataplane/internal/procmsg"
)

// Response trailers, as Envoy handles them with Tollgate's configs.
//
// Only an HTTP/2 upstream delivers trailers to the filters: Envoy's HTTP/1
// codec drops them unless http_protocol_options.enable_trailers is set,
// which the configs in envoy/ do not (Http1ProtocolOptions in Envoy's
// api/envoy/config/core/v3/protocol.proto). When trailers come, the body's
// last data has no end_of_stream, and Envoy's ext_proc filter
// (source/extensions/filters/http/ext_proc/ext_proc.cc, onTrailers):
//   - BUFFERED: sends the buffered body on the trailers' arrival, with
//     end_of_stream false (nothing when no body was buffered);
//   - STREAMED: has sent every chunk as it came, the last one without
//     end_of_stream, and sends no empty end_of_stream message after it;
//   - trailer mode SKIP: the processor hears nothing more, and the stream
//     is closed when the request ends, as it is when the client goes away;
//     SEND (a mode_override can ask for it): a response_trailers message
//     after the body's reply, whose header_mutation applies to the trailers.
//
// Downstream, the trailers reach an HTTP/2 client; the HTTP/1 codec drops
// them for the same reason as upstream.
//
// Request trailers work the same way on the request path: with them (from an
// HTTP/2 client) the buffered request body goes without end_of_stream.

// requestHasTrailers tells, once the request body has been read, whether
// trailers ended it as Envoy's filters would see them.
func (x *exchange) requestHasTrailers() bool {
	if x.r.ProtoMajor < 2 {
		return false
	}
	for _, v := range x.r.Trailer {
		if len(v) > 0 {
			return true
		}
	}
	return false
}

// trailersOf returns the upstream's trailers once its body has been read to
// the end; nil when there are none or Envoy would not see them.
func (x *exchange) trailersOf(rsp *response) headers.List {
	resp := rsp.upstream
	if resp == nil || resp.ProtoMajor < 2 || len(resp.Trailer) == 0 {
		return nil
	}
	tr := headers.AppendSorted(nil, resp.Trailer)
	if len(tr) == 0 {
		return nil
	}
	return tr
}

// endTrailers runs the trailers through the processor when it asked for them
// and sends them downstream. It reports false when the request is over.
func (x *exchange) endTrailers(tr headers.List) bool {
	tr, ok := x.processTrailers(tr)
	if ok {
		x.writeTrailers(tr)
	}
	return ok
}

// processTrailers is the response_trailers phase, when the processor asked
// for it (a mode_override to SEND).
func (x *exchange) processTrailers(tr headers.List) (headers.List, bool) {
	if tr == nil || x.proc == nil || x.modes.RespTrailer != filterv3.ProcessingMode_SEND {
		return tr, true
	}
	resp, ok := x.call(procmsg.ResponseTrailers(tr), procmsg.PhaseResponseTrailers)
	if !ok {
		return nil, false
	}
	if m := resp.GetResponseTrailers().GetHeaderMutation(); m != nil {
		if err := headers.ApplyMutation(&tr, m, false, x.p.rules, x.logger()); err != nil {
			return nil, x.mutationFailed(err)
		}
	}
	return tr, true
}

// writeTrailers sends trailers after the body: to an HTTP/2 client only.
func (x *exchange) writeTrailers(tr headers.List) {
	if x.r.ProtoMajor < 2 || len(tr) == 0 {
		return
	}
	h := x.w.Header()
	for _, e := range tr {
		if headers.IsPseudo(e.Key) {
			continue
		}
		h.Add(http.TrailerPrefix+headers.CanonicalKey(e.Key), e.Value)
	}
}
