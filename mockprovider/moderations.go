package mockprovider

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// FlagMarker flags a moderation input that contains it (any case): the one
// word a test or demo sends to see a prompt refused under
// Helicone-Moderations-Enabled.
const FlagMarker = "mock-flagged"

// moderationCategories are the categories of OpenAI's moderation models; a
// flagged input is flagged for violence.
var moderationCategories = []string{
	"harassment", "harassment/threatening", "hate", "hate/threatening",
	"illicit", "illicit/violent", "self-harm", "self-harm/instructions",
	"self-harm/intent", "sexual", "sexual/minors", "violence", "violence/graphic",
}

type moderationList struct {
	ID      string             `json:"id"`
	Model   string             `json:"model"`
	Results []moderationResult `json:"results"`
}

type moderationResult struct {
	Flagged        bool               `json:"flagged"`
	Categories     map[string]bool    `json:"categories"`
	CategoryScores map[string]float64 `json:"category_scores"`
}

// moderations answers POST /v1/moderations as OpenAI does: one result per
// input string of an array, one for a string or for the multimodal form
// (an array of text and image_url parts).
func (s *Server) moderations(c *call) {
	input := gjson.GetBytes(c.body, "input")
	var texts []string
	switch {
	case input.Type == gjson.String:
		texts = []string{input.Str}
	case input.IsArray() && input.Get("0.type").Exists():
		var all []string
		input.ForEach(func(_, p gjson.Result) bool {
			all = append(all, p.Get("text").String())
			return true
		})
		texts = []string{strings.Join(all, "\n")}
	case input.IsArray():
		input.ForEach(func(_, v gjson.Result) bool {
			texts = append(texts, v.String())
			return true
		})
	}
	if len(texts) == 0 {
		writeError(c.w, openAI, "", http.StatusBadRequest, "'input' is a required property")
		return
	}
	out := moderationList{ID: "modr-mock" + strconv.FormatUint(c.id, 10), Model: "omni-moderation-latest"}
	if c.model != "" {
		out.Model = c.model
	}
	for _, t := range texts {
		flagged := strings.Contains(strings.ToLower(t), FlagMarker)
		r := moderationResult{Flagged: flagged, Categories: map[string]bool{}, CategoryScores: map[string]float64{}}
		for _, cat := range moderationCategories {
			r.Categories[cat] = flagged && cat == "violence"
			r.CategoryScores[cat] = 0.0001
		}
		if flagged {
			r.CategoryScores["violence"] = 0.97
		}
		out.Results = append(out.Results, r)
	}
	c.writeJSON(out)
}
