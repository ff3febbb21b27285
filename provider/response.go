package provider

import (
	"fmt"

	"github.com/tidwall/gjson"
)

// ParseResponse reads a non-streamed JSON response body: usage and the
// response's "model". It covers chat completions, completions, embeddings,
// the responses API, Anthropic messages and count_tokens ({"input_tokens": N}
// gives PromptTokens), Gemini's generateContent (usageMetadata, modelVersion)
// and the other shapes Helicone's body processors read: a top-level
// prompt_token_count / generation_token_count (Bedrock's Llama;
// valhalla/jawn/src/lib/shared/bodyProcessors/genericBodyProcessor.ts), and
// a JSON array of Gemini responses (streamGenerateContent without alt=sse;
// googleBodyProcessor.ts there), whose last usage wins.
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
	var f usageFields
	var modelRes gjson.Result
	doc := gjson.Parse(bytesView(body))
	if doc.IsArray() {
		doc.ForEach(func(_, item gjson.Result) bool {
			if item.IsObject() {
				f.merge(responseFields(item, &modelRes))
			}
			return true
		})
	} else {
		f = responseFields(doc, &modelRes)
	}
	return f.normalize(provider), keepString(stringOf(modelRes)), nil
}

// responseFields reads the usage of one response object, and its model
// into *model when it names one.
func responseFields(obj gjson.Result, model *gjson.Result) usageFields {
	var f, top usageFields
	obj.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model", "modelVersion":
			if v.Type == gjson.String && v.Str != "" {
				*model = v
			}
		case "usage":
			if v.IsObject() {
				f.scanUsage(v)
			}
		case "usageMetadata":
			if v.IsObject() {
				f.scanGemini(v)
			}
		case "input_tokens":
			// count_tokens (and OpenAI's /v1/responses/input_tokens) answer
			// with a bare count instead of a usage object.
			top.set(fInputTokens, v)
		case "prompt_token_count":
			top.set(fPromptTokens, v)
		case "generation_token_count":
			top.set(fCompletionTokens, v)
		}
		return true
	})
	top.merge(f)
	return top
}
