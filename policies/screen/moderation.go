package screen

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// moderationAnswer is the part of OpenAI's moderation response read here.
type moderationAnswer struct {
	Results []struct {
		Flagged    bool            `json:"flagged"`
		Categories map[string]bool `json:"categories"`
	} `json:"results"`
}

// moderation asks OpenAI's moderation endpoint about in, with the call's
// own key, as Helicone does (managers/ModerationManager.ts: POST
// https://api.openai.com/v1/moderations, {"input": …}, the request's
// headers). Helicone sends all of the request's headers; only the
// credential and the two headers that scope it go here. A prompt is
// flagged when any result is (Helicone reads results[0], the only one for
// a single input).
func (s *Screen) moderation(ctx context.Context, in input, req Request) Result {
	if in.moderation == nil {
		return Result{Check: CheckModeration, Outcome: Skipped}
	}
	return s.run(ctx, CheckModeration, s.moderationTimeout, func(ctx context.Context) (Outcome, string) {
		body, err := json.Marshal(struct {
			Input any `json:"input"`
		}{in.moderation})
		if err != nil {
			return Failed, "encode: " + err.Error()
		}
		hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.moderationURL, bytes.NewReader(body))
		if err != nil {
			return Failed, err.Error()
		}
		hr.Header.Set("Content-Type", "application/json")
		for _, h := range [...][2]string{
			{"Authorization", req.Authorization},
			{"OpenAI-Organization", req.Organization},
			{"OpenAI-Project", req.Project},
		} {
			if h[1] != "" {
				hr.Header.Set(h[0], h[1])
			}
		}
		raw, status, err := s.post(hr)
		if err != nil {
			return Failed, err.Error()
		}
		if status/100 != 2 {
			return Failed, "the moderation endpoint answered " + strconv.Itoa(status)
		}
		var a moderationAnswer
		if err := json.Unmarshal(raw, &a); err != nil || len(a.Results) == 0 {
			return Failed, "the moderation endpoint's answer has no results"
		}
		var flagged []string
		for _, r := range a.Results {
			if !r.Flagged {
				continue
			}
			for c, on := range r.Categories {
				if on {
					flagged = append(flagged, c)
				}
			}
			if len(flagged) == 0 {
				flagged = append(flagged, "flagged")
			}
		}
		if len(flagged) == 0 {
			return Passed, ""
		}
		slices.Sort(flagged)
		flagged = slices.Compact(flagged) // one category of several results
		return Flagged, "categories: " + strings.Join(flagged, ", ")
	})
}

// post sends hr and reads at most maxAnswer bytes of the answer. Errors
// name the configured URL and what went wrong, never a header.
func (s *Screen) post(hr *http.Request) ([]byte, int, error) {
	resp, err := s.client.Do(hr)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, 0, err
	}
	return raw, resp.StatusCode, nil
}
