package processor

import (
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// finish completes the record (status, latency, TTFT, cost) and hands it to
// the sink. It runs once per call, whichever way the call ended.
func (s *Server) finish(c *call, status int32) {
	if c.logged {
		return
	}
	c.logged = true
	s.releaseLink(c)
	rec := c.rec
	if c.forwarded {
		rec.Attempts = max(rec.Attempts, 1)
	}
	rec.Status = status
	end := s.now()
	if !c.start.IsZero() {
		rec.LatencyMs = end.Sub(c.start).Milliseconds()
		if !c.firstChunkAt.IsZero() {
			rec.TTFTMs = c.firstChunkAt.Sub(c.start).Milliseconds()
		}
	}
	if kept := c.respKept(); !c.helicone.OmitResponse && len(kept) > 0 {
		if c.respChunk != nil {
			rec.ResponseBody = loggedString(loggedBody(c.egress, true, kept), s.maxLoggedBody)
		} else { // respBody goes back to the pool with the call: copy
			rec.ResponseBody = record.CapBody(loggedBody(c.egress, true, kept), s.maxLoggedBody)
		}
	}
	if rec.UsageSource == "" && rec.Usage() != (provider.Usage{}) {
		rec.UsageSource = record.UsageProvider
	}
	if !c.free {
		rec.CostUSD = s.cost(c)
		c.chargeUSD = rec.CostUSD
		if rec.ModelOverride != "" {
			// Cents limits and budgets are charged what the provider
			// bills, by the model that answered: an override names the
			// price listed in the record, and a client must not lower an
			// operator's budget by naming a cheaper (or unpriced) model.
			c.chargeUSD, _ = s.prices.CallCost(c.priceProvider(), rec.Usage(), rec.ResponseModel, s.azurePriceModel(c), rec.Model)
		}
	}
	s.noteWarnings(c)
	s.sink.Write(rec)
	s.metrics.observe(rec)
}

// cost prices the call. An unknown model costs 0 and is counted, never an
// error.
func (s *Server) cost(c *call) float64 {
	rec := c.rec
	var cost float64
	var priced bool
	if rec.ModelOverride != "" {
		// Helicone-Model-Override alone prices the call (record.PriceModels).
		cost, priced = s.prices.CallCost(c.priceProvider(), rec.Usage(), rec.ModelOverride)
	} else {
		cost, priced = s.prices.CallCost(c.priceProvider(), rec.Usage(), rec.ResponseModel, s.azurePriceModel(c), rec.Model)
	}
	if !priced {
		s.metrics.unknownModel.WithLabelValues(c.format).Inc()
	}
	return cost
}
