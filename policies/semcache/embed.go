package semcache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
)

// Embedder turns a prompt's text into a vector.
type Embedder interface {
	Embed(ctx context.Context, text string) ([]float32, error)
}

// HTTPEmbedder calls an OpenAI-compatible POST {BaseURL}/v1/embeddings
// with its own credential: never the client's, which belongs to the
// provider the call goes to.
type HTTPEmbedder struct {
	BaseURL string // e.g. https://api.openai.com; "/v1/embeddings" is appended
	Model   string // e.g. text-embedding-3-small
	APIKey  string // sent as Authorization: Bearer; never logged
	// Dimensions, when above 0, is sent as "dimensions": the vector
	// length asked of models that can shorten theirs (text-embedding-3-*).
	Dimensions int
	Client     *http.Client
}

// maxEmbeddingResponse bounds what is read of the endpoint's answer.
const maxEmbeddingResponse = 4 << 20

// Embed returns the unit vector of text. Errors never contain the key.
func (e *HTTPEmbedder) Embed(ctx context.Context, text string) ([]float32, error) {
	req := map[string]any{"model": e.Model, "input": text, "encoding_format": "float"}
	if e.Dimensions > 0 {
		req["dimensions"] = e.Dimensions
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	url := strings.TrimRight(e.BaseURL, "/") + "/v1/embeddings"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("embeddings: %w", err)
	}
	hreq.Header.Set("content-type", "application/json")
	if e.APIKey != "" {
		hreq.Header.Set("authorization", "Bearer "+e.APIKey)
	}
	c := e.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("embeddings: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxEmbeddingResponse))
	if err != nil {
		return nil, fmt.Errorf("embeddings: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("embeddings: status %d", resp.StatusCode)
	}
	var out struct {
		Data []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("embeddings: %w", err)
	}
	if len(out.Data) == 0 || len(out.Data[0].Embedding) == 0 {
		return nil, errors.New("embeddings: no vector in the answer")
	}
	v := out.Data[0].Embedding
	if !normalize(v) {
		return nil, errors.New("embeddings: a zero or non-finite vector")
	}
	return v, nil
}

// normalize scales v to unit length in place, so that a dot product is a
// cosine; false for a zero or non-finite vector.
func normalize(v []float32) bool {
	var sum float64
	for _, f := range v {
		sum += float64(f) * float64(f)
	}
	n := math.Sqrt(sum)
	if n == 0 || math.IsNaN(n) || math.IsInf(n, 0) {
		return false
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / n)
	}
	return true
}
