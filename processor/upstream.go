package processor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/attempts"
)

// The upstream-level ext_proc filter (in the provider clusters' upstream
// http_filters) opens its streams with this gRPC metadata, so the processor
// can tell them from the router-level filter's. Its processing mode is
// request headers only; the processor asks for an attempt's response headers
// with a mode override when the request has fallbacks or retries left.
const (
	FilterLevelMetadata = "x-tollgate-filter-level"
	FilterLevelUpstream = "upstream"
)

// attemptResponseMode adds the response headers of an attempt to the
// upstream filter's mode, so the processor can decide whether the next
// fallback entry should answer, or how long Envoy waits before a retry.
var attemptResponseMode = &filterv3.ProcessingMode{
	RequestHeaderMode:   filterv3.ProcessingMode_SEND,
	RequestBodyMode:     filterv3.ProcessingMode_NONE,
	RequestTrailerMode:  filterv3.ProcessingMode_SKIP,
	ResponseHeaderMode:  filterv3.ProcessingMode_SEND,
	ResponseBodyMode:    filterv3.ProcessingMode_NONE,
	ResponseTrailerMode: filterv3.ProcessingMode_SKIP,
}

func isUpstreamFilter(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get(FilterLevelMetadata)
	return len(v) > 0 && v[0] == FilterLevelUpstream
}

// attempt is the state of one upstream attempt's stream.
type attempt struct {
	link  *attemptLink
	n     int // Envoy's attempt number, from 1
	index int
}

// processAttempt serves one upstream-level stream: one attempt of a request.
// Nothing is logged here; the router-level stream writes the call's record.
func (s *Server) processAttempt(stream extprocv3.ExternalProcessor_ProcessServer) error {
	var a attempt
	for {
		req, err := stream.Recv()
		if err != nil {
			// Envoy resets the stream when the attempt is done.
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
				return nil
			}
			return err
		}
		var resp *extprocv3.ProcessingResponse
		switch r := req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			resp = s.onAttemptHeaders(&a, linkKeyOf(req), r.RequestHeaders)
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp = s.onAttemptResponse(&a, r.ResponseHeaders)
		case *extprocv3.ProcessingRequest_RequestBody:
			// Not asked for; a configuration that sends them anyway
			// gets a plain CONTINUE.
			resp = requestBodyReply(nil)
		case *extprocv3.ProcessingRequest_ResponseBody:
			resp = responseBodyReply(nil)
		case *extprocv3.ProcessingRequest_RequestTrailers:
			// Not asked for either (trailers SKIP): an empty reply, as
			// the router-level handler's would be, without its call.
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
		case *extprocv3.ProcessingRequest_ResponseTrailers:
			resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
		default:
			return status.Errorf(codes.InvalidArgument, "tollgate: unexpected ext_proc message %T", req.GetRequest())
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// onAttemptHeaders finds the request's link (key, from the metadata
// context), counts the attempt and, for a fallback entry, replaces the body
// and sets the entry's headers. The internal headers never reach the
// provider.
func (s *Server) onAttemptHeaders(a *attempt, key string, msg *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	headers := msg.GetHeaders().GetHeaders()
	var m headerMutation
	// Envoy's upstream filters edit the router's one header map, shared by
	// every attempt: every header an entry sets is set again, or restored,
	// on each attempt. Envoy sets the attempt count afresh each time, so
	// that one can go. attemptsHeader has picked the route already; the
	// current configs' routes remove it, but older ones (the filter on
	// every cluster) do not know it, so it goes here too.
	m.removeHeader(attemptCountHeader)
	m.removeHeader(attemptsHeader)
	if key == "" {
		return requestHeadersReply(common(&m, headersOnly))
	}
	v, ok := s.links.Load(key)
	if !ok {
		// Another replica's request, or one that already ended: the
		// attempt goes out as the router built it.
		s.metrics.linkMisses.Inc()
		return requestHeadersReply(common(&m, headersOnly))
	}
	link := v.(*attemptLink)
	n, err := strconv.Atoi(findHeader(headers, attemptCountHeader))
	if err != nil || n < 1 {
		n = 1
	}
	link.noteAttempt(int32(n))
	s.metrics.attempts.Inc()
	a.link, a.n = link, n
	// A retry is left after this attempt: its response decides the wait.
	retryLeft := link.retry != nil && n <= link.retry.Retries()
	if link.plan == nil {
		resp := requestHeadersReply(common(&m, headersOnly))
		if retryLeft {
			resp.ModeOverride = attemptResponseMode
		}
		return resp
	}
	wantResponse := false
	if link.cursor != nil {
		link.mu.Lock()
		a.index = link.cursor.Attempt(n)
		wantResponse = link.cursor.WantsResponse()
		link.mu.Unlock()
	} else {
		// A chain: each retry is the next priority level, so attempt n is
		// entry n-1.
		a.index = link.plan.Index(n)
		wantResponse = a.index < link.plan.Retries() || retryLeft
	}
	link.index.Store(int32(a.index))

	var body []byte
	replace := false
	e := link.plan.Entry(a.index)
	orig := link.body.Load() // also publishes link.cross (translateEntries)
	if f := link.crossFormat[a.index]; f != "" {
		// Another provider's entry: its path, version, configured key
		// and translated body (translated.go). Without a body phase
		// (none stored) the headers still never carry the client's key.
		x := &crossEntry{format: f}
		if orig != nil && link.cross[a.index] != nil {
			x = link.cross[a.index]
			body, replace = x.body, true
		}
		link.restoreHeaders(&m, e, s.crossOverrides(x, link.crossNames))
	} else if link.restoreHeaders(&m, e, nil); e != nil {
		if orig != nil {
			if out, err := e.Rewrite(*orig); err == nil && !bytes.Equal(out, *orig) {
				body, replace = out, true
			}
		}
	}
	cr := common(&m, replyChanges{replaceBody: replace, body: body})
	if replace {
		// Replaces the router's body for this attempt only; the next
		// attempt starts again from the router's body.
		cr.Status = extprocv3.CommonResponse_CONTINUE_AND_REPLACE
	}
	resp := requestHeadersReply(cr)
	if wantResponse {
		resp.ModeOverride = attemptResponseMode
	}
	return resp
}

// onAttemptResponse marks a response the next fallback entry should replace,
// or, with a fallback list on one origin, one its entry should retry;
// Envoy's router then retries (retriable-headers) and drops this response.
// A response Envoy retries under Helicone-Retry-* gets the wait before the
// next attempt (attempts.BackOffHeader), which the routes' reset_headers
// read: Helicone's back-off, or the provider's Retry-After when longer.
func (s *Server) onAttemptResponse(a *attempt, msg *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	if a.link == nil {
		return responseHeadersReply(nil)
	}
	hdrs := msg.GetHeaders().GetHeaders()
	code, _ := strconv.Atoi(findHeader(hdrs, ":status"))
	var m headerMutation
	if cur := a.link.cursor; cur != nil {
		a.link.mu.Lock()
		step, secs := cur.Response(a.n, code)
		a.link.mu.Unlock()
		switch step {
		case attempts.RetryEntry:
			m.setHeader(fallbackNextHeader, "1")
			m.setHeader(attempts.BackOffHeader, strconv.Itoa(backOff(secs, hdrs)))
		case attempts.NextEntry:
			m.setHeader(fallbackNextHeader, "1")
			s.metrics.fallbacks.Inc()
		default:
			return responseHeadersReply(nil)
		}
		return responseHeadersReply(common(&m, headersOnly))
	}
	switch retry := a.link.retry; {
	case a.link.plan != nil && a.link.plan.MovesOn(a.index, code):
		m.setHeader(fallbackNextHeader, "1")
		s.metrics.fallbacks.Inc()
	case retry != nil && slices.Contains(attempts.RetryStatusCodes, code):
		secs, ok := retry.BackOffSeconds(a.n)
		if !ok {
			return responseHeadersReply(nil)
		}
		m.setHeader(attempts.BackOffHeader, strconv.Itoa(backOff(secs, hdrs)))
	default:
		return responseHeadersReply(nil)
	}
	return responseHeadersReply(common(&m, headersOnly))
}

// backOff is the wait before a retry: Helicone's (secs), or the provider's
// Retry-After when that is longer. Integer seconds, as Envoy reads
// retry-after itself (format SECONDS); Envoy ignores one above the routes'
// max_interval.
func backOff(secs int, hdrs []*corev3.HeaderValue) int {
	if ra, err := strconv.Atoi(strings.TrimSpace(findHeader(hdrs, "retry-after"))); err == nil &&
		ra > secs && time.Duration(ra)*time.Second <= attempts.MaxBackOff {
		return ra
	}
	return secs
}

// attemptResponseHeaders reports which fallback entry answered
// (Helicone-Fallback-Index) and removes the internal marker. The record's
// attempts and fallback index are taken from the link when the call ends
// (releaseLink).
func attemptResponseHeaders(c *call, m *headerMutation) {
	if c.link == nil {
		return
	}
	if c.link.retry != nil {
		// Set on a response Envoy then did not retry after all.
		m.removeHeader(attempts.BackOffHeader)
	}
	if c.link.plan == nil {
		return
	}
	m.setHeader(helicone.FallbackIndex, strconv.Itoa(int(c.link.index.Load())))
	m.removeHeader(fallbackNextHeader)
}
