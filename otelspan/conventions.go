// Package otelspan speaks OpenTelemetry for Tollgate's records, both ways:
// it exports a span per finished call, named and attributed after the
// GenAI semantic conventions (v1.41.0, plus gen_ai.system of v1.36.0 for
// backends that still read it), over OTLP/HTTP; and it reads the GenAI
// attributes of spans sent in (api's POST /v1/traces) with the same names,
// so that a span Tollgate exports means the same record when it comes back.
package otelspan

import (
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// Attribute keys. The gen_ai.* ones are the semantic conventions'; the
// tollgate.* ones carry what no convention names.
const (
	AttrOperation        = "gen_ai.operation.name"
	AttrProviderName     = "gen_ai.provider.name" // v1.37.0 on
	AttrSystem           = "gen_ai.system"        // v1.36.0 and before
	AttrRequestModel     = "gen_ai.request.model"
	AttrResponseModel    = "gen_ai.response.model"
	AttrResponseID       = "gen_ai.response.id"
	AttrRequestStream    = "gen_ai.request.stream"
	AttrMaxTokens        = "gen_ai.request.max_tokens"
	AttrTemperature      = "gen_ai.request.temperature"
	AttrInputTokens      = "gen_ai.usage.input_tokens"
	AttrOutputTokens     = "gen_ai.usage.output_tokens"
	AttrCacheReadTokens  = "gen_ai.usage.cache_read.input_tokens"
	AttrCacheWriteTkns   = "gen_ai.usage.cache_creation.input_tokens"
	AttrReasoningTokens  = "gen_ai.usage.reasoning.output_tokens"
	AttrTimeToFirstChunk = "gen_ai.response.time_to_first_chunk" // seconds
	AttrConversationID   = "gen_ai.conversation.id"
	// Deprecated names (v1.26.0 and before) still sent by older
	// instrumentations; read only.
	AttrPromptTokensOld     = "gen_ai.usage.prompt_tokens"
	AttrCompletionTokensOld = "gen_ai.usage.completion_tokens"

	AttrErrorType  = "error.type"
	AttrHTTPStatus = "http.response.status_code"
	AttrUserID     = "user.id"
	AttrSessionID  = "session.id"
	AttrURLPath    = "url.path"

	AttrRequestID     = "tollgate.request_id"
	AttrTenant        = "tollgate.tenant"
	AttrCostUSD       = "tollgate.cost_usd"
	AttrCache         = "tollgate.cache" // hit, semantic or miss
	AttrCacheRef      = "tollgate.cache_reference_id"
	AttrRateLimited   = "tollgate.rate_limited"
	AttrFallbackIndex = "tollgate.fallback_index"
	AttrAttempts      = "tollgate.attempts"
	AttrSessionPath   = "tollgate.session_path"
	AttrSessionName   = "tollgate.session_name"
	AttrRequestName   = "tollgate.request_name"
	AttrPromptID      = "tollgate.prompt_id"
	AttrPromptVersion = "tollgate.prompt_version"
	AttrUsageSource   = "tollgate.usage_source"
	// AttrPropertyPrefix + key is a Helicone-Property-<Key> (key lowercased).
	AttrPropertyPrefix = "tollgate.property."
)

// Values of AttrCache.
const (
	CacheHit      = "hit"
	CacheSemantic = "semantic"
	CacheMiss     = "miss"
)

// Values of AttrErrorType for calls that ended without a response; other
// failures carry their HTTP status, e.g. "429".
const (
	ErrorTimeout   = "timeout"
	ErrorCancelled = "cancelled"
)

// ScopeName is the instrumentation scope of the spans Tollgate exports.
// The ingest path skips spans of this scope: their calls are logged
// already, and one coming back (a collector pipeline that loops to
// /v1/traces) must not replace the full record with its span's summary.
const ScopeName = "github.com/tollgate-dev/tollgate/otelspan"

// Operation is the gen_ai.operation.name of a call on path: chat for chat
// completions, Anthropic messages and OpenAI responses, text_completion,
// embeddings, generate_content for Gemini's API; for other paths the
// endpoint's own name (models, count_tokens) or "unknown", as the
// convention allows a value of the system's own.
func Operation(path string) string {
	_, _, ep := provider.Resolve(path)
	switch ep {
	case provider.EndpointChatCompletions, provider.EndpointMessages, provider.EndpointResponses:
		return "chat"
	case provider.EndpointCompletions:
		return "text_completion"
	case provider.EndpointEmbeddings:
		return "embeddings"
	case provider.EndpointGenerateContent, provider.EndpointStreamGenerateContent:
		return "generate_content"
	}
	return ep.String()
}

// providerNames maps Tollgate's provider names to gen_ai.provider.name
// where they differ; the v1.36.0 gen_ai.system value differs only for xai.
var providerNames = map[string]string{
	provider.Azure:  "azure.ai.openai",
	provider.Gemini: "gcp.gemini",
	"mistral":       "mistral_ai",
	"xai":           "x_ai",
}

// ProviderName is gen_ai.provider.name for a record's provider.
func ProviderName(tollgate string) string {
	if v, ok := providerNames[tollgate]; ok {
		return v
	}
	return tollgate
}

// systemName is gen_ai.system (v1.36.0) for a record's provider.
func systemName(tollgate string) string {
	if tollgate == "xai" {
		return "xai"
	}
	return ProviderName(tollgate)
}

// FromProviderName is the record's provider for a gen_ai.provider.name or
// gen_ai.system value: the inverse of ProviderName, lowercased; the
// convention's other Google and Azure names map to gemini and azure.
func FromProviderName(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	switch v {
	case "azure.ai.openai", "az.ai.openai", "azure.ai.inference", "az.ai.inference":
		return provider.Azure
	case "gcp.gemini", "gcp.gen_ai", "gcp.vertex_ai", "vertex_ai", "gemini":
		return provider.Gemini
	case "mistral_ai":
		return "mistral"
	case "x_ai", "xai":
		return "xai"
	}
	return v
}

// CacheOutcome is AttrCache's value for r.
func CacheOutcome(r *record.Record) string {
	switch {
	case r.CacheHit && r.CacheSimilarity > 0:
		return CacheSemantic
	case r.CacheHit:
		return CacheHit
	}
	return CacheMiss
}

// ErrorType is error.type for a record's status ("" when the call
// succeeded).
func ErrorType(status int32) string {
	switch {
	case status == record.StatusTimeout:
		return ErrorTimeout
	case status == record.StatusClientCancelled:
		return ErrorCancelled
	case status >= 400 || status < 0:
		return strconv.Itoa(int(status))
	case status == 0:
		return "_OTHER" // no response and no known reason
	}
	return ""
}
