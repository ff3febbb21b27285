// Package tokens counts a prompt's tokens the way a model's tokenizer
// does, and cuts text at token boundaries. OpenAI's models use the byte-pair
// encodings their tokenizers are built on (o200k_base, cl100k_base; the
// ranks are compiled into the binary, nothing is downloaded); a model with
// no public tokenizer (Claude, Gemini, open models) is estimated at four
// characters a token, Helicone's default estimate.
//
// The encodings are large (a vocabulary of 100,000 to 200,000 entries): each
// is built on first use, once, and shared by every request; a process that
// never counts never builds one.
package tokens

import (
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer/codec"
)

// Chat overhead, as OpenAI documents it for its chat models (the cookbook's
// "How to count tokens with tiktoken"): each message costs PerMessage
// tokens besides its content (the role and the separators), a message's
// name PerName more, and every reply is primed with ReplyPriming tokens.
const (
	PerMessage   = 3
	PerName      = 1
	ReplyPriming = 3
)

// PerMediaPart is what an image, audio or file part of a prompt counts,
// whatever its size: 85 tokens, what OpenAI bills an image at "detail":
// "low" (platform.openai.com/docs/guides/images-vision, "Calculating
// costs"), the least any image costs there. Providers bill media by what
// it holds (an image's size or tiles, audio's seconds, a PDF's pages), not
// by its base64 length, which would count a 4 MB photo as a million tokens
// and let a large image cut a vision call's question. The true cost is
// higher for a large image: a lower bound, not a price. Helicone counts
// media as nothing (estimateTokenCount reads only string contents and
// the tools).
const PerMediaPart = 85

// Counter counts text in one model's tokens. Implementations are safe for
// concurrent use.
type Counter interface {
	// Name says how the count is made: an encoding's name, or
	// "estimate" for four characters a token.
	Name() string
	// Exact is true for a model's own tokenizer, false for an estimate.
	Exact() bool
	// Count is the number of tokens of s.
	Count(s string) int
	// Ends is the byte offset in s at which each of its tokens ends, in
	// order (len(Ends(s)) == Count(s)): what Head and Tail cut at.
	Ends(s string) []int
}

// ForModel returns the counter for a model name as a request gives it
// ("gpt-4o-mini-2024-07-18", "openai/gpt-4.1", "claude-sonnet-4-5"),
// ignoring case. OpenAI's current families (GPT-4o, GPT-4.1, GPT-4.5,
// GPT-5, the o-series, gpt-oss) use o200k_base, its older chat and
// embedding models cl100k_base, as OpenAI's tiktoken maps them; any other
// model is estimated.
func ForModel(model string) Counter {
	m := strings.ToLower(strings.TrimSpace(model))
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	m = strings.TrimPrefix(m, "ft:")
	switch {
	case hasAnyPrefix(m, "gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "gpt-oss", "codex"):
		return o200k()
	case hasAnyPrefix(m, "gpt-4", "gpt-3.5", "gpt-35", "text-embedding-", "davinci-002", "babbage-002"):
		return cl100k()
	}
	return Estimate
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// O200k and Cl100k return the shared encodings, building them on first use.
func O200k() Counter  { return o200k() }
func Cl100k() Counter { return cl100k() }

var (
	o200k  = sync.OnceValue(func() *bpe { return &bpe{c: codec.NewO200kBase()} })
	cl100k = sync.OnceValue(func() *bpe { return &bpe{c: codec.NewCl100kBase()} })
)

// bpe is an OpenAI byte-pair encoding. Its codec is only read after
// construction (the vocabulary, a compiled split pattern), so one serves
// every goroutine.
type bpe struct{ c *codec.Codec }

func (b *bpe) Name() string { return b.c.GetName() }
func (b *bpe) Exact() bool  { return true }

func (b *bpe) Count(s string) int {
	n, err := b.c.Count(s)
	if err != nil {
		// Only the split pattern can fail (a match timeout, none is set):
		// an estimate is better than no count.
		return Estimate.Count(s)
	}
	return n
}

// Ends sums the tokens' lengths: each token is a run of s's bytes, in
// order.
func (b *bpe) Ends(s string) []int {
	_, toks, err := b.c.Encode(s)
	if err != nil {
		return Estimate.Ends(s)
	}
	ends := make([]int, len(toks))
	end := 0
	for i, t := range toks {
		end += len(t)
		ends[i] = end
	}
	return ends
}

// Head is the longest prefix of s of at most n of its tokens (ends is
// Ends(s)), and Tail the longest suffix; neither splits a UTF-8 sequence,
// which a byte-level token can end inside.
func Head(s string, ends []int, n int) string {
	if n <= 0 {
		return ""
	}
	if n >= len(ends) {
		return s
	}
	end := ends[n-1]
	for end > 0 && end < len(s) && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end]
}

func Tail(s string, ends []int, n int) string {
	if n <= 0 {
		return ""
	}
	if n >= len(ends) {
		return s
	}
	start := ends[len(ends)-n-1]
	for start < len(s) && !utf8.RuneStart(s[start]) {
		start++
	}
	return s[start:]
}

// Estimate counts four characters a token, rounded up: Helicone's default
// (worker/src/lib/util/tokenLimitException.ts, DEFAULT_TOKEN_HEURISTIC =
// 0.25 tokens a character), which it uses for every model but gpt-3.5-turbo
// (MODEL_TOKEN_HEURISTICS: 0.2, five characters a token). Tollgate uses it
// for models whose tokenizer is not public, and for any model past the
// size it counts exactly (policies/tokenlimit) — gpt-3.5-turbo included:
// its cl100k_base averages about four characters a token on English, so
// five would undercount and let a prompt through that the model refuses.
// Characters are Unicode code points (JavaScript's length counts UTF-16
// units; the two differ only outside the Basic Multilingual Plane).
var Estimate Counter = estimate{}

type estimate struct{}

const charsPerToken = 4

func (estimate) Name() string { return "estimate" }
func (estimate) Exact() bool  { return false }

func (estimate) Count(s string) int {
	return (utf8.RuneCountInString(s) + charsPerToken - 1) / charsPerToken
}

func (estimate) Ends(s string) []int {
	ends := make([]int, 0, (len(s)+charsPerToken-1)/charsPerToken)
	n := 0
	for i := range s {
		if n > 0 && n%charsPerToken == 0 {
			ends = append(ends, i)
		}
		n++
	}
	if n > 0 {
		ends = append(ends, len(s))
	}
	return ends
}
