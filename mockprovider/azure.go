package mockprovider

import (
	"net/http"
	"strings"
)

// Azure OpenAI's data-plane paths, answered like OpenAI's:
//
//	POST /openai/deployments/{deployment}/chat/completions?api-version=…
//	POST /openai/deployments/{deployment}/completions?api-version=…
//	POST /openai/deployments/{deployment}/embeddings?api-version=…
//	POST /openai/responses?api-version=…
//
// (/openai/v1/… matches the OpenAI suffixes already.) A body without a
// model is answered with the deployment's name as the model, the way a
// deployment named after its model answers; a path without api-version
// gets Azure's 404.

// azureEndpoint matches an Azure path: its endpoint and deployment ("" for
// /openai/responses), or nil.
func azureEndpoint(path string) (*endpoint, string) {
	if path == "/openai/responses" {
		return findEndpoint("/v1/responses"), ""
	}
	rest, ok := strings.CutPrefix(path, "/openai/deployments/")
	if !ok {
		return nil, ""
	}
	deployment, op, ok := strings.Cut(rest, "/")
	if !ok || deployment == "" {
		return nil, ""
	}
	switch op {
	case "chat/completions", "completions", "embeddings":
		return findEndpoint("/v1/" + op), deployment
	}
	return nil, ""
}

// azureVersionMissing answers a request on an Azure path without
// api-version as Azure does, and reports whether it did.
func azureVersionMissing(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Query().Get("api-version") != "" {
		return false
	}
	writeError(w, openAI, "", http.StatusNotFound, "Resource not found")
	return true
}
