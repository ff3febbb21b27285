package processor

import (
	"strconv"
	"strings"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/semcache"
	"github.com/tollgate-dev/tollgate/provider"
)

// semanticGate is what the semantic cache needs of the Gate (gate.Gate
// has it): the scope of a missed request, the entry to store, a hit.
type semanticGate interface {
	SemanticScope(req gate.RequestInfo, d *gate.Decision) (string, bool)
	SemanticEntry(d *gate.Decision, resp gate.ResponseInfo) ([]byte, time.Duration, bool)
	SemanticHit(entry []byte, similarity float32) (*gate.Decision, bool)
}

// semanticOptions reads Helicone-Cache-Semantic-Enabled and -Threshold
// (and the egress policy's switch, for a request that does not say). A
// threshold that is not a number in (0, 1] is a *helicone.BadHeaderError.
func (s *Server) semanticOptions(c *call) (on bool, threshold float32, err error) {
	v := c.header(semcache.HeaderEnabled)
	sw, ok := helicone.ReadSwitch(v)
	if !ok {
		c.helicone.Warnings.Add(semcache.HeaderEnabled, strconv.Quote(helicone.Truncate(v, 64))+" is neither true nor false; read as not sent")
	}
	on = sw == helicone.SwitchOn || sw == helicone.SwitchUnset && c.egress != nil && c.egress.Cache.Semantic
	if c.egress != nil && c.egress.Cache.SemanticThreshold > 0 {
		threshold = float32(c.egress.Cache.SemanticThreshold)
	}
	if t := strings.TrimSpace(c.header(semcache.HeaderThreshold)); t != "" {
		f, perr := strconv.ParseFloat(t, 32)
		if perr != nil || !(f > 0 && f <= 1) {
			return false, 0, &helicone.BadHeaderError{Header: helicone.Canonical(semcache.HeaderThreshold),
				Reason: "must be a cosine similarity in (0, 1], got " + strconv.Quote(helicone.Truncate(t, 64))}
		}
		threshold = float32(f)
	}
	if on && !semanticEndpoint(c.endpoint) {
		if sw == helicone.SwitchOn {
			c.helicone.Warnings.Add(semcache.HeaderEnabled, "applies to chat completions, messages and responses only; the semantic cache is off for this call")
		}
		on = false
	}
	// A semantic hit answers without the call going anywhere: a call that
	// asked to be screened (moderation, LLM security) must be screened, so
	// it does not use the semantic cache.
	if on && (c.helicone.Moderations || c.helicone.LLMSecurity) {
		if sw == helicone.SwitchOn {
			c.helicone.Warnings.Add(semcache.HeaderEnabled, "not used with Helicone-Moderations-Enabled or Helicone-LLM-Security-Enabled; the semantic cache is off for this call")
		}
		on = false
	}
	if on && s.semantic == nil {
		c.helicone.Warnings.Add(semcache.HeaderEnabled, "no embeddings endpoint is configured; the semantic cache is off")
		on = false
	}
	if on && threshold == 0 {
		threshold = s.semantic.Threshold()
	}
	return on, threshold, nil
}

// semanticEndpoint reports whether an endpoint's requests are chats the
// semantic cache may answer: chat completions, Anthropic messages, and
// OpenAI responses. Completions, embeddings and the rest are not.
func semanticEndpoint(e provider.Endpoint) bool {
	return e == provider.EndpointChatCompletions || e == provider.EndpointMessages || e == provider.EndpointResponses
}

// semanticLookup runs after an exact miss of an opted-in call: it embeds
// the prompt (bounded by the embeddings timeout; a failure is a miss) and
// answers from the nearest earlier answer of the same scope when it is
// similar enough. Otherwise it keeps the scope and vector for
// semanticStore, after the response.
func (s *Server) semanticLookup(c *call, info *gate.RequestInfo, d *gate.Decision, threshold float32) *extprocv3.ProcessingResponse {
	sg, ok := s.gate.(semanticGate)
	if !ok {
		return nil
	}
	scope, ok := sg.SemanticScope(*info, d)
	if !ok {
		c.helicone.Warnings.Add(semcache.HeaderEnabled, "the cache is not read for this call (Helicone-Cache-Enabled: true, or the egress policy's cache); the semantic cache is off")
		return nil
	}
	text := semcache.PromptText(info.Body)
	if text == "" {
		return nil
	}
	vec, m, err := s.semantic.Lookup(c.ctx, scope, text, threshold)
	if err != nil {
		return nil // the embeddings call failed or timed out: uncached
	}
	if m != nil {
		// An answer gone from the store gives way to the next best.
		if entry, hit, ok := s.semantic.Answer(c.ctx, scope, m); ok {
			if hd, ok := sg.SemanticHit(entry, hit.Similarity); ok {
				// The exact lookup's rate-limit headers still describe
				// this call; its Helicone-Cache: MISS does not.
				for _, h := range d.ResponseHeaders {
					if h[0] != helicone.CacheStatus {
						hd.Answer.Headers = append(hd.Answer.Headers, h)
					}
				}
				c.decision = hd
				c.rec.CacheSimilarity = hit.Similarity
				return s.answerFromGate(c, hd)
			}
		}
	}
	c.semScope, c.semVec = scope, vec
	return nil
}

// semanticStore adds a finished call's answer to the semantic cache, off
// the client's path like the exact cache fill.
func (s *Server) semanticStore(c *call, resp gate.ResponseInfo) {
	if c.semVec == nil {
		return
	}
	sg, ok := s.gate.(semanticGate)
	if !ok {
		return
	}
	entry, ttl, ok := sg.SemanticEntry(c.decision, resp)
	if !ok {
		return
	}
	s.semantic.Add(c.ctx, c.semScope, resp.RequestID, c.semVec, entry, ttl, c.decision.ErasureIndex(resp.RequestID)...)
}
