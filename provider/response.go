package provider

import (
	"fmt"

	"github.com/tidwall/gjson"
)

// ParseResponse reads a non-streamed JSON response body: usage and the
// response's "model". It covers chat completions, completions, embeddings,
// the responses API, Anthropic messages and count_tokens ({"input_tokens": N}
// gives PromptTokens).
//
// A body without usage (an API error object, a models list, a JSON value
// that is not an object, an empty body) gives a zero Usage and nil error.
// A body that is not JSON returns an error wrapping ErrInvalidJSON.
func ParseResponse(provider string, body []byte) (usage Usage, model string, err error) {
	if isBlank(body) {
		return Usage{}, "", nil
	}
	if why := checkJSON(body); why != "" {
		return Usage{}, "", fmt.Errorf("%w (%s, %d bytes)", ErrInvalidJSON, why, len(body))
	}
	var f, top usageFields
	var modelRes gjson.Result
	gjson.Parse(bytesView(body)).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			modelRes = v
		case "usage":
			if v.IsObject() {
				f = scanUsage(v)
			}
		case "input_tokens":
			// count_tokens (and OpenAI's /v1/responses/input_tokens) answer
			// with a bare count instead of a usage object.
			top.set(fInputTokens, v)
		}
		return true
	})
	top.merge(f)
	return top.normalize(provider), keepString(stringOf(modelRes)), nil
}
