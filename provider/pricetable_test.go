package provider

import (
	"strings"
	"sync"
	"testing"
)

func TestDefaultPricesCoverModels(t *testing.T) {
	want := map[string][]string{
		OpenAI: {"gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini",
			"o1", "o1-mini", "o3", "o3-mini", "o4-mini", "gpt-4-turbo", "gpt-4", "gpt-3.5-turbo",
			"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"},
		Anthropic: {"claude-opus-4-1", "claude-opus-4", "claude-sonnet-4-5", "claude-sonnet-4", "claude-3-7-sonnet",
			"claude-3-5-sonnet", "claude-3-5-haiku", "claude-haiku-4-5", "claude-3-opus", "claude-3-haiku"},
	}
	table := DefaultPrices()
	for prov, models := range want {
		for _, m := range models {
			p, ok := table.byProvider[prov][m]
			if !ok {
				t.Errorf("%s/%s missing from prices.yaml", prov, m)
				continue
			}
			if p.Input <= 0 {
				t.Errorf("%s/%s has no input price", prov, m)
			}
			if p.Output <= 0 && !strings.HasPrefix(m, "text-embedding") {
				t.Errorf("%s/%s has no output price", prov, m)
			}
			if p.Context < 4096 {
				t.Errorf("%s/%s has no context window (%d)", prov, m, p.Context)
			}
		}
	}
	if DefaultPrices() != table {
		t.Error("DefaultPrices should return the same table every call")
	}
}

func TestLookup(t *testing.T) {
	table := DefaultPrices()
	price := func(prov, model string) Price { return table.byProvider[prov][model] }
	tests := []struct {
		provider, model string
		want            Price
		ok              bool
	}{
		{OpenAI, "gpt-4o", price(OpenAI, "gpt-4o"), true},
		{OpenAI, "GPT-4o", price(OpenAI, "gpt-4o"), true},
		{OpenAI, " gpt-4o ", price(OpenAI, "gpt-4o"), true},
		{OpenAI, "gpt-4o-mini-2024-07-18", price(OpenAI, "gpt-4o-mini"), true},
		{OpenAI, "gpt-4o-2024-08-06", price(OpenAI, "gpt-4o"), true},
		{OpenAI, "gpt-4o-2024-05-13", Price{Input: 5, Output: 15, Context: 128000}, true}, // listed snapshot keeps its own price
		{OpenAI, "gpt-4.1-nano-2025-04-14", price(OpenAI, "gpt-4.1-nano"), true},
		{OpenAI, "gpt-5-mini-2025-08-07", price(OpenAI, "gpt-5-mini"), true},
		{OpenAI, "o3-mini-2025-01-31", price(OpenAI, "o3-mini"), true},
		{OpenAI, "o3-2025-04-16", price(OpenAI, "o3"), true},
		{OpenAI, "gpt-3.5-turbo-0125", price(OpenAI, "gpt-3.5-turbo"), true},
		{OpenAI, "gpt-4-0613", price(OpenAI, "gpt-4"), true},
		{OpenAI, "gpt-4-turbo-2024-04-09", price(OpenAI, "gpt-4-turbo"), true},
		{OpenAI, "gpt-5-chat-latest", price(OpenAI, "gpt-5"), true},
		{OpenAI, "gpt-4o-mini-search-preview-2025-03-11", price(OpenAI, "gpt-4o-mini"), true},
		{OpenAI, "chatgpt-4o-latest", Price{Input: 5, Output: 15, Context: 128000}, true},
		{OpenAI, "models/gpt-4o", price(OpenAI, "gpt-4o"), true},
		{"", "openai/gpt-4.1-mini", price(OpenAI, "gpt-4.1-mini"), true},
		{OpenAI, "text-embedding-3-small", price(OpenAI, "text-embedding-3-small"), true},
		{Anthropic, "claude-3-5-sonnet-20241022", price(Anthropic, "claude-3-5-sonnet"), true},
		{Anthropic, "claude-3-5-sonnet-latest", price(Anthropic, "claude-3-5-sonnet"), true},
		{Anthropic, "claude-sonnet-4-5-20250929", price(Anthropic, "claude-sonnet-4-5"), true},
		{Anthropic, "claude-sonnet-4-5", price(Anthropic, "claude-sonnet-4-5"), true},
		{Anthropic, "claude-opus-4-1-20250805", price(Anthropic, "claude-opus-4-1"), true},
		{Anthropic, "claude-opus-4-20250514", price(Anthropic, "claude-opus-4"), true},
		{Anthropic, "claude-sonnet-4-0", price(Anthropic, "claude-sonnet-4"), true},
		{Anthropic, "claude-3-haiku-20240307", price(Anthropic, "claude-3-haiku"), true},
		{Anthropic, "claude-3-5-sonnet-v2@20241022", price(Anthropic, "claude-3-5-sonnet"), true},
		{"", "claude-haiku-4-5-20251001", price(Anthropic, "claude-haiku-4-5"), true},
		{OpenAI, "claude-3-7-sonnet-20250219", price(Anthropic, "claude-3-7-sonnet"), true}, // wrong provider: search all
		{"azure", "gpt-4o", price(OpenAI, "gpt-4o"), true},                                  // unknown provider: search all
		{OpenAI, "gpt-4.5-preview", Price{}, false},                                         // '.' is not a '-' boundary
		{OpenAI, "my-finetune", Price{}, false},
		{Anthropic, "", Price{}, false},
		{"", "llama-3.1-70b-instruct", Price{}, false},
	}
	for _, tt := range tests {
		got, ok := table.Lookup(tt.provider, tt.model)
		if ok != tt.ok || got != tt.want {
			t.Errorf("Lookup(%q, %q) = %+v, %v; want %+v, %v", tt.provider, tt.model, got, ok, tt.want, tt.ok)
		}
	}
	var nilTable *PriceTable
	if _, ok := nilTable.Lookup(OpenAI, "gpt-4o"); ok {
		t.Error("nil table found a price")
	}
}

func TestStripVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"gpt-4o-2024-08-06", "gpt-4o"},
		{"claude-3-5-sonnet-20241022", "claude-3-5-sonnet"},
		{"claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet-v2"},
		{"claude-3-7-sonnet-latest", "claude-3-7-sonnet"},
		{"gpt-4-0613", "gpt-4-0613"},
		{"gpt-4o-2024-8-06", "gpt-4o-2024-8-06"},
		{"-2024-08-06", "-2024-08-06"}, // nothing would be left
		{"x-2024x08-06", "x-2024x08-06"},
		{"20241022", "20241022"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := StripVersion(tt.in); got != tt.want {
			t.Errorf("StripVersion(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWithOverrides(t *testing.T) {
	base := DefaultPrices()
	custom := Price{Input: 1, Output: 2}
	over := base.WithOverrides(map[string]map[string]Price{
		"OpenAI": {"GPT-4o": custom, "ft:gpt-4o-mini:acme": {Input: 0.3, Output: 1.2}},
		"local":  {"llama-3.1-70b": {Input: 0.1, Output: 0.1}},
	})
	tests := []struct {
		table           *PriceTable
		provider, model string
		want            Price
		ok              bool
	}{
		{over, OpenAI, "gpt-4o-2024-08-06", Price{Input: 1, Output: 2, Context: 128000}, true},            // the override keeps the context window
		{base, OpenAI, "gpt-4o", Price{Input: 2.5, Output: 10, CachedInput: 1.25, Context: 128000}, true}, // original untouched
		{over, OpenAI, "ft:gpt-4o-mini:acme", Price{Input: 0.3, Output: 1.2}, true},
		{over, "", "llama-3.1-70b", Price{Input: 0.1, Output: 0.1}, true},
		{over, "local", "llama-3.1-70b-instruct", Price{Input: 0.1, Output: 0.1}, true},
		{base, "", "llama-3.1-70b", Price{}, false},
		{over, Anthropic, "claude-3-haiku", base.byProvider[Anthropic]["claude-3-haiku"], true},
	}
	for _, tt := range tests {
		got, ok := tt.table.Lookup(tt.provider, tt.model)
		if ok != tt.ok || got != tt.want {
			t.Errorf("Lookup(%q, %q) = %+v, %v; want %+v, %v", tt.provider, tt.model, got, ok, tt.want, tt.ok)
		}
	}
}

// Tables are shared by every request goroutine; run with -race.
func TestPriceTableConcurrentUse(t *testing.T) {
	table := DefaultPrices()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				if _, ok := table.Lookup("", "gpt-4o-mini-2024-07-18"); !ok {
					t.Error("lookup failed")
				}
				_ = table.WithOverrides(map[string]map[string]Price{"x": {"m": {Input: float64(i)}}})
			}
		})
	}
	wg.Wait()
}

func TestLoadPrices(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		want    map[string]map[string]Price
		wantErr []string // substrings that must all appear
	}{
		{name: "context window", doc: "openai:\n  gpt-4o: {input: 2.5, output: 10, context: 128000}\n",
			want: map[string]map[string]Price{"openai": {"gpt-4o": {Input: 2.5, Output: 10, Context: 128000}}}},
		{name: "negative context", doc: "openai:\n  gpt-4o: {input: 2.5, context: -1}\n",
			wantErr: []string{"openai/gpt-4o", `"context" is negative`}},
		{name: "fractional context", doc: "openai:\n  gpt-4o: {input: 2.5, context: 1.5}\n",
			wantErr: []string{"openai/gpt-4o", "context"}},
		{name: "flow and block style", doc: "openai:\n  gpt-4o: {input: 2.5, output: 10, cached_input: 1.25}\nanthropic:\n  claude-3-haiku:\n    input: 0.25\n    output: 1.25\n    cache_write: 0.3\n",
			want: map[string]map[string]Price{
				"openai":    {"gpt-4o": {Input: 2.5, Output: 10, CachedInput: 1.25}},
				"anthropic": {"claude-3-haiku": {Input: 0.25, Output: 1.25, CacheWrite: 0.3}},
			}},
		{name: "empty document", doc: "", want: map[string]map[string]Price{}},
		{name: "comments only", doc: "# nothing yet\n", want: map[string]map[string]Price{}},
		{name: "provider without models", doc: "openai:\n", want: map[string]map[string]Price{}},
		{name: "unknown field", doc: "openai:\n  gpt-4o: {input: 2.5, outptu: 10}\n",
			wantErr: []string{"openai/gpt-4o", `unknown field "outptu"`}},
		{name: "wrong type", doc: "openai:\n  gpt-4o: {input: cheap}\n",
			wantErr: []string{"openai/gpt-4o", "input"}},
		{name: "negative", doc: "anthropic:\n  claude-3-opus: {input: 15, output: -75}\n",
			wantErr: []string{"anthropic/claude-3-opus", `"output" is negative`}},
		{name: "empty entry", doc: "openai:\n  gpt-4o:\n", wantErr: []string{"openai/gpt-4o", "no price given"}},
		{name: "every error reported", doc: "openai:\n  a: {inptu: 1}\n  b: {input: -1}\n",
			wantErr: []string{"openai/a", "openai/b"}},
		{name: "case-insensitive duplicate", doc: "openai:\n  gpt-4o: {input: 1}\n  GPT-4o: {input: 2}\n",
			wantErr: []string{"listed twice"}},
		{name: "not a mapping", doc: "- gpt-4o\n", wantErr: []string{"must map provider names"}},
		{name: "models not a mapping", doc: "openai: [gpt-4o]\n", wantErr: []string{"openai: must map model names"}},
		{name: "bad yaml", doc: "openai: {gpt-4o: [\n", wantErr: []string{"prices:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadPrices([]byte(tt.doc))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, got %v", got)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for prov, models := range tt.want {
				for m, p := range models {
					if got[prov][m] != p {
						t.Errorf("%s/%s = %+v, want %+v", prov, m, got[prov][m], p)
					}
				}
			}
		})
	}
}

// Every model the embedded table lists has a context window, and an
// override keeps, replaces or adds one.
func TestContext(t *testing.T) {
	for prov, models := range DefaultPrices().byProvider {
		for name, p := range models {
			if p.Context <= 0 {
				t.Errorf("%s/%s: no context window in prices.yaml", prov, name)
			}
		}
	}
	over := DefaultPrices().WithOverrides(map[string]map[string]Price{
		OpenAI:  {"gpt-4o": {Input: 1, Output: 2}, "gpt-4o-mini": {Input: 1, Output: 2, Context: 1000}},
		"local": {"llama-3.1-8b": {Input: 0.1, Output: 0.1, Context: 131072}, "tiny": {Input: 1}},
	})
	tests := []struct {
		table           *PriceTable
		provider, model string
		want            int
		ok              bool
	}{
		{DefaultPrices(), OpenAI, "gpt-4o-2024-08-06", 128000, true},
		{DefaultPrices(), OpenAI, "gpt-4.1-mini", 1047576, true},
		{DefaultPrices(), Anthropic, "claude-sonnet-4-5-20250929", 200000, true},
		{DefaultPrices(), "", "gpt-3.5-turbo-0125", 16385, true},
		{DefaultPrices(), OpenAI, "my-finetune", 0, false},
		{over, OpenAI, "gpt-4o", 128000, true},               // kept
		{over, OpenAI, "gpt-4o-mini-2024-07-18", 1000, true}, // replaced
		{over, "local", "llama-3.1-8b-instruct", 131072, true},
		{over, "local", "tiny", 0, false}, // priced, window unknown
	}
	for _, tt := range tests {
		got, ok := tt.table.Context(tt.provider, tt.model)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Context(%q, %q) = %d, %v; want %d, %v", tt.provider, tt.model, got, ok, tt.want, tt.ok)
		}
	}
	var nilTable *PriceTable
	if _, ok := nilTable.Context(OpenAI, "gpt-4o"); ok {
		t.Error("nil table found a context window")
	}
}
