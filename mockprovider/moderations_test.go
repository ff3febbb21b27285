package mockprovider_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// TestModerations: POST /v1/moderations answers in OpenAI's shape, one
// result per input string, one for the multimodal form, flagged for
// violence when an input holds the marker.
func TestModerations(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	type result struct {
		Flagged    bool            `json:"flagged"`
		Categories map[string]bool `json:"categories"`
	}
	for _, tc := range []struct {
		body string
		want []bool
	}{
		{`{"input":"hello"}`, []bool{false}},
		{`{"input":"please MOCK-FLAGGED this"}`, []bool{true}},
		{`{"input":["fine","mock-flagged"]}`, []bool{false, true}},
		{`{"input":[{"type":"text","text":"mock-flagged"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}`, []bool{true}},
	} {
		resp, b := do(t, "POST", url+"/v1/moderations", tc.body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d %s", tc.body, resp.StatusCode, b)
		}
		var got struct {
			ID      string   `json:"id"`
			Model   string   `json:"model"`
			Results []result `json:"results"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.ID == "" || got.Model != "omni-moderation-latest" || len(got.Results) != len(tc.want) {
			t.Fatalf("%s: %s", tc.body, b)
		}
		for i, w := range tc.want {
			r := got.Results[i]
			if r.Flagged != w || r.Categories["violence"] != w || len(r.Categories) != 13 {
				t.Errorf("%s: result %d %+v", tc.body, i, r)
			}
		}
	}
	if resp, _ := do(t, "POST", url+"/v1/moderations", `{}`); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("no input: status %d", resp.StatusCode)
	}
}
