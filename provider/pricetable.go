package provider

import (
	_ "embed"
	"maps"
	"slices"
	"strings"
	"sync"
)

//go:embed prices.yaml
var pricesYAML []byte

// PriceTable maps provider and model names to prices. It is immutable after
// construction and safe for concurrent use.
type PriceTable struct {
	byProvider map[string]map[string]Price // lower-cased provider -> lower-cased model
	all        map[string]Price            // every provider's models, for lookups without one
}

var defaultPrices = sync.OnceValue(func() *PriceTable {
	m, err := LoadPrices(pricesYAML)
	if err != nil {
		// The file ships inside the binary and a test parses it, so this
		// only fires on a build from an edited, untested prices.yaml.
		panic("provider: embedded prices.yaml: " + err.Error())
	}
	return NewPriceTable(m)
})

// DefaultPrices returns the table embedded from prices.yaml. Every call
// returns the same table.
func DefaultPrices() *PriceTable { return defaultPrices() }

// NewPriceTable builds a table from provider -> model -> price (as returned
// by LoadPrices). Names are matched ignoring case. The map is copied.
func NewPriceTable(prices map[string]map[string]Price) *PriceTable {
	return (&PriceTable{}).WithOverrides(prices)
}

// WithOverrides returns a new table with the given entries added or
// replacing existing ones (provider -> model -> price). An entry replaces
// the whole price, except that one without a Context keeps the replaced
// entry's. t is not changed.
func (t *PriceTable) WithOverrides(over map[string]map[string]Price) *PriceTable {
	n := &PriceTable{byProvider: map[string]map[string]Price{}, all: map[string]Price{}}
	if t != nil {
		for prov, models := range t.byProvider {
			n.byProvider[prov] = maps.Clone(models)
		}
	}
	for prov, models := range over {
		prov = strings.ToLower(prov)
		m := n.byProvider[prov]
		if m == nil {
			m = make(map[string]Price, len(models))
			n.byProvider[prov] = m
		}
		for name, p := range models {
			name = strings.ToLower(name)
			// An override that gives no context window keeps the one it
			// replaces: a price file written before the field existed
			// must not turn the token-limit handler off for its models.
			if p.Context == 0 {
				p.Context = m[name].Context
			}
			m[name] = p
		}
	}
	// A name listed under several providers resolves, when no provider
	// narrows the search, to the alphabetically first provider: any fixed
	// order would do, this one needs no configuration.
	for _, prov := range slices.Sorted(maps.Keys(n.byProvider)) {
		for name, p := range n.byProvider[prov] {
			if _, taken := n.all[name]; !taken {
				n.all[name] = p
			}
		}
	}
	return n
}

// Lookup finds the price for a model, ignoring case. It tries, in order:
// the exact name; the name after its last '/' ("models/gpt-4o",
// "openai/gpt-4o"); that name without a date suffix (-YYYY-MM-DD,
// -YYYYMMDD, @YYYYMMDD) or "-latest"; then the longest listed prefix of it
// that ends at a '-' ("gpt-4o-mini-search-preview" -> "gpt-4o-mini").
// A dated snapshot that is listed itself keeps its own price.
//
// The search is first within provider, then, if provider is empty or
// unknown or the model is not found under it, across all providers. A
// leading "provider/" in the model name stands in for an empty provider.
func (t *PriceTable) Lookup(provider, model string) (Price, bool) {
	if t == nil {
		return Price{}, false
	}
	name := strings.ToLower(strings.TrimSpace(model))
	if name == "" {
		return Price{}, false
	}
	provider = strings.ToLower(provider)
	base := name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		base = name[i+1:]
		if first, _, _ := strings.Cut(name, "/"); provider == "" && t.byProvider[first] != nil {
			provider = first
		}
	}
	if m := t.byProvider[provider]; m != nil {
		if p, ok := findPrice(m, name, base); ok {
			return p, true
		}
	}
	return findPrice(t.all, name, base)
}

func findPrice(m map[string]Price, name, base string) (Price, bool) {
	if p, ok := m[name]; ok {
		return p, true
	}
	if p, ok := m[base]; ok {
		return p, true
	}
	s := StripVersion(base)
	if p, ok := m[s]; ok {
		return p, true
	}
	// Scanning dashes from the right finds the longest prefix first.
	for i := len(s) - 1; i > 0; i-- {
		if s[i] == '-' {
			if p, ok := m[s[:i]]; ok {
				return p, true
			}
		}
	}
	return Price{}, false
}

// StripVersion removes a snapshot suffix: "-2024-07-18", "-20241022",
// Vertex AI's "@20241022", or "-latest". The egress allow-list strips the
// same way, so that allowing a model allows its dated snapshots.
func StripVersion(s string) string {
	if base, ok := strings.CutSuffix(s, "-latest"); ok {
		return base
	}
	n := len(s)
	if n > 11 && s[n-11] == '-' && s[n-6] == '-' && s[n-3] == '-' &&
		allDigits(s[n-10:n-6]) && allDigits(s[n-5:n-3]) && allDigits(s[n-2:]) {
		return s[:n-11]
	}
	if n > 9 && (s[n-9] == '-' || s[n-9] == '@') && allDigits(s[n-8:]) {
		return s[:n-9]
	}
	return s
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// CallCost prices a call: the first of models that has a price wins (the
// response's model first, since a dated snapshot may be listed itself, then
// the requested one). A call without tokens costs 0; priced is false when
// it had tokens but no model had a price (callers count that, never fail).
func (t *PriceTable) CallCost(provider string, u Usage, models ...string) (cost float64, priced bool) {
	if u.PromptTokens == 0 && u.CompletionTokens == 0 {
		return 0, true
	}
	for _, model := range models {
		if model == "" {
			continue
		}
		if price, ok := t.Lookup(provider, model); ok {
			return price.Cost(u), true
		}
	}
	return 0, false
}

// Context returns a model's context window in tokens, found as Lookup
// finds its price; ok is false when the model is unknown or its entry
// gives no window.
func (t *PriceTable) Context(provider, model string) (tokens int, ok bool) {
	p, found := t.Lookup(provider, model)
	if !found || p.Context <= 0 {
		return 0, false
	}
	return p.Context, true
}
