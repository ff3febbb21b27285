package translate

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"
)

// TestUnsupportedFields: what one side cannot do is refused before any call,
// with the field named so the client's 400 says what to drop.
func TestUnsupportedFields(t *testing.T) {
	const user = `"messages":[{"role":"user","content":"hi"}]`
	oa := []struct{ body, field string }{
		{`{"model":"m",` + user + `,"n":2}`, "n"},
		{`{"model":"m",` + user + `,"logprobs":true}`, "logprobs"},
		{`{"model":"m",` + user + `,"top_logprobs":3}`, "top_logprobs"},
		{`{"model":"m",` + user + `,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}}`, "response_format"},
		{`{"model":"m",` + user + `,"response_format":{"type":"json_object"}}`, "response_format"},
		{`{"model":"m",` + user + `,"frequency_penalty":0.5}`, "frequency_penalty"},
		{`{"model":"m",` + user + `,"presence_penalty":-1}`, "presence_penalty"},
		{`{"model":"m",` + user + `,"logit_bias":{"50256":-100}}`, "logit_bias"},
		{`{"model":"m",` + user + `,"audio":{"voice":"alloy","format":"wav"}}`, "audio"},
		{`{"model":"m",` + user + `,"modalities":["text","audio"]}`, "modalities"},
		{`{"model":"m",` + user + `,"reasoning_effort":"high"}`, "reasoning_effort"},
		{`{"model":"m",` + user + `,"prediction":{"type":"content","content":"x"}}`, "prediction"},
		{`{"model":"m",` + user + `,"web_search_options":{}}`, "web_search_options"},
		{`{"model":"m",` + user + `,"functions":[{"name":"f"}]}`, "functions"},
		{`{"model":"m",` + user + `,"temperature":1.5}`, "temperature"},
		{`{"model":"m",` + user + `,"max_tokens":-1}`, "max_tokens"},
		{`{"model":"m",` + user + `,"max_completion_tokens":0}`, "max_completion_tokens"},
		{`{"model":"m",` + user + `,"tools":[{"type":"custom","custom":{"name":"x"}}]}`, "tools[0].custom"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}`, "messages[0].content[0].input_audio"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`, "messages[0].content[0].file"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AAAA"}}]}]}`, "messages[0].content[0].image_url.url"},
		{`{"model":"m","messages":[{"role":"function","name":"f","content":"x"}]}`, "messages[0].role"},
		{`{"model":"m","messages":[{"role":"assistant","audio":{"id":"a1"}}]}`, "messages[0].audio"},
		{`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages[0].tool_calls[0].function.arguments"},
		{`{"model":"m","messages":[{"role":"system","content":"only a system prompt"}]}`, "messages"},
		{`{"model":"m","messages":"hi"}`, "messages"},
		{`{"model":"m","messages":[{"role":"user","content":"q"},{"role":"assistant","content":null}]}`, "messages[1].content"},
		{`{"model":"m","messages":[{"role":"user","content":[]}]}`, "messages[0].content"},
		{`[]`, "body"},
	}
	for _, c := range oa {
		t.Run("openai/"+c.field, func(t *testing.T) {
			_, err := OpenAIToAnthropic([]byte(c.body), RequestOptions{Model: "claude-sonnet-4-5"})
			assertField(t, err, c.field)
		})
	}
	const msg = `"max_tokens":10,"messages":[{"role":"user","content":"hi"}]`
	an := []struct{ body, field string }{
		{`{"model":"m",` + msg + `,"top_k":40}`, "top_k"},
		{`{"model":"m",` + msg + `,"thinking":{"type":"enabled","budget_tokens":2048}}`, "thinking"},
		{`{"model":"m",` + msg + `,"stop_sequences":["a","b","c","d","e"]}`, "stop_sequences"},
		{`{"model":"m",` + msg + `,"mcp_servers":[]}`, "mcp_servers"},
		{`{"model":"m",` + msg + `,"container":"c"}`, "container"},
		{`{"model":"m",` + msg + `,"tools":[{"type":"web_search_20250305","name":"web_search"}]}`, "tools[0].type"},
		{`{"model":"m",` + msg + `,"tools":[{"type":"bash_20250124","name":"bash"}]}`, "tools[0].type"},
		{`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"AA"}}]}]}`, "messages[0].content[0].type"},
		{`{"model":"m","max_tokens":10,"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"s"}]}]}`, "messages[0].content[0].type"},
		{`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`, "messages[0].content[0].source.type"},
		{`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]}]}`, "messages[0].content[0].content[0].type"},
		{`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"x","citations":[{"type":"char_location"}]}]}]}`, "messages[0].content[0].citations"},
		{`{"model":"m","max_tokens":10,"messages":[{"role":"system","content":"x"}]}`, "messages[0].role"},
		{`{"model":"m",` + msg + `,"tool_choice":{"type":"auto","extra":1}}`, "tool_choice.extra"},
		{`{"model":"m","max_tokens":"ten","messages":[]}`, "max_tokens"},
	}
	for _, c := range an {
		t.Run("anthropic/"+c.field, func(t *testing.T) {
			_, err := AnthropicToOpenAI([]byte(c.body), RequestOptions{Model: "gpt-4o"})
			assertField(t, err, c.field)
		})
	}
}

func assertField(t *testing.T, err error, field string) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want a *FieldError for %s", err, field)
	}
	if fe.Field != field {
		t.Fatalf("field %q (%v), want %q", fe.Field, err, field)
	}
}

// TestOpenAIMappings checks single mappings of OpenAI → Anthropic.
func TestOpenAIMappings(t *testing.T) {
	const user = `"messages":[{"role":"user","content":"hi"}]`
	cases := []struct {
		name, model, body, path, want string
	}{
		{"max_tokens default from the model table", "claude-opus-4-1-20250805", `{` + user + `}`, "max_tokens", "32000"},
		{"max_tokens default unknown model", "claude-next", `{` + user + `}`, "max_tokens", "4096"},
		{"max_completion_tokens wins", "claude-sonnet-4-5", `{` + user + `,"max_completion_tokens":50,"max_tokens":70}`, "max_tokens", "50"},
		{"stop array", "claude-sonnet-4-5", `{` + user + `,"stop":["a","b"]}`, "stop_sequences", `["a","b"]`},
		{"empty stop strings dropped", "claude-sonnet-4-5", `{` + user + `,"stop":["","b"]}`, "stop_sequences", `["b"]`},
		{"tool_choice auto", "claude-sonnet-4-5", `{` + user + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"auto"}`, "tool_choice", `{"type":"auto"}`},
		{"tool_choice none", "claude-sonnet-4-5", `{` + user + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none","parallel_tool_calls":false}`, "tool_choice", `{"type":"none"}`},
		{"parallel off without tool_choice", "claude-sonnet-4-5", `{` + user + `,"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false}`, "tool_choice", `{"type":"auto","disable_parallel_tool_use":true}`},
		{"user to metadata", "claude-sonnet-4-5", `{` + user + `,"user":"u-9"}`, "metadata.user_id", `"u-9"`},
		{"response_format text passes", "claude-sonnet-4-5", `{` + user + `,"response_format":{"type":"text"}}`, "messages.0.content", `"hi"`},
		{"stream", "claude-sonnet-4-5", `{` + user + `,"stream":true,"stream_options":{"include_usage":false}}`, "stream", `true`},
		{"assistant text and tool call", "claude-sonnet-4-5", `{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"Looking.","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":""}}]}]}`,
			"messages.1.content", `[{"type":"text","text":"Looking."},{"type":"tool_use","id":"c1","name":"f","input":{}}]`},
		{"user after tool results merges", "claude-sonnet-4-5", `{"messages":[{"role":"user","content":"a"},{"role":"user","content":[{"type":"text","text":"b"}]}]}`,
			"messages", `[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := OpenAIToAnthropic([]byte(c.body), RequestOptions{Model: c.model})
			if err != nil {
				t.Fatal(err)
			}
			if got := gjson.GetBytes(res.Body, c.path).Raw; got != c.want {
				t.Errorf("%s = %s, want %s\nbody %s", c.path, got, c.want, res.Body)
			}
		})
	}
	res, err := OpenAIToAnthropic([]byte(`{`+user+`,"stream":true,"stream_options":{"include_usage":true}}`), RequestOptions{Model: "claude-x", DefaultMaxTokens: 777})
	if err != nil || !res.Stream || !res.IncludeUsage || gjson.GetBytes(res.Body, "max_tokens").Int() != 777 {
		t.Errorf("stream/include_usage/default: %+v %v %s", res, err, res.Body)
	}
	if _, err := OpenAIToAnthropic([]byte(`{`+user+`}`), RequestOptions{}); err == nil {
		t.Error("no model accepted")
	}
}

// TestAnthropicMappings checks single mappings of Anthropic → OpenAI.
func TestAnthropicMappings(t *testing.T) {
	const msg = `"max_tokens":10,"messages":[{"role":"user","content":"hi"}]`
	tool := `"tools":[{"name":"f","input_schema":{"type":"object"}}]`
	cases := []struct {
		name   string
		legacy bool
		body   string
		path   string
		want   string
	}{
		{"legacy max_tokens", true, `{` + msg + `}`, "max_tokens", "10"},
		{"tool_choice auto", false, `{` + msg + `,` + tool + `,"tool_choice":{"type":"auto"}}`, "tool_choice", `"auto"`},
		{"tool_choice none", false, `{` + msg + `,` + tool + `,"tool_choice":{"type":"none"}}`, "tool_choice", `"none"`},
		{"custom tool type", false, `{` + msg + `,"tools":[{"type":"custom","name":"f","input_schema":{"type":"object"}}]}`, "tools.0.function.name", `"f"`},
		{"stream asks usage", false, `{` + msg + `,"stream":true}`, "stream_options", `{"include_usage":true}`},
		{"assistant tool only has null content", false, `{"max_tokens":10,"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"a": 1}}]}]}`,
			"messages.1", `{"role":"assistant","content":null,"tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]}`},
		{"is_error result keeps its text", false, `{"max_tokens":10,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","is_error":true,"content":"boom"}]}]}`,
			"messages.0", `{"role":"tool","content":"boom","tool_call_id":"t"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := AnthropicToOpenAI([]byte(c.body), RequestOptions{Model: "gpt-4o", LegacyMaxTokens: c.legacy})
			if err != nil {
				t.Fatal(err)
			}
			if got := gjson.GetBytes(res.Body, c.path).Raw; got != c.want {
				t.Errorf("%s = %s, want %s\nbody %s", c.path, got, c.want, res.Body)
			}
		})
	}
}

// TestRoundTrip: OpenAI → Anthropic → OpenAI keeps the request's meaning.
// The sample is written in the shape the way back produces (parts for user
// turns that had parts, max_completion_tokens), so it must come back equal;
// and every sample reaches a fixed point after one trip.
func TestRoundTrip(t *testing.T) {
	canonical := `{"model":"gpt-4o","messages":[
		{"role":"system","content":"Be brief."},
		{"role":"user","content":"Weather in Paris?"},
		{"role":"assistant","content":"Checking.","tool_calls":[{"id":"c1","type":"function","function":{"name":"w","arguments":"{\"city\":\"Paris\"}"}}]},
		{"role":"tool","content":"12C","tool_call_id":"c1"},
		{"role":"user","content":[{"type":"text","text":"And this?"},{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}}]}],
		"max_completion_tokens":300,"stop":["END"],"temperature":0.5,"top_p":0.8,"stream":true,"stream_options":{"include_usage":true},
		"user":"u1","tools":[{"type":"function","function":{"name":"w","description":"weather","parameters":{"type":"object"}}}],
		"tool_choice":{"type":"function","function":{"name":"w"}},"parallel_tool_calls":false}`
	back := roundTrip(t, []byte(canonical))
	if diff := cmp.Diff(decode(t, []byte(canonical)), decode(t, back)); diff != "" {
		t.Errorf("round trip changed the request (-want +got):\n%s", diff)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "openai_requests", "*.json"))
	for _, f := range files {
		if filepath.Ext(f[:len(f)-len(".json")]) != "" {
			continue // golden outputs
		}
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		once := roundTrip(t, body)
		twice := roundTrip(t, once)
		if diff := cmp.Diff(decode(t, once), decode(t, twice)); diff != "" {
			t.Errorf("%s: a second round trip changed the request:\n%s", f, diff)
		}
	}
}

func roundTrip(t *testing.T, body []byte) []byte {
	t.Helper()
	model := gjson.GetBytes(body, "model").String()
	an, err := OpenAIToAnthropic(body, RequestOptions{Model: "claude-sonnet-4-5"})
	if err != nil {
		t.Fatal(err)
	}
	oa, err := AnthropicToOpenAI(an.Body, RequestOptions{Model: model})
	if err != nil {
		t.Fatalf("%v\n%s", err, an.Body)
	}
	return oa.Body
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestResponseRoundTrip: an Anthropic answer translated to OpenAI and back
// keeps its content, tool calls, stop reason and token counts.
func TestResponseRoundTrip(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "responses", "anthropic_tools.json"))
	if err != nil {
		t.Fatal(err)
	}
	oa, err := AnthropicResponseToOpenAI(body, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	an, err := OpenAIResponseToAnthropic(oa)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"id", "model", "content", "stop_reason", "usage.output_tokens", "usage.cache_read_input_tokens"} {
		if a, b := gjson.GetBytes(body, p), gjson.GetBytes(an, p); a.String() != b.String() && compact(a.Raw) != compact(b.Raw) {
			t.Errorf("%s: %s became %s", p, a.Raw, b.Raw)
		}
	}
	// Anthropic's cache writes have no OpenAI counterpart: they come back
	// as ordinary input tokens, so the total input is kept.
	in := func(b []byte) int64 {
		u := gjson.GetBytes(b, "usage")
		return u.Get("input_tokens").Int() + u.Get("cache_read_input_tokens").Int() + u.Get("cache_creation_input_tokens").Int()
	}
	if in(body) != in(an) {
		t.Errorf("input tokens %d became %d", in(body), in(an))
	}
}

func compact(s string) string { return compactJSON(json.RawMessage(s)) }

func TestResponseErrors(t *testing.T) {
	if _, err := OpenAIResponseToAnthropic([]byte(`{"choices":[{"message":{"tool_calls":[{"id":"c","function":{"name":"f","arguments":"{broken"}}]},"finish_reason":"tool_calls"}]}`)); err == nil {
		t.Error("invalid tool arguments accepted")
	}
	if _, err := OpenAIResponseToAnthropic([]byte(`{"choices":[{},{}]}`)); err == nil {
		t.Error("two choices accepted")
	}
	if _, err := AnthropicResponseToOpenAI([]byte(`{"type":"message"`), fixedNow); err == nil {
		t.Error("truncated JSON accepted")
	}
	got, err := AnthropicResponseToOpenAI([]byte(`{"type":"message","id":"m","model":"c","content":[{"type":"text","text":"I can't help with that."}],"stop_reason":"refusal","usage":{}}`), fixedNow)
	if err != nil || gjson.GetBytes(got, "choices.0.message.refusal").String() != "I can't help with that." ||
		gjson.GetBytes(got, "choices.0.finish_reason").String() != "content_filter" {
		t.Errorf("refusal: %s %v", got, err)
	}
}

// TestRoundTripAnthropic: Anthropic → OpenAI → Anthropic returns the same
// request, cache_control aside (OpenAI has none).
func TestRoundTripAnthropic(t *testing.T) {
	canonical := `{"model":"claude-sonnet-4-5","system":"Be brief.","messages":[
		{"role":"user","content":"Weather in Paris?"},
		{"role":"assistant","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_1","name":"w","input":{"city":"Paris"}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"12C"},{"type":"text","text":"And this?"},
			{"type":"image","source":{"type":"base64","media_type":"image/webp","data":"UklGRg=="}},{"type":"image","source":{"type":"url","url":"https://example.org/a.png"}}]}],
		"max_tokens":300,"stop_sequences":["END"],"temperature":0.5,"top_p":0.8,"stream":true,"metadata":{"user_id":"u1"},
		"tools":[{"name":"w","description":"weather","input_schema":{"type":"object"}}],
		"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`
	oa, err := AnthropicToOpenAI([]byte(canonical), RequestOptions{Model: "gpt-4o"})
	if err != nil {
		t.Fatal(err)
	}
	an, err := OpenAIToAnthropic(oa.Body, RequestOptions{Model: "claude-sonnet-4-5"})
	if err != nil {
		t.Fatalf("%v\n%s", err, oa.Body)
	}
	if diff := cmp.Diff(decode(t, []byte(canonical)), decode(t, an.Body)); diff != "" {
		t.Errorf("round trip changed the request (-want +got):\n%s", diff)
	}
	if !an.Stream || !an.IncludeUsage {
		t.Errorf("stream %v include_usage %v", an.Stream, an.IncludeUsage)
	}
}
