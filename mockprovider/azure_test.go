package mockprovider_test

import (
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// Azure OpenAI paths as Helicone's Azure guide sends them
// (docs/integrations/azure/curl.mdx): the deployment in the path,
// api-version in the query.
func TestAzurePaths(t *testing.T) {
	_, url := start(t, mockprovider.Options{})
	for _, tc := range []struct {
		path, body    string
		status        int
		object, model string
	}{
		{"/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21", `{"messages":[{"role":"user","content":"hi"}]}`, 200, "chat.completion", "gpt-4o-mini"},
		{"/openai/deployments/prod/chat/completions?api-version=2024-10-21", `{"model":"gpt-4o","messages":[]}`, 200, "chat.completion", "gpt-4o"},
		{"/openai/deployments/prod/completions?api-version=2024-10-21", `{"prompt":"hi"}`, 200, "text_completion", "prod"},
		{"/openai/deployments/emb/embeddings?api-version=2024-10-21", `{"input":"hi"}`, 200, "list", "emb"},
		{"/openai/responses?api-version=2025-04-01-preview", `{"model":"prod","input":"hi"}`, 200, "response", "prod"},
		{"/openai/deployments/prod/chat/completions", `{"messages":[]}`, 404, "", ""},
		{"/openai/deployments/prod/images/generations?api-version=1", `{}`, 404, "", ""},
	} {
		resp, body := do(t, "POST", url+tc.path, tc.body)
		wantStatus(t, resp, body, tc.status)
		if tc.status != 200 {
			continue
		}
		if got := gjson.GetBytes(body, "object").String(); got != tc.object {
			t.Errorf("%s: object %q, want %q", tc.path, got, tc.object)
		}
		if got := gjson.GetBytes(body, "model").String(); got != tc.model {
			t.Errorf("%s: model %q, want %q", tc.path, got, tc.model)
		}
	}
}
