package processor

import (
	"slices"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Pure helpers that build the replies sent to Envoy. Header values always go
// in raw_value: Envoy fails the request when a mutation sets value too.

// headerMutation collects the header changes of one reply.
type headerMutation struct {
	set    []*corev3.HeaderValueOption
	remove []string
	slab   []headerOption // room for the headers grow said are coming
}

// grow makes room for n more headers set: one allocation for their
// options and one for the list, where setting them one by one would take
// one each plus the list's growth.
func (m *headerMutation) grow(n int) {
	if n <= 0 {
		return
	}
	m.set = slices.Grow(m.set, n)
	m.slab = make([]headerOption, 0, n)
}

func (m *headerMutation) setHeader(key, value string) {
	// The option and its header in one allocation, the value's bytes
	// shared with the string (readOnlyBytes): a reply is only marshalled,
	// never written to, so a setHeader costs one allocation, not four.
	var o *headerOption
	if n := len(m.slab); n < cap(m.slab) {
		m.slab = m.slab[:n+1] // never appended past cap: earlier options stay put
		o = &m.slab[n]
	} else {
		o = &headerOption{}
	}
	o.header = corev3.HeaderValue{Key: key, RawValue: readOnlyBytes(value)}
	o.option = corev3.HeaderValueOption{Header: &o.header, Append: overwrite}
	m.set = append(m.set, &o.option)
}

// headerOption is a HeaderValueOption allocated with its HeaderValue.
type headerOption struct {
	option corev3.HeaderValueOption
	header corev3.HeaderValue
}

// overwrite is the append flag of every header Tollgate sets: Envoy's
// ext_proc filter reads only the (deprecated) append flag, not
// append_action, and false means overwrite. One shared message: replies
// only read it.
var overwrite = wrapperspb.Bool(false)

func (m *headerMutation) removeHeader(key string) { m.remove = append(m.remove, key) }

func (m *headerMutation) proto() *extprocv3.HeaderMutation {
	if len(m.set) == 0 && len(m.remove) == 0 {
		return nil
	}
	return &extprocv3.HeaderMutation{SetHeaders: m.set, RemoveHeaders: m.remove}
}

// replyChanges is what a reply asks of Envoy besides its header mutation.
// Passed by value: building a reply allocates nothing more for it.
type replyChanges struct {
	// replaceBody sends body in place of the one Envoy buffered (body may be
	// empty: the replacement is then an empty body).
	replaceBody bool
	body        []byte
	// clearRouteCache makes Envoy pick the route again: a header it routes
	// on has changed.
	clearRouteCache bool
}

// headersOnly is a reply that changes headers only (if any).
var headersOnly replyChanges

// common builds the CommonResponse shared by header and body replies; nil
// when there is nothing to say (a plain CONTINUE).
func common(m *headerMutation, ch replyChanges) *extprocv3.CommonResponse {
	if ch.replaceBody {
		// Envoy forwards the buffered body as replaced; content-length must
		// follow or the upstream sees a truncated or padded body.
		m.setHeader("content-length", strconv.Itoa(len(ch.body)))
	}
	if len(m.set) == 0 && len(m.remove) == 0 && !ch.replaceBody && !ch.clearRouteCache {
		return nil
	}
	// The response with its header mutation in one allocation, the body
	// mutation (most replies have none) in another.
	r := &struct {
		cr extprocv3.CommonResponse
		hm extprocv3.HeaderMutation
	}{}
	r.cr.ClearRouteCache = ch.clearRouteCache
	if ch.replaceBody {
		b := &struct {
			bm   extprocv3.BodyMutation
			body extprocv3.BodyMutation_Body
		}{}
		b.body.Body = ch.body
		b.bm.Mutation = &b.body
		r.cr.BodyMutation = &b.bm
	}
	if len(m.set) > 0 || len(m.remove) > 0 {
		r.hm.SetHeaders, r.hm.RemoveHeaders = m.set, m.remove
		r.cr.HeaderMutation = &r.hm
	}
	return &r.cr
}

// The reply builders allocate the reply, its oneof case and its inner
// message together: one allocation per reply instead of three.

func requestHeadersReply(cr *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	r := &struct {
		resp extprocv3.ProcessingResponse
		kind extprocv3.ProcessingResponse_RequestHeaders
		msg  extprocv3.HeadersResponse
	}{}
	r.msg.Response = cr
	r.kind.RequestHeaders = &r.msg
	r.resp.Response = &r.kind
	return &r.resp
}

func requestBodyReply(cr *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	if cr == nil {
		return continueRequestBody
	}
	r := &struct {
		resp extprocv3.ProcessingResponse
		kind extprocv3.ProcessingResponse_RequestBody
		msg  extprocv3.BodyResponse
	}{}
	r.msg.Response = cr
	r.kind.RequestBody = &r.msg
	r.resp.Response = &r.kind
	return &r.resp
}

func responseHeadersReply(cr *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	r := &struct {
		resp extprocv3.ProcessingResponse
		kind extprocv3.ProcessingResponse_ResponseHeaders
		msg  extprocv3.HeadersResponse
	}{}
	r.msg.Response = cr
	r.kind.ResponseHeaders = &r.msg
	r.resp.Response = &r.kind
	return &r.resp
}

func responseBodyReply(cr *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	if cr == nil {
		return continueResponseBody
	}
	r := &struct {
		resp extprocv3.ProcessingResponse
		kind extprocv3.ProcessingResponse_ResponseBody
		msg  extprocv3.BodyResponse
	}{}
	r.msg.Response = cr
	r.kind.ResponseBody = &r.msg
	r.resp.Response = &r.kind
	return &r.resp
}

// A plain CONTINUE of a body phase is the same message on every call and
// every SSE chunk, so it is built once. Shared replies are never written
// to: addWarningHeader and withLink only touch header and immediate
// replies, and gRPC only reads a reply while marshalling it.
var (
	continueRequestBody = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
		RequestBody: &extprocv3.BodyResponse{}}}
	continueResponseBody = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
		ResponseBody: &extprocv3.BodyResponse{}}}
)

// streamedResponseMode is the mode override sent with the response-headers
// reply of an SSE response: chunks then flow to the client as they arrive.
// Every field is set so the override means the same whether Envoy merges it
// or replaces the whole mode. Response trailers are asked for: with trailers
// SKIP, a response that has trailers reaches the processor as chunks that
// all lack end_of_stream, and the stream then ends exactly as it does when
// the client goes away (Envoy's ext_proc.cc onTrailers and onDestroy); the
// trailers message is the end of such a response.
var streamedResponseMode = &filterv3.ProcessingMode{
	RequestHeaderMode:   filterv3.ProcessingMode_SEND,
	RequestBodyMode:     filterv3.ProcessingMode_BUFFERED,
	RequestTrailerMode:  filterv3.ProcessingMode_SKIP,
	ResponseHeaderMode:  filterv3.ProcessingMode_SEND,
	ResponseBodyMode:    filterv3.ProcessingMode_STREAMED,
	ResponseTrailerMode: filterv3.ProcessingMode_SEND,
}

// immediateReply answers the client directly; the provider is never called.
func immediateReply(status int, m *headerMutation, body []byte, details string) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
		ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(status)},
			Headers: m.proto(),
			Body:    body,
			Details: details,
		}}}
}
