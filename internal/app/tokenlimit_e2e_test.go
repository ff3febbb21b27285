package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"
)

// startDevSmallWindows runs `tollgate dev` with a price file that gives
// gpt-4o a 400-token window and claude-3-haiku a 600-token one, so that a
// prompt of a few hundred words is over them; gpt-4o-mini keeps its own.
func startDevSmallWindows(t *testing.T) *devInstance {
	t.Helper()
	prices := filepath.Join(t.TempDir(), "prices.yaml")
	doc := "openai:\n  gpt-4o: {input: 2.5, output: 10, context: 400}\n" +
		"anthropic:\n  claude-3-haiku: {input: 0.25, output: 1.25, context: 600}\n"
	if err := os.WriteFile(prices, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return startDev(t, "--prices-file", prices)
}

// sent returns the body the mock provider got for the last call.
func sent(t *testing.T, d *devInstance) string {
	t.Helper()
	got := d.mock.Received()
	if len(got) == 0 {
		t.Fatal("the provider got nothing")
	}
	return string(got[len(got)-1].Body)
}

func phrase(word string, n int) string { return strings.TrimSpace(strings.Repeat(word+" ", n)) }

// Helicone-Token-Limit-Exception-Handler through the local data plane: what
// the provider receives under each mode, against Helicone's own expected
// results (worker/test/token-limit-exception/tokenLimitException.spec.ts,
// on worker/src/lib/util/tokenLimitException.ts).
func TestDevTokenLimitExceptionHandler(t *testing.T) {
	d := startDevSmallWindows(t)
	ids := map[string]string{}
	do := func(name, path, mode, body string) (status int, warning string) {
		t.Helper()
		ids[name] = uuid.NewString()
		h := map[string]string{"Helicone-Request-Id": ids[name]}
		if mode != "" {
			h["Helicone-Token-Limit-Exception-Handler"] = mode
		}
		resp, _ := call{path: path, body: body, headers: h}.do(t, d)
		return resp.StatusCode, resp.Header.Get("Helicone-Warning")
	}

	// truncate: "should normalize and truncate message content" and
	// "should actually truncate content when exceeding token limit" —
	// spaces collapsed, the long text cut and marked with "...". The
	// limit is the window less max_tokens: 400 - 100.
	long := phrase("tollgate", 600)
	if st, _ := do("truncate", "/v1/chat/completions", "truncate",
		`{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"system","content":"You   are   terse ."},{"role":"user","content":"`+long+`"}]}`); st != 200 {
		t.Fatalf("truncate: status %d", st)
	}
	body := sent(t, d)
	if !gjson.Valid(body) || gjson.Get(body, "messages.#").Int() != 2 || gjson.Get(body, "max_tokens").Int() != 100 {
		t.Fatalf("truncate: the provider got %s", body)
	}
	if got := gjson.Get(body, "messages.0.content").String(); got != "You are terse." {
		t.Errorf("truncate: system %q, want it normalized", got)
	}
	user := gjson.Get(body, "messages.1.content").String()
	if !strings.HasPrefix(user, "tollgate tollgate") || !strings.HasSuffix(user, "...") || strings.Count(user, "tollgate") > 300 {
		t.Errorf("truncate: user content %q: want its start, cut to fit 300 tokens, marked", user)
	}

	// middle-out: "should trim messages to fit within token limit" — the
	// start and the end of the prompt stay; its middle goes. An Anthropic
	// body, estimated at four characters a token (Claude's tokenizer is
	// not public): a limit of 600 - 200.
	mid := phrase("head", 100) + " " + phrase("middle", 700) + " " + phrase("tail", 100)
	if st, _ := do("middle-out", "/v1/messages", "middle-out",
		`{"model":"claude-3-haiku-20240307","max_tokens":200,"system":"Answer in one line.","messages":[{"role":"user","content":[{"type":"text","text":"`+mid+`"}]}]}`); st != 200 {
		t.Fatalf("middle-out: status %d", st)
	}
	body = sent(t, d)
	text := gjson.Get(body, "messages.0.content.0.text").String()
	if gjson.Get(body, "system").String() != "Answer in one line." || !strings.HasPrefix(text, "head head") ||
		!strings.HasSuffix(text, "tail tail") || !strings.Contains(text, "...") || len(text) > 400*4 {
		t.Errorf("middle-out: the provider got %s", body)
	}

	// fallback: "should switch to fallback model when tokens exceed
	// limit" and "should keep primary model when tokens are within
	// limit" — the body's model is a list, first primary, second fallback.
	if st, _ := do("fallback", "/v1/chat/completions", "fallback",
		`{"model":"gpt-4o,gpt-4o-mini","messages":[{"role":"user","content":"`+long+`"}]}`); st != 200 {
		t.Fatalf("fallback: status %d", st)
	}
	if body = sent(t, d); gjson.Get(body, "model").String() != "gpt-4o-mini" || gjson.Get(body, "messages.0.content").String() != long {
		t.Errorf("fallback: the provider got model %q and a changed prompt", gjson.Get(body, "model"))
	}
	if st, _ := do("fallback within", "/v1/chat/completions", "fallback",
		`{"model":"gpt-4o, gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`); st != 200 {
		t.Fatalf("fallback within: status %d", st)
	}
	if m := gjson.Get(sent(t, d), "model").String(); m != "gpt-4o" {
		t.Errorf("fallback within the limit: model %q, want the first of the list", m)
	}

	// A vision call: Helicone counts only string contents, so a large
	// photo cannot push a short question over the window. Tollgate counts
	// the image as 85 tokens, not its base64: the question is not cut to
	// "...", and fallback keeps the first model.
	photo := strings.Repeat("/9j/4AAQSkZJRgABAQ", 200<<10/18)
	for mode, model := range map[string]string{"truncate": "gpt-4o", "fallback": "gpt-4o,gpt-4o-mini"} {
		vision := `{"model":"` + model + `","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"What is in this photo?"},` +
			`{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,` + photo + `"}}]}]}`
		if st, _ := do("vision "+mode, "/v1/chat/completions", mode, vision); st != 200 {
			t.Fatalf("vision %s: status %d", mode, st)
		}
		body := sent(t, d)
		if m := gjson.Get(body, "model").String(); m != "gpt-4o" {
			t.Errorf("vision %s: model %q sent", mode, m)
		}
		if q := gjson.Get(body, "messages.0.content.0.text").String(); q != "What is in this photo?" {
			t.Errorf("vision %s: question %q sent", mode, q)
		}
		if !strings.Contains(gjson.Get(body, "messages.0.content.1.image_url.url").String(), photo) {
			t.Errorf("vision %s: the photo changed", mode)
		}
	}

	// An unknown value: Helicone's switch has no case for it and sends the
	// body as is; Tollgate says so in Helicone-Warning.
	plain := `{"model":"gpt-4o","messages":[{"role":"user","content":"` + long + `"}]}`
	if st, w := do("unknown", "/v1/chat/completions", "summarize", plain); st != 200 || !strings.Contains(w, "Helicone-Token-Limit-Exception-Handler") {
		t.Fatalf("unknown value: status %d, warning %q", st, w)
	}
	if sent(t, d) != plain {
		t.Error("unknown value: the body changed")
	}

	recs := d.records(t)
	for name, want := range map[string]map[string]string{
		"truncate":        {"tollgate-token-limit": "truncated", "tollgate-token-limit-limit": "300", "tollgate-token-limit-model": "gpt-4o"},
		"middle-out":      {"tollgate-token-limit": "middle-out", "tollgate-token-limit-limit": "400"},
		"fallback":        {"tollgate-token-limit": "fallback", "tollgate-token-limit-model": "gpt-4o"},
		"fallback within": {"tollgate-token-limit": "fits"},
		"vision truncate": {"tollgate-token-limit": "fits"},
		"vision fallback": {"tollgate-token-limit": "fits"},
	} {
		r := recs[ids[name]]
		if r == nil {
			t.Fatalf("%s: no record", name)
		}
		got := map[string]string{}
		for _, p := range r.Properties {
			got[p.Key] = p.Value
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: property %s = %q, want %q", name, k, got[k], v)
			}
		}
		if name == "fallback" && r.Model != "gpt-4o-mini" {
			t.Errorf("fallback: logged as %q, want the model sent", r.Model)
		}
		if name == "truncate" && !strings.HasSuffix(gjson.Get(r.RequestBody, "messages.1.content").String(), "...") {
			t.Error("truncate: the log holds the body as the client sent it, not as the provider got it")
		}
	}
}
