package processor

import "github.com/tollgate-dev/tollgate/record"

// SpanExporter receives every finished call with the caller's W3C trace
// context (otelspan.Exporter). Offer must not block: it runs on the
// stream's goroutine once the exchange with Envoy is over.
type SpanExporter interface {
	Offer(rec *record.Record, traceparent, tracestate string)
}

// offerSpan hands the call's record to the span exporter when the stream
// ends: after the last reply, so no span work is on the way of any of the
// call's messages. The trace context is looked up here rather than in the
// request headers phase so that, without an exporter, it costs nothing.
// The record is the sink's by now, which only reads it (as the gate's
// Complete does).
func (s *Server) offerSpan(c *call) {
	if s.spans == nil || !c.logged {
		return
	}
	s.spans.Offer(c.rec, findHeader(c.reqHeaders, "traceparent"), findHeader(c.reqHeaders, "tracestate"))
}
