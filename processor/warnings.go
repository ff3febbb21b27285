package processor

import (
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/helicone"
)

// Helicone-Warning: a call whose Helicone-* headers held values tolerated
// instead of a 400 (helicone.Warnings) says so on whatever answers it — the
// provider's response, a cache hit, a 429, any reply Tollgate makes — so
// the header is added here, to every reply that reaches the client, rather
// than by each place that builds one. Warnings come from every request
// phase (the header parser, then the policies in the body phase), and the
// client's answer always comes later, so none is missed.

// addWarningHeader adds Helicone-Warning to resp when it carries the
// client's response headers: an immediate reply or the response-headers
// reply.
func addWarningHeader(c *call, resp *extprocv3.ProcessingResponse) {
	if resp == nil || len(c.helicone.Warnings.List) == 0 {
		return
	}
	var m headerMutation
	m.setHeader(helicone.WarningHeader, c.helicone.Warnings.Value())
	switch r := resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		ir := r.ImmediateResponse
		if ir.Headers == nil {
			ir.Headers = &extprocv3.HeaderMutation{}
		}
		ir.Headers.SetHeaders = append(ir.Headers.SetHeaders, m.set...)
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		hr := r.ResponseHeaders
		if hr.Response == nil {
			hr.Response = &extprocv3.CommonResponse{}
		}
		if hr.Response.HeaderMutation == nil {
			hr.Response.HeaderMutation = &extprocv3.HeaderMutation{}
		}
		hr.Response.HeaderMutation.SetHeaders = append(hr.Response.HeaderMutation.SetHeaders, m.set...)
	}
}

// noteWarnings puts the call's warnings in its record and counts them, once
// (finish).
func (s *Server) noteWarnings(c *call) {
	w := &c.helicone.Warnings
	if len(w.List) == 0 {
		return
	}
	c.rec.Warnings = w.Value()
	for _, x := range w.List {
		s.metrics.heliconeWarnings.WithLabelValues(helicone.WarningLabel(x.Header)).Inc()
	}
}
