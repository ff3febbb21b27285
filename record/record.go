// Package record defines the log record Tollgate writes for every call and
// the sinks that receive it. The JSON names are the ClickHouse column names of
// the `requests` table (a public contract: users write SQL against them).
package record

import (
	"sort"
	"time"

	"github.com/tollgate-dev/tollgate/provider"
)

// Status values for calls that ended without an HTTP response.
const (
	StatusTimeout         = -2 // the data plane gave up (route or idle timeout)
	StatusClientCancelled = -3 // the client went away before the call ended
)

// Property is one Helicone-Property-<Name> header; Key is lowercased.
type Property struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Record is one row of the requests table.
type Record struct {
	RequestID   string     `json:"request_id"`
	CreatedAt   time.Time  `json:"created_at"` // UTC, when the request reached the processor
	Tenant      string     `json:"tenant"`
	UserID      string     `json:"user_id"`
	SessionID   string     `json:"session_id"`
	SessionPath string     `json:"session_path"`
	SessionName string     `json:"session_name"`
	RequestName string     `json:"request_name"`
	Properties  []Property `json:"properties"` // sorted by key

	// Provider is openai or anthropic by the path, azure on an Azure
	// OpenAI path, else a Helicone-Target-URL origin's host.
	Provider      string `json:"provider"`
	Model         string `json:"model"`          // as requested
	ResponseModel string `json:"response_model"` // as answered
	// ModelOverride is Helicone-Model-Override: the model the call is
	// priced as (PriceModels), whatever was asked or answered; "" when the
	// header was not sent.
	ModelOverride string `json:"model_override"`
	Method        string `json:"method"`
	Path          string `json:"path"`
	TargetURL     string `json:"target_url"` // origin from Helicone-Target-URL, if any

	Status int32 `json:"status"` // HTTP status, or StatusTimeout / StatusClientCancelled
	Stream bool  `json:"stream"`

	PromptTokens     int64   `json:"prompt_tokens"` // all input tokens, cached ones included
	CompletionTokens int64   `json:"completion_tokens"`
	CachedTokens     int64   `json:"cached_tokens"`
	CacheWriteTokens int64   `json:"cache_write_tokens"`
	ReasoningTokens  int64   `json:"reasoning_tokens"`
	CostUSD          float64 `json:"cost_usd"`

	LatencyMs int64 `json:"latency_ms"`
	TTFTMs    int64 `json:"ttft_ms"` // to the first response body chunk; 0 when there was none

	CacheHit         bool   `json:"cache_hit"`
	CacheReferenceID string `json:"cache_reference_id"`

	// CacheSimilarity is the cosine similarity of a semantic cache hit's
	// prompt to the one that filled the entry; 0 otherwise.
	CacheSimilarity float32 `json:"cache_similarity,omitempty"`

	RateLimited   bool   `json:"rate_limited"`
	PromptID      string `json:"prompt_id"`
	PromptVersion int32  `json:"prompt_version"`
	FallbackIndex int32  `json:"fallback_index"`

	// Retries: how many upstream attempts the call made (1 for a plain
	// call; 0 when none was made: cache hit, rate limited, rejected) and
	// the Helicone-Retry-* settings it asked for ("" when none), e.g.
	// "num=5 factor=2 min_timeout_ms=1000 max_timeout_ms=10000".
	Attempts    int32  `json:"attempts"`
	RetryPolicy string `json:"retry_policy"`

	// The Kubernetes identity of the calling workload.
	WorkloadNamespace      string `json:"workload_namespace"`
	WorkloadServiceAccount string `json:"workload_service_account"`
	WorkloadName           string `json:"workload_name"`

	// Egress policy: the rule that applied ("" = defaults or no policy)
	// and its decision, "allow" or "deny: <reason>".
	PolicyRule     string `json:"policy_rule"`
	PolicyDecision string `json:"policy_decision"`

	RequestBody  string `json:"request_body"`
	ResponseBody string `json:"response_body"`
	Error        string `json:"error"`

	// Warnings are the Helicone-* header values tolerated instead of a
	// 400, as the Helicone-Warning response header gave them ("" for
	// none).
	Warnings string `json:"warnings"`

	// ProxyKeyID is the key-vault proxy key the call was made with ("" for
	// none): its id, never the key (policies/vault).
	ProxyKeyID string `json:"proxy_key_id"`

	// UsageSource says where the token counts come from: UsageProvider,
	// UsageEstimated, or "" when the call has no usage.
	UsageSource string `json:"usage_source"`
}

// UsageSource values.
const (
	// UsageProvider: the provider reported the counts.
	UsageProvider = "provider"
	// UsageEstimated: some counts were missing (a stream cut before its
	// usage, or one without it) and were counted from the request and the
	// streamed output instead; the counts the provider did report are kept.
	UsageEstimated = "estimated"
)

// SortProperties orders properties by key, the last value of a repeated key
// winning, so records are deterministic. It reuses props' storage.
func SortProperties(props []Property) []Property {
	sort.SliceStable(props, func(i, j int) bool { return props[i].Key < props[j].Key })
	out := props[:0]
	for i, p := range props {
		if i+1 < len(props) && props[i+1].Key == p.Key {
			continue
		}
		out = append(out, p)
	}
	return out
}

// PriceModels are the names the call's price is looked up by, in order
// (provider.PriceTable.CallCost): the override alone when there is one,
// as Helicone prices a call by its override whatever answered
// (valhalla/jawn/src/lib/handlers/ResponseBodyHandler.ts, calculateModel
// then modelCost); else the answering model (a dated snapshot may have its
// own price), then the requested one.
func (r *Record) PriceModels() []string {
	if r.ModelOverride != "" {
		return []string{r.ModelOverride}
	}
	return []string{r.ResponseModel, r.Model}
}

// Usage returns the record's token counts.
func (r *Record) Usage() provider.Usage {
	return provider.Usage{
		PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens,
		CachedTokens: r.CachedTokens, CacheWriteTokens: r.CacheWriteTokens,
		ReasoningTokens: r.ReasoningTokens,
	}
}

// SetUsage sets the record's token counts.
func (r *Record) SetUsage(u provider.Usage) {
	r.PromptTokens, r.CompletionTokens = u.PromptTokens, u.CompletionTokens
	r.CachedTokens, r.CacheWriteTokens, r.ReasoningTokens = u.CachedTokens, u.CacheWriteTokens, u.ReasoningTokens
}
