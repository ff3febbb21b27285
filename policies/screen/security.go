package screen

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// The classifier contract (docs/headers.md, "Moderation and LLM security").
//
// Request: POST <llm-security-url>, Content-Type: application/json,
//
//	{"text": "<the last user message>", "inputs": "<the same>", "advanced": false}
//
// text and advanced are what Helicone posts to its own security service
// (clients/PromptSecurityClient.ts; advanced is
// Helicone-LLM-Security-Advanced); inputs is the same text for a Hugging
// Face text-classification server (Text Embeddings Inference's /predict),
// which serves Meta's Prompt Guard as it is. No header of the call goes.
//
// Answer (2xx), either
//
//	{"data": {"unsafe": true}}                                Helicone's service
//	[{"label": "INJECTION", "score": 0.998}, …]               labels and scores
//	[[{"label": "INJECTION", "score": 0.998}, …]]             the same, batched
//
// A label other than a benign one (BENIGN, SAFE, LABEL_0, any case) with a
// score at or above the threshold flags the prompt. Anything else — another
// status, another body, {"error": …} — is a failed check, and the call goes
// on, as at Helicone.

type securityRequest struct {
	Text     string `json:"text"`
	Inputs   string `json:"inputs"`
	Advanced bool   `json:"advanced"`
}

type labelScore struct {
	Label string  `json:"label"`
	Score float64 `json:"score"`
}

// security asks the classifier about in's text.
func (s *Screen) security(ctx context.Context, in input, advanced bool) Result {
	switch {
	case s.securityURL == "":
		return Result{Check: CheckLLMSecurity, Outcome: Unconfigured}
	case in.text == "":
		return Result{Check: CheckLLMSecurity, Outcome: Skipped}
	}
	return s.run(ctx, CheckLLMSecurity, s.securityTimeout, func(ctx context.Context) (Outcome, string) {
		body, err := json.Marshal(securityRequest{Text: in.text, Inputs: in.text, Advanced: advanced})
		if err != nil {
			return Failed, "encode: " + err.Error()
		}
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.securityURL, bytes.NewReader(body))
		if err != nil {
			return Failed, err.Error()
		}
		hr.Header.Set("Content-Type", "application/json")
		raw, status, err := s.post(hr)
		if err != nil {
			return Failed, err.Error()
		}
		if status/100 != 2 {
			return Failed, "the classifier answered " + strconv.Itoa(status)
		}
		return s.readVerdict(raw)
	})
}

// readVerdict reads one of the answers the contract above allows.
func (s *Screen) readVerdict(raw []byte) (Outcome, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var h struct {
			Data *struct {
				Unsafe *bool `json:"unsafe"`
			} `json:"data"`
			Error any `json:"error"`
		}
		if err := json.Unmarshal(raw, &h); err != nil {
			return Failed, "the classifier's answer is not JSON"
		}
		if h.Error != nil && h.Error != "" {
			return Failed, "the classifier answered an error"
		}
		if h.Data == nil || h.Data.Unsafe == nil {
			return Failed, "the classifier's answer has neither data.unsafe nor labels"
		}
		if *h.Data.Unsafe {
			return Flagged, "unsafe"
		}
		return Passed, ""
	}
	var flat []labelScore
	if err := json.Unmarshal(raw, &flat); err != nil {
		var batched [][]labelScore
		if err := json.Unmarshal(raw, &batched); err != nil || len(batched) == 0 {
			return Failed, "the classifier's answer has neither data.unsafe nor labels"
		}
		flat = batched[0]
	}
	if len(flat) == 0 {
		return Failed, "the classifier's answer has no labels"
	}
	for _, ls := range flat {
		if !benign(ls.Label) && ls.Score >= s.threshold {
			return Flagged, ls.Label + " " + strconv.FormatFloat(ls.Score, 'f', 3, 64)
		}
	}
	return Passed, ""
}

func benign(label string) bool {
	return strings.EqualFold(label, "BENIGN") || strings.EqualFold(label, "SAFE") || strings.EqualFold(label, "LABEL_0")
}
