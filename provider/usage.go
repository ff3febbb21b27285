package provider

import (
	"math"

	"github.com/tidwall/gjson"
)

// Usage is normalized across providers.
//
// PromptTokens counts ALL input tokens, including cached reads and cache
// writes (OpenAI prompt_tokens / input_tokens as is; Anthropic input_tokens +
// cache_read_input_tokens + cache_creation_input_tokens).
// CachedTokens: OpenAI prompt_tokens_details.cached_tokens (or
// input_tokens_details.cached_tokens for /v1/responses); Anthropic
// cache_read_input_tokens.
// CacheWriteTokens: Anthropic cache_creation_input_tokens (0 for OpenAI).
// CompletionTokens: OpenAI completion_tokens / output_tokens; Anthropic
// output_tokens.
// ReasoningTokens: OpenAI completion_tokens_details.reasoning_tokens /
// output_tokens_details.reasoning_tokens (part of CompletionTokens).
type Usage struct {
	PromptTokens, CompletionTokens, CachedTokens, CacheWriteTokens, ReasoningTokens int64
}

// usageField indexes the raw counters a usage object can carry. The same
// name means different things per provider (Anthropic's input_tokens
// excludes the cache, OpenAI's includes it), so the raw values are kept
// apart and normalized only at the end.
type usageField uint8

const (
	fPromptTokens     usageField = iota // OpenAI chat/completions/embeddings
	fCompletionTokens                   // OpenAI chat/completions
	fTotalTokens                        // OpenAI; the only count some embedding servers send
	fInputTokens                        // OpenAI responses; Anthropic (excludes cache)
	fOutputTokens                       // OpenAI responses; Anthropic
	fCacheRead                          // Anthropic cache_read_input_tokens
	fCacheCreation                      // Anthropic cache_creation_input_tokens
	fCachedTokens                       // OpenAI *_tokens_details.cached_tokens
	fReasoningTokens                    // OpenAI *_tokens_details.reasoning_tokens
	fCacheHit                           // DeepSeek prompt_cache_hit_tokens (part of prompt_tokens)
	fGeminiPrompt                       // Gemini usageMetadata.promptTokenCount (includes the cache)
	fGeminiCandidates                   // candidatesTokenCount (excludes thoughts)
	fGeminiTotal                        // totalTokenCount
	fGeminiCached                       // cachedContentTokenCount
	fGeminiThoughts                     // thoughtsTokenCount (billed as output)
	fGeminiToolPrompt                   // toolUsePromptTokenCount (billed as input)
	numUsageFields
)

// usageFields are the counters seen so far; has tells a 0 that was sent
// from one that was not, which streams need to merge partial updates.
type usageFields struct {
	v   [numUsageFields]int64
	has [numUsageFields]bool
}

func (f *usageFields) set(i usageField, r gjson.Result) {
	if r.Type != gjson.Number {
		return
	}
	n := r.Int()
	if n < 0 {
		n = 0 // a negative count is garbage; never let it reduce a cost
	}
	f.v[i], f.has[i] = n, true
}

// merge overwrites the counters that o carries and keeps the rest: an
// Anthropic message_delta repeats only some of message_start's counts.
func (f *usageFields) merge(o usageFields) {
	for i := range o.has {
		if o.has[i] {
			f.v[i], f.has[i] = o.v[i], true
		}
	}
}

// scanUsage reads a provider "usage" object in one pass over its keys:
// OpenAI's (chat, completions, embeddings, responses), Anthropic's, and the
// other shapes Helicone's usage processors read (packages/cost/usage in
// Helicone/helicone): the camelCase names of Google's OpenAI-compatible
// answers and of Bedrock's Converse API, DeepSeek's cache counts.
func scanUsage(u gjson.Result) usageFields {
	var f usageFields
	f.scanUsage(u)
	return f
}

func (f *usageFields) scanUsage(u gjson.Result) {
	u.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "prompt_tokens", "promptTokens":
			f.set(fPromptTokens, v)
		case "completion_tokens", "completionTokens":
			f.set(fCompletionTokens, v)
		case "total_tokens", "totalTokens":
			f.set(fTotalTokens, v)
		case "input_tokens", "inputTokens":
			f.set(fInputTokens, v)
		case "output_tokens", "outputTokens":
			f.set(fOutputTokens, v)
		case "cache_read_input_tokens", "cacheReadInputTokens":
			f.set(fCacheRead, v)
		case "cache_creation_input_tokens", "cacheWriteInputTokens":
			f.set(fCacheCreation, v)
		case "prompt_cache_hit_tokens":
			f.set(fCacheHit, v)
		case "cachedInputTokens":
			f.set(fCachedTokens, v)
		case "reasoningTokens":
			f.set(fReasoningTokens, v)
		case "prompt_tokens_details", "input_tokens_details":
			if v.IsObject() {
				f.set(fCachedTokens, v.Get("cached_tokens"))
			}
		case "completion_tokens_details", "output_tokens_details":
			if v.IsObject() {
				f.set(fReasoningTokens, v.Get("reasoning_tokens"))
			}
		}
		return true
	})
}

// scanGemini reads Gemini's usageMetadata (generateContent and each event
// of streamGenerateContent, where the counts are running totals).
func (f *usageFields) scanGemini(u gjson.Result) {
	u.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "promptTokenCount":
			f.set(fGeminiPrompt, v)
		case "candidatesTokenCount":
			f.set(fGeminiCandidates, v)
		case "totalTokenCount":
			f.set(fGeminiTotal, v)
		case "cachedContentTokenCount":
			f.set(fGeminiCached, v)
		case "thoughtsTokenCount":
			f.set(fGeminiThoughts, v)
		case "toolUsePromptTokenCount":
			f.set(fGeminiToolPrompt, v)
		}
		return true
	})
}

// gemini reports whether Gemini counts were seen.
func (f *usageFields) gemini() bool {
	for i := fGeminiPrompt; i <= fGeminiToolPrompt; i++ {
		if f.has[i] {
			return true
		}
	}
	return false
}

// normalize turns raw counters into a Usage under the provider's meaning of
// the field names. Anything that is not Anthropic is read as OpenAI, since
// unknown upstreams are OpenAI-compatible ones.
//
// Gemini's counts, wherever they come from, read as Gemini's: the prompt
// includes the cached content, thoughts are output (and reasoning). Counts
// in Anthropic's shape (cache_read_input_tokens, cache_creation_input_tokens:
// Claude through Bedrock or Vertex, logged under another provider's name)
// read as Anthropic's unless OpenAI's prompt_tokens is there too.
func (f *usageFields) normalize(provider string) Usage {
	if f.gemini() {
		u := Usage{
			PromptTokens:     addSat(f.v[fGeminiPrompt], f.v[fGeminiToolPrompt]),
			CompletionTokens: addSat(f.v[fGeminiCandidates], f.v[fGeminiThoughts]),
			CachedTokens:     f.v[fGeminiCached],
			ReasoningTokens:  f.v[fGeminiThoughts],
		}
		if u.PromptTokens == 0 && u.CompletionTokens == 0 {
			u.PromptTokens = f.v[fGeminiTotal]
		}
		return u
	}
	anthropicShape := (f.has[fCacheRead] || f.has[fCacheCreation]) && !f.has[fPromptTokens]
	if provider == Anthropic || anthropicShape {
		read, write := f.v[fCacheRead], f.v[fCacheCreation]
		return Usage{
			PromptTokens:     addSat(addSat(f.v[fInputTokens], read), write),
			CompletionTokens: f.v[fOutputTokens],
			CachedTokens:     read,
			CacheWriteTokens: write,
		}
	}
	u := Usage{
		PromptTokens:     f.pick(fPromptTokens, fInputTokens),
		CompletionTokens: f.pick(fCompletionTokens, fOutputTokens),
		CachedTokens:     f.v[fCachedTokens],
		ReasoningTokens:  f.v[fReasoningTokens],
	}
	if !f.has[fCachedTokens] {
		u.CachedTokens = f.v[fCacheHit]
	}
	if u.PromptTokens == 0 && u.CompletionTokens == 0 {
		u.PromptTokens = f.v[fTotalTokens]
	}
	return u
}

// pick returns the chat-style counter when sent, else the responses-style one.
func (f *usageFields) pick(chat, responses usageField) int64 {
	if f.has[chat] {
		return f.v[chat]
	}
	return f.v[responses]
}

// addSat adds two non-negative counts without wrapping to a negative total.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
