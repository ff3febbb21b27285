package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/storage/chquery"
)

// heliconeRow is a request as Helicone's query answers it (its
// HeliconeRequest), from Tollgate's columns. Fields Tollgate has no data
// for are null or empty, as Helicone's own are when unset.
type heliconeRow struct {
	ResponseID             *string            `json:"response_id"`
	ResponseCreatedAt      string             `json:"response_created_at"`
	ResponseBody           any                `json:"response_body"`
	ResponseStatus         int32              `json:"response_status"`
	ResponseModel          *string            `json:"response_model"`
	RequestID              string             `json:"request_id"`
	RequestCreatedAt       string             `json:"request_created_at"`
	RequestBody            any                `json:"request_body"`
	RequestPath            string             `json:"request_path"`
	RequestUserID          *string            `json:"request_user_id"`
	RequestProperties      map[string]string  `json:"request_properties"`
	RequestModel           *string            `json:"request_model"`
	ModelOverride          *string            `json:"model_override"`
	HeliconeUser           *string            `json:"helicone_user"`
	Provider               string             `json:"provider"`
	DelayMs                int64              `json:"delay_ms"`
	TimeToFirstToken       int64              `json:"time_to_first_token"`
	TotalTokens            int64              `json:"total_tokens"`
	PromptTokens           int64              `json:"prompt_tokens"`
	CompletionTokens       int64              `json:"completion_tokens"`
	ReasoningTokens        int64              `json:"reasoning_tokens"`
	PromptCacheReadTokens  int64              `json:"prompt_cache_read_tokens"`
	PromptCacheWriteTokens int64              `json:"prompt_cache_write_tokens"`
	PromptID               *string            `json:"prompt_id"`
	PromptVersion          *int32             `json:"prompt_version"`
	FeedbackCreatedAt      *string            `json:"feedback_created_at"`
	FeedbackID             *string            `json:"feedback_id"`
	FeedbackRating         *bool              `json:"feedback_rating"`
	SignedBodyURL          *string            `json:"signed_body_url"`
	LLMSchema              any                `json:"llmSchema"`
	CountryCode            *string            `json:"country_code"`
	AssetIDs               []string           `json:"asset_ids"`
	AssetURLs              map[string]string  `json:"asset_urls"`
	Scores                 map[string]float64 `json:"scores"`
	Properties             map[string]string  `json:"properties"`
	Assets                 []string           `json:"assets"`
	TargetURL              string             `json:"target_url"`
	Model                  string             `json:"model"`
	CacheReferenceID       string             `json:"cache_reference_id"`
	Cost                   float64            `json:"cost"`
	CostUSD                float64            `json:"costUSD"`
}

// helicone's names for things Tollgate keeps elsewhere.
const (
	feedbackScore = "helicone-score-feedback" // the rating, as a 1/0 score
	boolSuffix    = "-hcone-bool"             // a boolean score's key
	noCacheRef    = "00000000-0000-0000-0000-000000000000"
)

// bodiesOmitted stands for the bodies of rows past the answer's body
// budget, in the shape Helicone uses for bodies it does not return.
func bodiesOmitted() map[string]string {
	return map[string]string{"helicone_message": fmt.Sprintf(
		"body omitted: this answer's bodies passed %d bytes; GET /v1/requests/{id} returns them, or ask for fewer rows", maxBodyBudget)}
}

func isoMillis(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// body returns a logged body as JSON when it is JSON (as Helicone returns
// it), else as text.
func body(s string) any {
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	return s
}

func toHeliconeRow(h *chquery.HeliconeRow) heliconeRow {
	r := h.Record
	props := make(map[string]string, len(r.Properties)+3)
	for _, p := range r.Properties {
		props[p.Key] = p.Value
	}
	for k, v := range map[string]string{"Helicone-Session-Id": r.SessionID, "Helicone-Session-Path": r.SessionPath, "Helicone-Session-Name": r.SessionName} {
		if v != "" {
			props[k] = v
		}
	}
	scores := make(map[string]float64, len(h.Scores)+1)
	for _, s := range h.Scores {
		name := s.Name
		if s.Bool {
			name += boolSuffix
		}
		scores[name] = s.Value
	}
	row := heliconeRow{
		ResponseCreatedAt: isoMillis(r.CreatedAt.Add(time.Duration(r.LatencyMs) * time.Millisecond)),
		ResponseBody:      body(r.ResponseBody),
		ResponseStatus:    r.Status,
		ResponseModel:     nullable(r.ResponseModel),
		RequestID:         r.RequestID,
		RequestCreatedAt:  isoMillis(r.CreatedAt),
		RequestBody:       body(r.RequestBody),
		RequestPath:       r.Path,
		RequestUserID:     nullable(r.UserID),
		RequestProperties: props,
		RequestModel:      nullable(r.Model),
		ModelOverride:     nullable(r.ModelOverride),
		Provider:          strings.ToUpper(r.Provider),
		DelayMs:           r.LatencyMs,
		TimeToFirstToken:  r.TTFTMs,
		TotalTokens:       r.PromptTokens + r.CompletionTokens,
		PromptTokens:      r.PromptTokens, CompletionTokens: r.CompletionTokens, ReasoningTokens: r.ReasoningTokens,
		PromptCacheReadTokens: r.CachedTokens, PromptCacheWriteTokens: r.CacheWriteTokens,
		PromptID:         nullable(r.PromptID),
		AssetIDs:         []string{},
		AssetURLs:        map[string]string{},
		Scores:           scores,
		Properties:       props,
		Assets:           []string{},
		TargetURL:        r.TargetURL,
		Model:            r.Model,
		CacheReferenceID: r.CacheReferenceID,
		Cost:             r.CostUSD,
		CostUSD:          r.CostUSD,
	}
	if r.PromptID != "" {
		v := r.PromptVersion
		row.PromptVersion = &v
	}
	if h.BodiesOmitted {
		row.RequestBody, row.ResponseBody = bodiesOmitted(), bodiesOmitted()
	}
	if row.CacheReferenceID == "" {
		row.CacheReferenceID = noCacheRef
	}
	if h.Rating != nil {
		at := isoMillis(h.RatedAt)
		row.FeedbackRating, row.FeedbackCreatedAt = h.Rating, &at
		scores[feedbackScore] = 0
		if *h.Rating {
			scores[feedbackScore] = 1
		}
	}
	return row
}
