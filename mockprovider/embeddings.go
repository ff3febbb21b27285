package mockprovider

import (
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"math"
	"strings"
	"unicode"

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

// defaultDimensions leaves room for a bag of words: with 256 buckets two
// texts of a dozen content words rarely collide, so similarity means
// something (the semantic cache's tests rely on it).
const defaultDimensions = 256

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
			inputs = append(inputs, inputText(v))
			return true
		})
	} else {
		inputs = []string{inputText(input)}
	}
	data := make([]embedding, len(inputs))
	for i, in := range inputs {
		vec := EmbedText(in, dims)
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

// inputText is a string input's text; a token array embeds by its JSON.
func inputText(v gjson.Result) string {
	if v.Type == gjson.String {
		return v.String()
	}
	return v.Raw
}

// EmbedText embeds text as the mock's embeddings endpoints do (tests'
// in-process embedders use it too, so both agree): a hashed bag of words,
// lower-cased words, stop words dropped, each word adding 1 to the dimension its FNV hash picks,
// the sum L2-normalised. A paraphrase with the same content words scores
// close to 1, a different question low; equal texts embed equally. A text
// with no content word gets a fixed pseudo-random vector of its bytes.
func EmbedText(text string, dims int) []float32 {
	vec := make([]float32, dims)
	words := 0
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if stopWords[w] {
			continue
		}
		h := fnv.New32a()
		_, _ = h.Write([]byte(w))
		vec[h.Sum32()%uint32(dims)]++
		words++
	}
	if words == 0 {
		return noiseVector(text, dims)
	}
	var sum float64
	for _, f := range vec {
		sum += float64(f * f)
	}
	n := float32(math.Sqrt(sum))
	for i := range vec {
		vec[i] /= n
	}
	return vec
}

// stopWords carry no topic: a question asked in other words keeps its
// content words and loses or changes these.
var stopWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`a an the is are was were be been am i me my you your we our it its
		of to in on at for from by with about as into and or but not no do does did can could would
		should will shall may might please tell what which who whom whose how why when where there
		this that these those some any so than then just also give show explain let us user system
		assistant`) {
		stopWords[w] = true
	}
}

// noiseVector derives a stable pseudo-random vector from text.
func noiseVector(text string, dims int) []float32 {
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
