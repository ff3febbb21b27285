package processor

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/policies/attempts"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/provider/translate"
)

// Cross-provider fallback. A Helicone-Fallbacks entry whose target-url is
// the other provider's public origin (an OpenAI chat call falling back to
// Anthropic's Messages API, or the reverse) rides the fallback chain like
// any other origin; what changes is the attempt and its answer:
//   - the request body is translated in the router-level body phase, once
//     per such entry, so a field the other side lacks is a 400 naming it
//     before any call (translate.FieldError);
//   - the upstream-level filter sends that entry's attempt with the other
//     provider's path, its anthropic-version, the translated body and the
//     credential configured for that provider (Options.ProviderKeys) in
//     place of the client's, which is never sent to another provider;
//   - the router-level filter, which knows from the link which entry
//     answered, translates the answer back: the whole body when buffered,
//     the SSE stream chunk by chunk when streamed. Usage is read from the
//     answer as the provider sent it, and the record names that provider.

// crossEntry is one translated fallback entry.
type crossEntry struct {
	format string // the provider the entry goes to: provider.OpenAI or provider.Anthropic
	body   []byte // the translated request body
	// includeUsage: the client asked for usage in its stream (an OpenAI
	// client's stream_options.include_usage).
	includeUsage bool
}

// crossHeaders are the request headers a translated attempt always changes;
// every other attempt of the call gets the request's own values back
// (Envoy's attempts share one header map). crossHeaderNames adds the
// client's other credential and provider-specific headers.
var crossHeaders = []string{":path", "anthropic-version", "anthropic-beta", "accept-encoding", "content-type", "openai-organization", "openai-project"}

// crossHeaderNames is every header a translated attempt sets or removes:
// crossHeaders, every credential header (provider.CredentialHeaders: an
// api-key or x-goog-api-key of the client's must not reach the other
// provider either) and each anthropic-* header of the request (a client's
// betas and the like are its own provider's).
func crossHeaderNames(c *call, m *headerMutation) []string {
	names := slices.Concat(crossHeaders, provider.CredentialHeaders[:])
	for _, h := range c.reqHeaders {
		if k := h.GetKey(); strings.HasPrefix(k, "anthropic-") {
			names = append(names, k)
		}
	}
	for _, o := range m.set {
		if k := o.GetHeader().GetKey(); strings.HasPrefix(k, "anthropic-") {
			names = append(names, k)
		}
	}
	return slices.Compact(slices.Sorted(slices.Values(names)))
}

// anthropicVersion is the Messages API version translated requests are
// written for.
const anthropicVersion = "2023-06-01"

// otherFormat is the provider whose public origin origin is when that is not
// the request's own format ("" otherwise).
func otherFormat(c *call, origin string) string {
	for _, f := range []string{provider.OpenAI, provider.Anthropic} {
		if f != c.format && origin != "" && origin == provider.PublicOrigin(f) {
			return f
		}
	}
	return ""
}

// crossFormats maps each fallback index whose origin is the other provider's
// to that provider. A chat request is needed (the translation is between
// Chat Completions and Messages), the provider needs a configured key, and
// the entry must name the model it wants there.
func (s *Server) crossFormats(c *call, plan *attempts.FallbackPlan, origins []string) (map[int]string, *clientError) {
	var out map[int]string
	for i, o := range origins {
		f := otherFormat(c, o)
		if f == "" {
			continue
		}
		name, dest := entryName(c, plan, i), entryDest(plan, i, o)
		switch {
		case !onProviderProper(c):
			// The attempts before it would go to this call's own provider
			// (Groq, Together, Gemini, a target) with the client's key
			// for it; a chain has levels for OpenAI's and Anthropic's
			// own origins only, and translation is between those two.
			return nil, badRequest("invalid_header", "%s %s: this call goes to %s, not to OpenAI's or Anthropic's own API; a fallback translated to %s is only for calls on api.openai.com or api.anthropic.com",
				name, dest, c.rec.Provider, f)
		case i == 0:
			// The first attempt would go out on the gateway's key with
			// nothing of the client's tried before it.
			return nil, badRequest("invalid_header", "%s %s: the first entry must be on this request's own provider (%s); an entry translated to %s can only be a fallback after it",
				name, dest, c.format, f)
		case s.providerKeys[f] == "":
			return nil, badRequest("invalid_header", "%s %s speaks %s's format and this request %s's: translating between them needs a configured %s key (--provider-key %s=…), and this gateway has none",
				name, dest, f, c.format, f, f)
		case c.endpoint != provider.EndpointChatCompletions && c.endpoint != provider.EndpointMessages:
			return nil, badRequest("invalid_header", "%s %s: only chat calls (/v1/chat/completions, /v1/messages) are translated to another provider", name, dest)
		case entryModel(plan.Entry(i)) == "":
			return nil, badRequest("invalid_header", "%s %s: an entry on another provider needs its model (\"model\" or bodyKeyOverride.model)", name, dest)
		}
		if out == nil {
			out = map[int]string{}
		}
		out[i] = f
	}
	if cerr := forcedFallback(c, plan, out); cerr != nil {
		return nil, cerr
	}
	return out, nil
}

// forcedFallback guards the gateway's key: the attempts before a translated
// entry move on only on a 5xx, a reset or a connect failure
// (FallbackPlan.ServerErrorsBefore drops the default 429), and onCodes
// naming any 4xx on such an entry are refused. A client could otherwise
// fail its own attempt on purpose (a junk key or model, a key with no
// quota that answers 429 to every call) and spend the gateway's key on the
// other provider.
func forcedFallback(c *call, plan *attempts.FallbackPlan, cross map[int]string) *clientError {
	last := -1
	for i := range cross {
		last = max(last, i)
	}
	for i := 0; i < last; i++ {
		e := plan.Entry(i)
		if e == nil {
			continue
		}
		for _, r := range e.OnCodes {
			if r.From <= 499 && r.To >= 400 {
				return badRequest("invalid_header", "%s: onCodes %d-%d include a client error (4xx); an entry before one translated to another provider (sent on the gateway's key) falls back only on a server error (5xx)",
					entryName(c, plan, i), r.From, r.To)
			}
		}
	}
	if last > 0 {
		plan.ServerErrorsBefore = last
	}
	return nil
}

// entryIndex is the fallback index of plan.Entries[j] (see Plan.Entry).
func entryIndex(plan *attempts.FallbackPlan, j int) int {
	if plan.OriginalFirst {
		return j + 1
	}
	return j
}

// entryModel is the model an entry asks for: its model, or a string in its
// bodyKeyOverride.
func entryModel(e *attempts.FallbackEntry) string {
	if e == nil {
		return ""
	}
	m := e.Model
	for _, kv := range e.BodyOverride {
		if kv[0] == "model" && len(kv[1]) > 2 && kv[1][0] == '"' {
			m = kv[1][1 : len(kv[1])-1]
		}
	}
	return m
}

// translateEntries translates the request body for every cross-provider
// entry of the call (body phase, before any attempt). An untranslatable
// field is a 400 naming it and the entry.
func (s *Server) translateEntries(c *call, body []byte) *clientError {
	l := c.link
	if l == nil || len(l.crossFormat) == 0 {
		return nil
	}
	cross := make(map[int]*crossEntry, len(l.crossFormat))
	for _, i := range slices.Sorted(maps.Keys(l.crossFormat)) {
		f := l.crossFormat[i]
		e := l.plan.Entry(i)
		src, err := e.Rewrite(body)
		if err != nil {
			return badRequest("invalid_header", "%s: %v", entryName(c, l.plan, i), err)
		}
		opt := translate.RequestOptions{Model: entryModel(e)}
		var req translate.Request
		if f == provider.Anthropic {
			req, err = translate.OpenAIToAnthropic(src, opt)
		} else {
			req, err = translate.AnthropicToOpenAI(src, opt)
		}
		if err != nil {
			var fe *translate.FieldError
			if errors.As(err, &fe) {
				return badRequest("untranslatable_request", "%s on %s: the request's %s cannot be sent there: %s",
					entryName(c, l.plan, i), f, fe.Field, fe.Reason)
			}
			return badRequest("untranslatable_request", "%s on %s: %v", entryName(c, l.plan, i), f, err)
		}
		// A usage chunk Tollgate asked for (askStreamUsage's filter) is
		// not the client's to get.
		cross[i] = &crossEntry{format: f, body: req.Body, includeUsage: req.IncludeUsage && c.usageFilter == nil}
	}
	l.cross = cross // published to the upstream streams by link.body's store
	return nil
}

// crossOverrides are the headers of a translated attempt: the other
// provider's path, version and configured key; the client's credential
// headers go. The answer comes uncompressed: it must be readable to be
// translated back.
func (s *Server) crossOverrides(x *crossEntry, names []string) map[string]*string {
	key := s.providerKeys[x.format]
	str := func(v string) *string { return &v }
	h := map[string]*string{}
	// Everything of the client's that is its own provider's goes,
	// whatever the entry's "headers" say (restoreHeaders lets these win).
	for _, n := range slices.Concat(names, crossHeaders, provider.CredentialHeaders[:]) {
		h[n] = nil
	}
	h["accept-encoding"], h["content-type"] = str("identity"), str("application/json")
	if x.format == provider.Anthropic {
		h[":path"], h["x-api-key"], h["anthropic-version"] = str("/v1/messages"), str(key), str(anthropicVersion)
	} else {
		h[":path"], h["authorization"] = str("/v1/chat/completions"), str("Bearer "+key)
	}
	return h
}

// gatewayKeyRefused turns the other provider's 401 or 403 to a translated
// attempt into a 502: the key it refused is the gateway's, not the
// client's, so the client must not read it as its own auth error, and the
// provider's body (which may echo a masked key) is not passed on. The
// operator gets a warning; nil when the status is another.
func (s *Server) gatewayKeyRefused(c *call, x *crossEntry) *extprocv3.ProcessingResponse {
	if c.status != 401 && c.status != 403 {
		return nil
	}
	s.log.Warn("translated fallback: the provider refused the gateway's configured key", "request_id", c.rec.RequestID, "provider", x.format, "status", c.status)
	return s.reject(c, &clientError{status: 502, code: "fallback_provider_auth",
		message: fmt.Sprintf("the fallback to %s failed: %s refused the gateway's configured key (%d); this is the gateway's configuration, not the request's", x.format, x.format, c.status)})
}

// answeredCross is the translated entry whose attempt answered, nil when the
// answer is in the client's own format.
func answeredCross(c *call) *crossEntry {
	if c.link == nil || c.link.cross == nil {
		return nil
	}
	return c.link.cross[int(c.link.index.Load())]
}

// translateAnswer turns a buffered answer of the other provider into the
// client's format; the body is kept as it came when it does not translate
// (an error page that is not JSON, say).
func (s *Server) translateAnswer(c *call, x *crossEntry, body []byte) []byte {
	var out []byte
	var err error
	if x.format == provider.Anthropic {
		out, err = translate.AnthropicResponseToOpenAI(body, translate.ResponseOptions{Now: s.now})
	} else {
		out, err = translate.OpenAIResponseToAnthropic(body)
	}
	if err != nil {
		s.log.Warn("fallback answer not translated", "request_id", c.rec.RequestID, "provider", x.format, "error", err.Error())
		return body
	}
	return out
}

// newStreamTranslator is the translator of a streamed answer of the other
// provider.
func newStreamTranslator(s *Server, x *crossEntry) translate.StreamTranslator {
	if x.format == provider.Anthropic {
		return translate.NewAnthropicToOpenAIStream(x.includeUsage, translate.ResponseOptions{Now: s.now})
	}
	return translate.NewOpenAIToAnthropicStream()
}

// translateChunk translates one chunk of a streamed answer; end closes the
// translator. A stream that breaks (an upstream event that does not
// translate, or an end before the upstream's terminal event) ends what the
// client gets with an error event of its own format, never a silent cut.
func (s *Server) translateChunk(c *call, chunk []byte, end bool) []byte {
	if c.xstreamDone {
		return nil
	}
	out, err := c.xstream.Write(chunk)
	out = bytes.Clone(out)
	if err == nil && end {
		var b []byte
		b, err = c.xstream.Close()
		out = append(out, b...)
	}
	if err != nil {
		out = append(out, s.translatedStreamBroke(c, err)...)
	}
	c.xstreamDone = end || err != nil
	return out
}

// translatedStreamBroke records that the other provider's stream broke and
// returns the error event that ends the client's stream. The client has its
// 200 headers already; the record says 502 (the gateway could not complete
// the answer), so the call counts as failed.
func (s *Server) translatedStreamBroke(c *call, err error) []byte {
	provider := c.rec.Provider
	c.xstreamBroke = true
	c.rec.Error = "the stream of the fallback on " + provider + " broke: " + err.Error()
	s.log.Warn("translated fallback: the provider's stream broke", "request_id", c.rec.RequestID, "provider", provider, "error", err.Error())
	return translate.BrokenStreamEvent(c.format, "the answer's stream from "+provider+" broke before its end ("+err.Error()+")")
}

// translatedStatus is the record's status of a translated answer.
func translatedStatus(c *call) int32 {
	if c.xstreamBroke {
		return 502
	}
	return int32(c.status)
}

// onTranslatedChunk reads usage from a chunk of another provider's stream as
// it came, and sends the client the chunk's translation. The response body
// runs STREAMED (streamedResponseMode), as every stream's: each chunk's
// reply replaces it with its translation, the last (end) with what the
// translator still owes too (its terminal events, or the error event of a
// broken stream).
func (s *Server) onTranslatedChunk(c *call, chunk []byte, end bool) *extprocv3.ProcessingResponse {
	c.stream.Write(chunk)
	out := s.translateChunk(c, chunk, end)
	keepResponse(c, out)
	if end {
		s.endStream(c)
		s.finish(c, translatedStatus(c))
	}
	return responseBodyReply(bodyMutation(out))
}

// endTranslatedStream ends a translated stream that trailers ended (an
// HTTP/2 upstream with trailers: no chain cluster envoy/ ships is one, and
// Envoy's HTTP/1 codec drops an upstream's trailers). In STREAMED mode the
// reply to the last chunk has gone before the trailers come, and a
// trailers reply carries no body, so nothing more reaches the client. For
// a whole stream that is nothing lost: once the upstream's terminal event
// (message_stop, [DONE]) came, the translator's Close owes nothing. Else
// what it owed (the terminal events of a stream that stopped after its
// finish, or the error event of a broken one) is lost, and the record says
// so: a 502 naming the cause, as for any broken stream.
func (s *Server) endTranslatedStream(c *call) {
	if !c.xstreamDone {
		out := s.translateChunk(c, nil, true)
		if len(out) > 0 && !c.xstreamBroke {
			s.translatedStreamBroke(c, errors.New("trailers ended it before its terminal event, and the translation's last events could not be sent"))
		}
	}
	s.endStream(c)
	s.finish(c, translatedStatus(c))
}

// onTranslatedBody reads usage from another provider's whole answer and
// replaces it with its translation.
func (s *Server) onTranslatedBody(c *call, x *crossEntry, body []byte) *extprocv3.ProcessingResponse {
	if len(body) > 0 {
		if usage, model, err := provider.ParseResponse(x.format, body); err == nil {
			s.useUsage(c, usage, model)
		}
	}
	out := s.translateAnswer(c, x, body)
	keepResponse(c, out)
	s.finish(c, int32(c.status))
	return responseBodyReply(bodyMutation(out))
}

// bodyMutation replaces a body (or chunk) with out.
func bodyMutation(out []byte) *extprocv3.CommonResponse {
	bm := &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: out}}
	if len(out) == 0 {
		bm.Mutation = &extprocv3.BodyMutation_ClearBody{ClearBody: true}
	}
	return &extprocv3.CommonResponse{BodyMutation: bm}
}
