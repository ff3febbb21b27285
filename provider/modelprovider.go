package provider

import "strings"

// Which provider a bare model name belongs to, for a fallback entry that
// names only a model ("claude-sonnet-4-5") and so must be sent to the
// provider that serves it. Only OpenAI and Anthropic are told apart: they
// are the two formats a fallback can be translated between.

// familyPrefixes are the model families of each provider, for names the
// price table does not list (a new snapshot, a model released after the
// table). A prefix matches the whole name or the name followed by "-", so
// "o3" matches "o3-mini" but not "o3x".
var familyPrefixes = []struct{ prefix, provider string }{
	{"claude", Anthropic},
	{"gpt", OpenAI},
	{"chatgpt", OpenAI},
	{"o1", OpenAI},
	{"o3", OpenAI},
	{"o4", OpenAI},
	{"text-embedding", OpenAI},
}

// ModelProvider is the provider (OpenAI or Anthropic) that serves model, or
// "" when the name says nothing certain. The table decides first: a name it
// lists under exactly one of the two providers (ignoring case, as Lookup
// does) belongs to that one. Otherwise the family prefixes decide. The
// answer depends only on the name and the table, never on the request.
func (t *PriceTable) ModelProvider(model string) string {
	name := strings.ToLower(strings.TrimSpace(model))
	if name == "" {
		return ""
	}
	if t != nil {
		_, inOpenAI := t.byProvider[OpenAI][name]
		_, inAnthropic := t.byProvider[Anthropic][name]
		switch {
		case inOpenAI && !inAnthropic:
			return OpenAI
		case inAnthropic && !inOpenAI:
			return Anthropic
		}
	}
	for _, f := range familyPrefixes {
		if name == f.prefix || strings.HasPrefix(name, f.prefix+"-") {
			return f.provider
		}
	}
	return ""
}
