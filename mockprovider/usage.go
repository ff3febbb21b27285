package mockprovider

import (
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// CompletionText is the reply of every completion, message and response.
const CompletionText = "Hello from the Tollgate mock provider. This reply is always the same."

// CompletionTokens is the number of words in CompletionText: the completion
// tokens reported when x-mock-completion-tokens is absent. A test checks the
// two stay in step.
const CompletionTokens = 12

// promptFields are the top-level request fields that carry prompt text in
// the APIs the mock imitates: chat and Anthropic messages, legacy prompts,
// embeddings and Responses input, Anthropic system and Responses
// instructions.
var promptFields = []string{"messages", "prompt", "input", "system", "instructions"}

// PromptTokens is the number of prompt (input) tokens the mock reports for a
// request body: the words (as strings.Fields splits them) of all text in the
// fields messages, prompt, input, system and instructions, at least 1. Text
// is a string value, or — inside arrays and objects — the "content" and
// "text" members, recursively, so chat messages, content parts, Anthropic
// blocks and Responses items all count; roles, types and ids do not. A
// number counts as one token, as in a pre-tokenized prompt or embedding
// input.
func PromptTokens(body []byte) int64 {
	var n int64
	for _, v := range gjson.GetManyBytes(body, promptFields...) {
		n += textTokens(v)
	}
	return max(n, 1)
}

func textTokens(v gjson.Result) int64 {
	switch {
	case v.Type == gjson.String:
		return countWords(v.Str)
	case v.Type == gjson.Number:
		return 1
	case v.IsArray():
		var n int64
		v.ForEach(func(_, el gjson.Result) bool {
			n += textTokens(el)
			return true
		})
		return n
	case v.IsObject():
		return textTokens(v.Get("content")) + textTokens(v.Get("text"))
	}
	return 0
}

// countWords counts like len(strings.Fields(s)) without allocating the
// slice, since it runs on every request of a benchmark.
func countWords(s string) int64 {
	var n int64
	inWord := false
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		i += size
		if unicode.IsSpace(r) {
			inWord = false
		} else if !inWord {
			inWord = true
			n++
		}
	}
	return n
}

// replyWords splits CompletionText into the pieces a stream sends, each
// word with its leading space, so the concatenated deltas equal the text.
var replyWords = splitReply(CompletionText)

func splitReply(s string) []string {
	var words []string
	start := 0
	for i := 1; i < len(s); i++ {
		if s[i] == ' ' && s[i-1] != ' ' {
			words = append(words, s[start:i])
			start = i
		}
	}
	return append(words, s[start:])
}

// usage is what one request reports, before each API shapes it.
type usage struct {
	prompt, completion, cached, cacheWrite, reasoning int64
}
