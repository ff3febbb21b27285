package mockprovider

import (
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"math"

	"github.com/tidwall/gjson"
)

type embeddingList struct {
	Object string          `json:"object"`
	Data   []embedding     `json:"data"`
	Model  string          `json:"model"`
	Usage  embeddingsUsage `json:"usage"`
}

type embedding struct {
	Object string `json:"object"`
	Index  int    `json:"index"`
	// Embedding is []float32, or a base64 string of little-endian float32s
	// when the request asks for encoding_format "base64" — which the
	// official OpenAI SDKs do by default.
	Embedding any `json:"embedding"`
}

type embeddingsUsage struct {
	PromptTokens int64 `json:"prompt_tokens"`
	TotalTokens  int64 `json:"total_tokens"`
}

// defaultDimensions keeps vectors small: callers test plumbing, not
// similarity.
const defaultDimensions = 8

func (s *Server) embeddings(c *call) {
	req := gjson.ParseBytes(c.body)
	dims := int(req.Get("dimensions").Int())
	if dims <= 0 || dims > 4096 {
		dims = defaultDimensions
	}
	asBase64 := req.Get("encoding_format").String() == "base64"
	var inputs []string
	input := req.Get("input")
	if input.IsArray() && !isTokenArray(input) {
		input.ForEach(func(_, v gjson.Result) bool {
			inputs = append(inputs, v.Raw)
			return true
		})
	} else {
		inputs = []string{input.Raw}
	}
	data := make([]embedding, len(inputs))
	for i, in := range inputs {
		vec := vectorFor(in, dims)
		data[i] = embedding{Object: "embedding", Index: i, Embedding: vec}
		if asBase64 {
			data[i].Embedding = encodeFloats(vec)
		}
	}
	p := PromptTokens(c.body)
	c.writeJSON(embeddingList{
		Object: "list", Data: data, Model: c.model,
		Usage: embeddingsUsage{PromptTokens: p, TotalTokens: p},
	})
}

// isTokenArray tells one pre-tokenized input ([1, 2, 3]) from a batch.
func isTokenArray(v gjson.Result) bool {
	first := v.Get("0")
	return first.Exists() && first.Type == gjson.Number
}

// vectorFor derives a unit-free but stable vector from the input text, so
// equal inputs embed equally and different ones (almost surely) differ.
func vectorFor(text string, dims int) []float32 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(text))
	x := h.Sum64() | 1
	vec := make([]float32, dims)
	for i := range vec {
		// xorshift64: cheap, deterministic, good enough to look random.
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		vec[i] = float32(int32(x>>32)) / math.MaxInt32
	}
	return vec
}

func encodeFloats(vec []float32) string {
	b := make([]byte, 4*len(vec))
	for i, f := range vec {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}
