package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies/prompt"
	"github.com/tollgate-dev/tollgate/storage/memstore"
)

// newPromptAPI serves a library over an in-process store, with one prompt
// ("faq") defined by a file.
func newPromptAPI(t *testing.T, o Options) http.Handler {
	t.Helper()
	dir := t.TempDir()
	faq := "id: faq\nversions:\n  - version: 1\n    model: gpt-4o-mini\n    messages: [{role: user, content: \"What is {{topic}}?\"}]\n"
	if err := os.WriteFile(filepath.Join(dir, "faq.yaml"), []byte(faq), 0o644); err != nil {
		t.Fatal(err)
	}
	store := memstore.NewPromptStore(memstore.PromptOptions{Now: fixedClock(t0)})
	lib, err := prompt.NewLibrary(prompt.LibraryOptions{Store: store, Dir: dir, PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lib.Close() })
	if o.Prompts == nil {
		o.Prompts = lib
	}
	return New(o)
}

type publishedJSON struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
}

func publishPrompt(t *testing.T, h http.Handler, id, body string) publishedJSON {
	t.Helper()
	rr := do(t, h, "POST", "/v1/prompts/"+id+"/versions", local, nil, body, nil)
	if rr.Code != http.StatusCreated {
		t.Fatalf("publish %s: %d %s", id, rr.Code, rr.Body)
	}
	var out publishedJSON
	if err := json.Unmarshal(rr.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPromptPublishAndRead(t *testing.T) {
	h := newPromptAPI(t, Options{})
	first := `{"model": "gpt-4o", "messages": [{"role": "system", "content": "You work for {{company}}."}, {"role": "user", "content": "{{question}}"}]}`
	if got := publishPrompt(t, h, "support", first); got != (publishedJSON{"support", 1}) {
		t.Fatalf("got %+v", got)
	}
	second := `{"messages": [{"role": "user", "content": [{"type": "text", "text": "{{q}}"}]}], "system": "Be brief.", "model": null}`
	if got := publishPrompt(t, h, "support", second); got.Version != 2 {
		t.Fatalf("got %+v", got)
	}

	var list struct {
		ID       string              `json:"id"`
		Versions []promptVersionJSON `json:"versions"`
	}
	if rr := do(t, h, "GET", "/v1/prompts/support", local, nil, "", &list); rr.Code != http.StatusOK {
		t.Fatalf("list: %d %s", rr.Code, rr.Body)
	}
	if list.ID != "support" || len(list.Versions) != 2 {
		t.Fatalf("list %+v", list)
	}
	v1, v2 := list.Versions[0], list.Versions[1]
	if v1.Version != 1 || v1.Model != "gpt-4o" || v1.Source != "api" || v1.CreatedAt == nil || !v1.CreatedAt.Equal(t0) ||
		string(v1.Messages) != `[{"role":"system","content":"You work for {{company}}."},{"role":"user","content":"{{question}}"}]` ||
		strings.Join(v1.Variables, ",") != "company,question" || v1.System != nil || v1.ID != "" {
		t.Fatalf("v1 %+v", v1)
	}
	if v2.Version != 2 || v2.Model != "" || string(v2.System) != `"Be brief."` {
		t.Fatalf("v2 %+v", v2)
	}

	for target, want := range map[string]int{"/v1/prompts/support/versions/1": 1, "/v1/prompts/support/versions/latest": 2, "/v1/prompts/support/versions/2": 2} {
		var one promptVersionJSON
		if rr := do(t, h, "GET", target, local, nil, "", &one); rr.Code != http.StatusOK || one.ID != "support" || one.Version != want {
			t.Fatalf("%s: %d %s", target, rr.Code, rr.Body)
		}
	}
}

func TestPromptFileVersionsThroughTheAPI(t *testing.T) {
	h := newPromptAPI(t, Options{})
	var list struct {
		Versions []map[string]any `json:"versions"`
	}
	if rr := do(t, h, "GET", "/v1/prompts/faq", local, nil, "", &list); rr.Code != http.StatusOK || len(list.Versions) != 1 {
		t.Fatalf("list: %d %s", rr.Code, rr.Body)
	}
	v := list.Versions[0]
	if v["source"] != "file" || v["file"] != "faq.yaml" || v["model"] != "gpt-4o-mini" || v["created_at"] != nil {
		t.Fatalf("file version %v", v)
	}
	rr := do(t, h, "POST", "/v1/prompts/faq/versions", local, nil, `{"messages":[{"role":"user","content":"x"}]}`, nil)
	if rr.Code != http.StatusConflict || !strings.Contains(errorMessage(t, rr), "faq.yaml") {
		t.Fatalf("publish to a file prompt: %d %s", rr.Code, rr.Body)
	}
}

func TestPromptPublishValidation(t *testing.T) {
	h := newPromptAPI(t, Options{})
	tests := []struct {
		id, body, field string
	}{
		{"p", `not json`, "body"},
		{"p", `[1]`, "body"},
		{"p", `{}`, "messages"},
		{"p", `{"messages": null}`, "messages"},
		{"p", `{"messages": []}`, "messages"},
		{"p", `{"messages": "hi"}`, "messages"},
		{"p", `{"messages": {"role": "user"}}`, "messages"},
		{"p", `{"messages": [{"role": "user"}, "hi"]}`, "messages[1]"},
		{"p", `{"model": 42, "messages": [{}]}`, "model"},
		{"p", `{"model": ["a"], "messages": [{}]}`, "model"},
		{"p", `{"messages": [{}], "system": {"a": 1}}`, "system"},
		{"p", `{"messages": [{}], "temperature": 0.2}`, "temperature"},
		{"a%20b", `{"messages": [{}]}`, "id"},
		{strings.Repeat("x", 129), `{"messages": [{}]}`, "id"},
	}
	for _, tc := range tests {
		rr := do(t, h, "POST", "/v1/prompts/"+tc.id+"/versions", local, nil, tc.body, nil)
		if rr.Code != http.StatusBadRequest || !strings.HasPrefix(errorMessage(t, rr), tc.field+" ") && !strings.HasPrefix(errorMessage(t, rr), tc.field+":") {
			t.Errorf("%s %s: %d %s, want 400 naming %s", tc.id, tc.body, rr.Code, rr.Body, tc.field)
		}
	}
	// Nothing was published.
	if rr := do(t, h, "GET", "/v1/prompts/p", local, nil, "", nil); rr.Code != http.StatusNotFound {
		t.Fatalf("after bad publishes: %d %s", rr.Code, rr.Body)
	}
}

func TestPromptReadErrors(t *testing.T) {
	h := newPromptAPI(t, Options{})
	publishPrompt(t, h, "p", `{"messages":[{"role":"user","content":"x"}]}`)
	tests := []struct {
		target string
		status int
		msg    string
	}{
		{"/v1/prompts/nope", 404, `prompt "nope" not found`},
		{"/v1/prompts/nope/versions/1", 404, `prompt "nope" version 1 not found`},
		{"/v1/prompts/p/versions/2", 404, `prompt "p" version 2 not found`},
		{"/v1/prompts/faq/versions/2", 404, `prompt "faq" version 2 not found`},
		{"/v1/prompts/p/versions/0", 400, "version: "},
		{"/v1/prompts/p/versions/x", 400, "version: "},
		{"/v1/prompts/a%20b", 400, "id: has ' '"},
	}
	for _, tc := range tests {
		rr := do(t, h, "GET", tc.target, local, nil, "", nil)
		if rr.Code != tc.status || !strings.Contains(errorMessage(t, rr), tc.msg) {
			t.Errorf("%s: %d %s, want %d %q", tc.target, rr.Code, rr.Body, tc.status, tc.msg)
		}
	}
}

func TestPromptsNotConfigured(t *testing.T) {
	h := New(Options{})
	for _, r := range []struct{ method, target, body string }{
		{"POST", "/v1/prompts/p/versions", `{"messages":[{}]}`},
		{"GET", "/v1/prompts/p", ""},
		{"GET", "/v1/prompts/p/versions/1", ""},
	} {
		rr := do(t, h, r.method, r.target, local, nil, r.body, nil)
		if rr.Code != http.StatusServiceUnavailable || errorMessage(t, rr) != "prompts are not configured" {
			t.Errorf("%s %s: %d %s", r.method, r.target, rr.Code, rr.Body)
		}
	}
}

func TestPromptRoutesNeedTheAPIKey(t *testing.T) {
	open := newPromptAPI(t, Options{})
	if rr := do(t, open, "GET", "/v1/prompts/faq", "10.0.0.7:5000", nil, "", nil); rr.Code != http.StatusForbidden {
		t.Fatalf("remote client without an API key configured: %d", rr.Code)
	}
	keyed := newPromptAPI(t, Options{APIKey: "s3cret"})
	body := `{"messages":[{"role":"user","content":"x"}]}`
	if rr := do(t, keyed, "POST", "/v1/prompts/p/versions", "10.0.0.7:5000", nil, body, nil); rr.Code != http.StatusUnauthorized {
		t.Fatalf("no key: %d", rr.Code)
	}
	if rr := do(t, keyed, "POST", "/v1/prompts/p/versions", "10.0.0.7:5000", map[string]string{"Authorization": "Bearer wrong"}, body, nil); rr.Code != http.StatusUnauthorized {
		t.Fatalf("wrong key: %d", rr.Code)
	}
	if rr := do(t, keyed, "POST", "/v1/prompts/p/versions", "10.0.0.7:5000", map[string]string{"Authorization": "Bearer s3cret"}, body, nil); rr.Code != http.StatusCreated {
		t.Fatalf("right key: %d %s", rr.Code, rr.Body)
	}
}

// brokenPromptStore fails like an unreachable Redis.
type brokenPromptStore struct{}

var errPromptStoreDown = errors.New("redis: connection refused")

func (brokenPromptStore) PublishPrompt(context.Context, string, prompt.Template) (prompt.Version, error) {
	return prompt.Version{}, errPromptStoreDown
}
func (brokenPromptStore) PromptVersion(context.Context, string, int) (prompt.Version, error) {
	return prompt.Version{}, errPromptStoreDown
}
func (brokenPromptStore) PromptVersions(context.Context, string) ([]prompt.Version, error) {
	return nil, errPromptStoreDown
}

func TestPromptStoreDown(t *testing.T) {
	lib, err := prompt.NewLibrary(prompt.LibraryOptions{Store: brokenPromptStore{}, LatestTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h := New(Options{Prompts: lib})
	for _, r := range []struct{ method, target, body string }{
		{"POST", "/v1/prompts/p/versions", `{"messages":[{}]}`},
		{"GET", "/v1/prompts/p", ""},
		{"GET", "/v1/prompts/p/versions/latest", ""},
	} {
		rr := do(t, h, r.method, r.target, local, nil, r.body, nil)
		if rr.Code != http.StatusServiceUnavailable || strings.Contains(rr.Body.String(), "connection refused") {
			t.Errorf("%s %s: %d %s", r.method, r.target, rr.Code, rr.Body)
		}
	}
}

// A version made from some tenant's calls is that tenant's: a version
// marked seen in the published store (made before seen versions were kept
// per tenant) is neither listed nor shown.
func TestPromptSeenVersionIsNotShown(t *testing.T) {
	store := memstore.NewPromptStore(memstore.PromptOptions{Now: fixedClock(t0)})
	tpl := prompt.Template{Seen: true, Messages: json.RawMessage(`[{"role":"user","content":"About <helicone-prompt-input key=\"hero\" />"}]`)}
	if _, err := store.PublishPrompt(context.Background(), "story", tpl); err != nil {
		t.Fatal(err)
	}
	lib, err := prompt.NewLibrary(prompt.LibraryOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lib.Close() })
	h := New(Options{Prompts: lib})
	for _, target := range []string{"/v1/prompts/story/versions/1", "/v1/prompts/story/versions/latest", "/v1/prompts/story"} {
		if rr := do(t, h, "GET", target, local, nil, "", nil); rr.Code != http.StatusNotFound || strings.Contains(rr.Body.String(), "hero") {
			t.Errorf("%s: %d %s", target, rr.Code, rr.Body)
		}
	}
}

// Helicone's prompt SDKs (HeliconePromptManager, packages/prompts/
// HeliconePromptManager.ts and helicone-helpers' Python twin) ask the
// query routes for a version, read {"data": {…, s3_url}} and fetch the
// body from s3_url with no credentials (fetch(s3Url) / requests.get).
func TestHeliconePromptSDKRoutes(t *testing.T) {
	h := newPromptAPI(t, Options{PromptLinkSecret: "shared by the replicas"})
	publishPrompt(t, h, "support", `{"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "You help {{hc:company:string}}."}]}`)
	publishPrompt(t, h, "support", `{"model": "gpt-4o", "messages": [{"role": "system", "content": "v2 {{hc:company:string}}"}]}`)

	type answer struct {
		Data *struct {
			ID           string `json:"id"`
			Model        string `json:"model"`
			PromptID     string `json:"prompt_id"`
			MajorVersion int    `json:"major_version"`
			Environment  string `json:"environment"`
			CreatedAt    string `json:"created_at"`
			S3URL        string `json:"s3_url"`
		} `json:"data"`
		Error *string `json:"error"`
	}
	var prod answer
	rr := do(t, h, "POST", "/v1/prompt-2025/query/production-version", local, nil, `{"promptId": "support"}`, &prod)
	if rr.Code != 200 || prod.Error != nil || prod.Data == nil || prod.Data.ID != "support@2" || prod.Data.PromptID != "support" ||
		prod.Data.MajorVersion != 2 || prod.Data.Model != "gpt-4o" || prod.Data.CreatedAt == "" {
		t.Fatalf("production version: %d %s", rr.Code, rr.Body)
	}
	var env answer
	do(t, h, "POST", "/v1/prompt-2025/query/environment-version", local, nil, `{"promptId": "support", "environment": "staging"}`, &env)
	if env.Data == nil || env.Data.MajorVersion != 2 || env.Data.Environment != "staging" {
		t.Errorf("environment version: %+v", env.Data)
	}
	var byID answer
	do(t, h, "POST", "/v1/prompt-2025/query/version", local, nil, `{"promptVersionId": "support@1"}`, &byID)
	if byID.Data == nil || byID.Data.MajorVersion != 1 || byID.Data.Model != "gpt-4o-mini" {
		t.Fatalf("version by id: %+v", byID.Data)
	}

	// The link works from anywhere, without credentials, until it expires.
	u, err := url.Parse(byID.Data.S3URL)
	if err != nil || u.Host != "localhost:8080" {
		t.Fatalf("s3_url %q", byID.Data.S3URL)
	}
	var got map[string]json.RawMessage
	rr = do(t, h, "GET", u.RequestURI(), "203.0.113.9:5000", nil, "", &got)
	if rr.Code != 200 || string(got["model"]) != `"gpt-4o-mini"` || string(got["messages"]) != `[{"role":"system","content":"You help {{hc:company:string}}."}]` {
		t.Fatalf("body: %d %s", rr.Code, rr.Body)
	}
	forged := strings.Replace(u.RequestURI(), "/support/1", "/support/2", 1)
	if rr := do(t, h, "GET", forged, "203.0.113.9:5000", nil, "", nil); rr.Code == 200 {
		t.Errorf("a link signed for version 1 served version 2")
	}

	rr = do(t, h, "POST", "/v1/prompt-2025/query/production-version", local, nil, `{"promptId": "nope"}`, nil)
	if rr.Code != 404 || !strings.HasPrefix(rr.Body.String(), `{"data":null,"error":"prompt \"nope\" not found"}`) {
		t.Errorf("unknown prompt: %d %s", rr.Code, rr.Body)
	}
	if rr := do(t, h, "POST", "/v1/prompt-2025/query/production-version", "203.0.113.9:5000", nil, `{"promptId": "support"}`, nil); rr.Code != 403 {
		t.Errorf("remote caller without a key: %d", rr.Code)
	}
}
