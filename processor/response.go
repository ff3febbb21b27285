package processor

import (
	"mime"
	"strconv"
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/provider"
)

// onResponseHeaders adds Helicone-Id and, for an SSE response, switches the
// body phase to STREAMED so tokens reach the client as they are produced.
func (s *Server) onResponseHeaders(c *call, msg *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	headers := msg.GetHeaders().GetHeaders()
	c.status, _ = strconv.Atoi(findHeader(headers, ":status"))

	c.respContentType = findHeader(headers, "content-type")
	c.respMediaType = mediaType(c.respContentType)
	noteReplayHeaders(c, headers)
	var m headerMutation
	if c.decision != nil {
		m.grow(1 + len(c.decision.ResponseHeaders))
	}
	m.setHeader(helicone.ResponseID, c.rec.RequestID)
	if c.usageFilter != nil && isEventStream(c.respMediaType) {
		m.removeHeader("content-length") // the usage event is cut from the body
	}
	attemptResponseHeaders(c, &m)
	answerFormat := c.format
	if x := answeredCross(c); x != nil {
		// Another provider answered a translated attempt: its answer is
		// translated back, so its length changes (translated.go).
		c.rec.Provider = x.format
		if refused := s.gatewayKeyRefused(c, x); refused != nil {
			return refused
		}
		m.removeHeader("content-length")
		answerFormat = x.format
		if isEventStream(c.respMediaType) {
			m.setHeader("content-type", "text/event-stream")
		} else if c.respMediaType == "application/json" {
			m.setHeader("content-type", "application/json")
		}
		c.usageFilter = nil // the translator decides what usage the client sees
		if isEventStream(c.respMediaType) {
			c.xstream = newStreamTranslator(s, x)
		}
	}
	if c.decision != nil {
		for _, h := range c.decision.ResponseHeaders {
			m.setHeader(h[0], h[1])
		}
	}
	resp := responseHeadersReply(common(&m, headersOnly))
	if !c.helicone.OmitResponse {
		c.respKeep = s.maxLoggedBody
	}
	c.respKeep = max(c.respKeep, c.decision.CacheBodyLimit())

	if msg.GetEndOfStream() {
		s.finish(c, int32(c.status))
		return resp
	}
	if isEventStream(c.respMediaType) {
		c.rec.Stream = true
		c.acc.Reset(answerFormat)
		c.stream = &c.acc
		resp.ModeOverride = streamedResponseMode
	}
	return resp
}

// onResponseBody reads usage from the whole body (BUFFERED) or chunk by
// chunk (STREAMED). Bodies pass through unchanged, except that a stream
// loses the usage chunk Tollgate asked for and the client did not
// (askStreamUsage).
//
// A BUFFERED body comes in one message, and it is the whole body whatever
// its end_of_stream says: when the response has trailers (trailer mode
// SKIP), Envoy sends the buffered body on their arrival with
// end_of_stream false and nothing more (ext_proc.cc onTrailers).
func (s *Server) onResponseBody(c *call, msg *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	chunk := msg.GetBody()
	if c.firstChunkAt.IsZero() && (len(chunk) > 0 || msg.GetEndOfStream()) {
		c.firstChunkAt = s.now()
	}
	c.respBytes += len(chunk)
	if c.xstream != nil && c.stream != nil {
		return s.onTranslatedChunk(c, chunk, msg.GetEndOfStream())
	}
	if x := answeredCross(c); x != nil && c.stream == nil {
		return s.onTranslatedBody(c, x, chunk)
	}
	keepResponse(c, chunk)
	if c.stream != nil {
		c.stream.Write(chunk)
		reply := filterStreamChunk(c, chunk, msg.GetEndOfStream())
		if msg.GetEndOfStream() {
			s.endStream(c)
			s.finish(c, int32(c.status))
		}
		return responseBodyReply(reply)
	}
	// A path Tollgate does not know (Gemini's generateContent through a
	// target URL, say) is read too when it answers JSON: the usage shapes
	// are told apart by their names.
	if len(chunk) > 0 && (c.endpoint != provider.EndpointUnknown || isJSON(c.respMediaType)) {
		if usage, model, err := provider.ParseResponse(c.format, chunk); err == nil {
			s.useUsage(c, usage, model)
		}
	}
	s.finish(c, int32(c.status))
	return responseBodyReply(nil)
}

// keepResponse keeps what respKeep asks of a response body chunk. The
// first chunk of a body that is not streamed is kept as it came (it is the
// whole body, see onResponseBody); a stream's chunks are gathered in
// respBody.
func keepResponse(c *call, chunk []byte) {
	if c.stream == nil && c.respChunk == nil && c.respBody.Len() == 0 && len(chunk) > 0 && len(chunk) <= c.respKeep {
		c.respChunk = chunk // a larger one is cut by a copy: its prefix would hold all of it
		return
	}
	if c.respChunk != nil { // another message after all: gather them in order
		c.respBody.Write(c.respChunk)
		c.respChunk = nil
	}
	appendCapped(&c.respBody, chunk, c.respKeep)
}

// onResponseTrailers ends a response that had trailers. Only a streamed
// response asks for them (streamedResponseMode); its last chunk came without
// end_of_stream, so this is where it completes.
func (s *Server) onResponseTrailers(c *call) *extprocv3.ProcessingResponse {
	if c.xstream != nil && !c.logged {
		s.endTranslatedStream(c) // translated.go
	}
	if c.stream != nil && !c.logged {
		s.endStream(c)
	}
	if c.status != 0 {
		s.finish(c, int32(c.status))
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
}

// endStream takes the usage and model a streamed response reported, at its
// end or wherever it was cut, and counts what it did not report
// (estimateUsage).
func (s *Server) endStream(c *call) {
	c.stream.Finish()
	s.useUsage(c, c.stream.Usage(), c.stream.Model())
	s.estimateUsage(c)
}

func (s *Server) useUsage(c *call, u provider.Usage, model string) {
	c.rec.SetUsage(u)
	c.rec.ResponseModel = model
}

// mediaType is a Content-Type's media type, lowercase, or "" when the
// value does not parse (mime.ParseMediaType, parameters included). The
// common forms, "application/json" and "text/event-stream;
// charset=utf-8", are read without ParseMediaType's map of parameters;
// anything less plain is left to it.
func mediaType(contentType string) string {
	if contentType == "" {
		return ""
	}
	base, params, hasParams := strings.Cut(contentType, ";")
	if isMediaType(base) && (!hasParams || plainParams(params)) {
		return strings.ToLower(base)
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	return mt
}

// isMediaType: s is type/subtype in token characters, with no space
// around it. False is not a verdict: ParseMediaType decides.
func isMediaType(s string) bool {
	slash := strings.IndexByte(s, '/')
	if slash <= 0 || slash == len(s)-1 {
		return false
	}
	typ, sub := token(s[:slash]), token(s[slash+1:])
	return len(typ) == slash && len(sub) == len(s)-slash-1
}

// plainParams: p (what follows the first ';') is one to four
// name=value parameters, names and values tokens, names distinct and
// without RFC 2231's '*', separated by ';' and spaces or tabs. Such
// parameters always parse. False is not a verdict: ParseMediaType decides.
func plainParams(p string) bool {
	var names [4]string
	for n := 0; ; n++ {
		name := token(trimSP(p))
		rest := trimSP(trimSP(p)[len(name):])
		if name == "" || strings.IndexByte(name, '*') >= 0 || n == len(names) || !strings.HasPrefix(rest, "=") {
			return false
		}
		for _, seen := range names[:n] {
			if strings.EqualFold(seen, name) {
				return false
			}
		}
		names[n] = name
		value := token(trimSP(rest[1:]))
		rest = trimSP(trimSP(rest[1:])[len(value):])
		switch {
		case value == "":
			return false
		case rest == "":
			return true
		case rest[0] != ';':
			return false
		}
		p = rest[1:]
	}
}

// token is the longest prefix of s in RFC 2045 token characters (ASCII,
// no controls, space or tspecials).
func token(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return s[:i]
		}
	}
	return s
}

func trimSP(s string) string { return strings.TrimLeft(s, " \t") }

func isEventStream(mt string) bool { return mt == "text/event-stream" }

func isJSON(mt string) bool { return mt == "application/json" || strings.HasSuffix(mt, "+json") }

func itoa(n int) string { return strconv.Itoa(n) }
