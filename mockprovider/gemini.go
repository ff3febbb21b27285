package mockprovider

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// Google's Gemini API (generativelanguage.googleapis.com):
//
//	POST /v1beta/models/{model}:generateContent
//	POST /v1beta/models/{model}:streamGenerateContent?alt=sse  (SSE, one event per word)
//	POST /v1beta/models/{model}:streamGenerateContent          (a JSON array of the same chunks)
//	POST /v1beta/models/{model}:countTokens                    ({"totalTokens": n}, as Google: free, no usageMetadata)
//	POST /v1beta/models/{model}:embedContent, …:batchEmbedContents (bag-of-words vectors, no token counts, as Google)
//	POST /v1beta/openai/chat/completions, …/embeddings        (OpenAI's format)
//
// and the same model methods under /v1/models/ (the stable API).
//
// The model is the path's, the stream the method's. usageMetadata is in
// every chunk, running totals, as Gemini sends it: promptTokenCount
// (cached content included), candidatesTokenCount (thoughts excluded),
// thoughtsTokenCount and cachedContentTokenCount when not zero. The
// x-mock-* reasoning tokens are the thoughts, part of the completion
// tokens the mock reports, as for OpenAI.

type geminiPart struct {
	Text string `json:"text"`
}

type geminiContent struct {
	Parts []geminiPart `json:"parts"`
	Role  string       `json:"role"`
}

type geminiCandidate struct {
	Content      geminiContent `json:"content"`
	FinishReason string        `json:"finishReason,omitempty"`
	Index        int           `json:"index"`
}

type geminiUsage struct {
	PromptTokenCount        int64 `json:"promptTokenCount"`
	CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
	TotalTokenCount         int64 `json:"totalTokenCount"`
	CachedContentTokenCount int64 `json:"cachedContentTokenCount,omitempty"`
	ThoughtsTokenCount      int64 `json:"thoughtsTokenCount,omitempty"`
}

type geminiResponse struct {
	Candidates    []geminiCandidate `json:"candidates"`
	UsageMetadata geminiUsage       `json:"usageMetadata"`
	ModelVersion  string            `json:"modelVersion"`
	ResponseID    string            `json:"responseId"`
}

// geminiEndpoint matches a Gemini path: its endpoint, and the model of a
// generate path ("" for the OpenAI-compatible ones), or nil.
func geminiEndpoint(path string) (*endpoint, string) {
	if rest, ok := strings.CutPrefix(path, "/v1beta/openai/"); ok {
		return findEndpoint("/v1/" + rest), ""
	}
	rest, ok := strings.CutPrefix(path, "/v1beta/models/")
	if !ok {
		if rest, ok = strings.CutPrefix(path, "/v1/models/"); !ok {
			return nil, ""
		}
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return nil, ""
	}
	switch rest[i+1:] {
	case "generateContent":
		return &geminiGenerate, rest[:i]
	case "streamGenerateContent":
		return &geminiStream, rest[:i]
	case "countTokens":
		return &geminiCountTokens, rest[:i]
	case "embedContent":
		return &geminiEmbed, rest[:i]
	case "batchEmbedContents":
		return &geminiBatchEmbed, rest[:i]
	}
	return nil, ""
}

const streamMethod = ":streamGenerateContent"

var (
	geminiGenerate = endpoint{":generateContent", http.MethodPost, gemini, (*Server).generateContent}
	geminiStream   = endpoint{streamMethod, http.MethodPost, gemini, (*Server).generateContent}

	geminiCountTokens = endpoint{":countTokens", http.MethodPost, gemini, (*Server).geminiCountTokens}
	geminiEmbed       = endpoint{":embedContent", http.MethodPost, gemini, (*Server).geminiEmbedContent}
	geminiBatchEmbed  = endpoint{":batchEmbedContents", http.MethodPost, gemini, (*Server).geminiEmbedContent}
)

// geminiError is Google's error shape (google.rpc.Status in JSON).
type geminiError struct {
	Error geminiErrorBody `json:"error"`
}

type geminiErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

func geminiStatus(status int) string {
	switch {
	case status == http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "PERMISSION_DENIED"
	case status == http.StatusNotFound:
		return "NOT_FOUND"
	case status == http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case status == http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	}
	return "INTERNAL"
}

// GeminiPromptTokens is the prompt count the mock reports for a Gemini
// request body (PromptTokens for the others): the words of the text parts
// of contents and systemInstruction, at least 1.
func GeminiPromptTokens(body []byte) int64 {
	var n int64
	count := func(content gjson.Result) {
		content.Get("parts").ForEach(func(_, p gjson.Result) bool {
			n += countWords(p.Get("text").String())
			return true
		})
	}
	gjson.GetBytes(body, "contents").ForEach(func(_, c gjson.Result) bool {
		count(c)
		return true
	})
	count(gjson.GetBytes(body, "systemInstruction"))
	return max(n, 1)
}

func (s *Server) generateContent(c *call) {
	u := c.plan.usage(GeminiPromptTokens(c.body))
	thoughts := min(u.reasoning, u.completion)
	full := geminiUsage{
		PromptTokenCount:        u.prompt,
		CandidatesTokenCount:    u.completion - thoughts,
		TotalTokenCount:         u.prompt + u.completion,
		CachedContentTokenCount: u.cached,
		ThoughtsTokenCount:      thoughts,
	}
	id := "mock-gemini-" + strconv.FormatUint(c.id, 10)
	answer := func(text, finish string, usage geminiUsage) geminiResponse {
		return geminiResponse{
			Candidates:    []geminiCandidate{{Content: geminiContent{Parts: []geminiPart{{Text: text}}, Role: "model"}, FinishReason: finish}},
			UsageMetadata: usage, ModelVersion: c.model, ResponseID: id,
		}
	}
	if !strings.HasSuffix(c.r.URL.Path, streamMethod) {
		c.writeJSON(answer(CompletionText, "STOP", full))
		return
	}
	// One chunk per word, each with the running totals; the last has all
	// of them and the finish reason.
	chunks := make([]geminiResponse, len(replyWords))
	for i, word := range replyWords {
		running := geminiUsage{PromptTokenCount: u.prompt, CandidatesTokenCount: int64(i + 1)}
		running.TotalTokenCount = running.PromptTokenCount + running.CandidatesTokenCount
		chunks[i] = answer(word, "", running)
	}
	chunks[len(chunks)-1] = answer(replyWords[len(replyWords)-1], "STOP", full)
	if c.r.URL.Query().Get("alt") != "sse" {
		c.writeJSON(chunks) // without alt=sse Gemini streams a JSON array
		return
	}
	w := c.startSSE()
	for _, ch := range chunks {
		if w.event("", ch) != nil {
			return
		}
	}
}

// geminiCountTokens answers countTokens as Google does: the prompt's
// count, with no usageMetadata (the call is free).
func (s *Server) geminiCountTokens(c *call) {
	c.writeJSON(map[string]int64{"totalTokens": GeminiPromptTokens(c.body)})
}

type geminiEmbedding struct {
	Values []float32 `json:"values"`
}

// geminiEmbedContent answers embedContent ({"content": …}) with one
// embedding and batchEmbedContents ({"requests": [{"content": …}, …]})
// with one per request, the mock's bag-of-words vectors
// (outputDimensionality honoured); like Google's, the answers carry no
// token counts.
func (s *Server) geminiEmbedContent(c *call) {
	text := func(content gjson.Result) string {
		var b strings.Builder
		content.Get("parts").ForEach(func(_, p gjson.Result) bool {
			b.WriteString(p.Get("text").String())
			b.WriteByte(' ')
			return true
		})
		return b.String()
	}
	embed := func(req gjson.Result) geminiEmbedding {
		dims := int(req.Get("outputDimensionality").Int())
		if dims <= 0 || dims > 4096 {
			dims = defaultDimensions
		}
		return geminiEmbedding{Values: EmbedText(text(req.Get("content")), dims)}
	}
	body := gjson.ParseBytes(c.body)
	if !strings.HasSuffix(c.r.URL.Path, ":batchEmbedContents") {
		c.writeJSON(map[string]geminiEmbedding{"embedding": embed(body)})
		return
	}
	out := []geminiEmbedding{}
	body.Get("requests").ForEach(func(_, r gjson.Result) bool {
		out = append(out, embed(r))
		return true
	})
	c.writeJSON(map[string][]geminiEmbedding{"embeddings": out})
}
