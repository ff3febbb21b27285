package provider

import (
	"math"
	"testing"
)

func TestPriceCost(t *testing.T) {
	gpt4o := Price{Input: 2.50, Output: 10.00, CachedInput: 1.25}
	sonnet := Price{Input: 3.00, Output: 15.00, CachedInput: 0.30, CacheWrite: 3.75}
	tests := []struct {
		name  string
		price Price
		usage Usage
		want  float64
	}{
		{"zero usage", gpt4o, Usage{}, 0},
		{"plain", gpt4o, Usage{PromptTokens: 1_000_000, CompletionTokens: 1_000_000}, 12.50},
		{"openai cached", gpt4o, Usage{PromptTokens: 2000, CachedTokens: 1500, CompletionTokens: 100},
			(500*2.50 + 1500*1.25 + 100*10.00) / 1e6},
		{"reasoning is inside completion", gpt4o, Usage{CompletionTokens: 1000, ReasoningTokens: 800}, 1000 * 10.00 / 1e6},
		{"anthropic cache read and write", sonnet, Usage{PromptTokens: 25 + 3000 + 1200, CachedTokens: 3000, CacheWriteTokens: 1200, CompletionTokens: 15},
			(25*3.00 + 3000*0.30 + 1200*3.75 + 15*15.00) / 1e6},
		{"zero cached and write rates fall back to input", Price{Input: 1, Output: 2}, Usage{PromptTokens: 30, CachedTokens: 10, CacheWriteTokens: 10, CompletionTokens: 5},
			(30*1 + 5*2) / 1e6},
		{"uncached clamped at zero", gpt4o, Usage{PromptTokens: 10, CachedTokens: 100},
			100 * 1.25 / 1e6},
		{"negative counts count as zero", gpt4o, Usage{PromptTokens: -10, CompletionTokens: -5, CachedTokens: -3}, 0},
		{"negative price never gives negative cost", Price{Input: -1, Output: -1}, Usage{PromptTokens: 100, CompletionTokens: 100}, 0},
		{"NaN price gives zero", Price{Input: math.NaN()}, Usage{PromptTokens: 100}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.price.Cost(tt.usage)
			if math.Abs(got-tt.want) > 1e-12 {
				t.Fatalf("Cost = %.12f, want %.12f", got, tt.want)
			}
		})
	}
}
