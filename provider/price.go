package provider

import "math"

// Price is what a model costs, in USD per million tokens, and the size of
// its context window.
type Price struct {
	Input       float64 `json:"input"`
	Output      float64 `json:"output"`
	CachedInput float64 `json:"cached_input"` // 0 means same as Input
	CacheWrite  float64 `json:"cache_write"`  // 0 means same as Input

	// Context is the model's context window in tokens, prompt and
	// completion together, as the provider publishes it; 0 means unknown.
	// Helicone-Token-Limit-Exception-Handler measures prompts against it.
	// Cost ignores it.
	Context int `json:"context"`
}

// Cost of a call in USD: (Prompt - Cached - CacheWrite) * Input +
// Cached * CachedInput + CacheWrite * CacheWrite + Completion * Output, all
// divided by 1e6. Reasoning tokens are already part of Completion. The
// uncached input is clamped at 0 (a provider's counts may disagree), negative
// counts count as 0, and the result is never negative.
func (p Price) Cost(u Usage) float64 {
	cached := max(u.CachedTokens, 0)
	write := max(u.CacheWriteTokens, 0)
	uncached := max(u.PromptTokens-cached-write, 0)
	cachedRate, writeRate := p.CachedInput, p.CacheWrite
	if cachedRate == 0 {
		cachedRate = p.Input
	}
	if writeRate == 0 {
		writeRate = p.Input
	}
	c := (float64(uncached)*p.Input +
		float64(cached)*cachedRate +
		float64(write)*writeRate +
		float64(max(u.CompletionTokens, 0))*p.Output) / 1e6
	// Prices given through WithOverrides are not checked, so guard here.
	if !(c > 0) || math.IsInf(c, 0) {
		return 0
	}
	return c
}
