package tokenlimit

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/provider/tokens"
)

func window(n int) func(string) (int, bool) {
	return func(string) (int, bool) { return n, true }
}

func noWindow(string) (int, bool) { return 0, false }

// words is n distinct-ish words, so that a cut shows where it fell.
func words(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(prefix)
		b.WriteString(string(rune('a' + i%26)))
	}
	return b.String()
}

func chat(model string, extra string, msgs ...[2]string) []byte {
	var parts []string
	for _, m := range msgs {
		role, _ := json.Marshal(m[0])
		content, _ := json.Marshal(m[1])
		parts = append(parts, `{"role":`+string(role)+`,"content":`+string(content)+`}`)
	}
	return []byte(`{"model":"` + model + `",` + extra + `"messages":[` + strings.Join(parts, ",") + `]}`)
}

// parseBody reads a body as Apply does.
func parseBody(body string) (*prompt, bool) {
	top, ok := parseTop(body)
	if !ok {
		return nil, false
	}
	return parsePrompt(body, top, true)
}

// promptTokens counts a body as Apply does (o200k for gpt-4o).
func promptTokens(t *testing.T, body []byte) int {
	t.Helper()
	p, ok := parseBody(string(body))
	if !ok {
		t.Fatalf("no prompt in %s", body)
	}
	return p.measure(tokens.O200k(), false).total()
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"truncate": Truncate, " Middle-Out ": MiddleOut, "FALLBACK": Fallback} {
		if got, ok := ParseMode(in); !ok || got != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "middle_out", "truncate,fallback", "none"} {
		if _, ok := ParseMode(in); ok {
			t.Errorf("ParseMode(%q) accepted", in)
		}
	}
}

// Cases from Helicone's own tests of truncateAndNormalizeText and
// applyTruncateStrategy (worker/test/token-limit-exception/
// tokenLimitException.spec.ts).
func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Hello    world   with    extra    spaces", "Hello world with extra spaces"},
		{"Hello ,  world .  How  are   you ?", "Hello,world.How are you ?"},
		{"hello    world", "hello world"},
		{"You   are   helpful", "You are helpful"},
		{"Hello <!-- this is a comment --> world", "Hello world"},
		{"see id:12345678-1234-1234-1234-123456789abc now", "see now"},
		{"f ( x ) = { a : b } [ 1 ]", "f(x)={a:b}[1]"},
		{"\u00a0 lead\v and\ttrail \n", "lead and trail"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := normalize(tt.in); got != tt.want {
			t.Errorf("normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	long := words("alpha", 400)
	body := chat("gpt-4o", `"temperature":0.5,"max_tokens":50,`,
		[2]string{"system", "You   are   a   careful   assistant."},
		[2]string{"user", long},
		[2]string{"assistant", words("beta", 100)},
		[2]string{"user", "And   the answer is ?"})
	r := Apply(Request{Mode: Truncate, Body: body, Context: window(300)})
	if r.Outcome != Truncated || r.Limit != 250 || r.Counter != "o200k_base" {
		t.Fatalf("got %+v", r)
	}
	if !json.Valid(r.Body) {
		t.Fatalf("invalid JSON: %s", r.Body)
	}
	if n := promptTokens(t, r.Body); n > r.Limit || n != r.SentSize {
		t.Errorf("sent %d tokens (reported %d), limit %d", n, r.SentSize, r.Limit)
	}
	msgs := gjson.GetBytes(r.Body, "messages").Array()
	if len(msgs) != 4 || gjson.GetBytes(r.Body, "temperature").Raw != "0.5" || gjson.GetBytes(r.Body, "max_tokens").Int() != 50 {
		t.Fatalf("structure changed: %s", r.Body)
	}
	// Every text normalized; the long ones keep their start and end in "...".
	if got := msgs[0].Get("content").String(); got != "You are a careful assistant." {
		t.Errorf("system = %q", got)
	}
	user := msgs[1].Get("content").String()
	if !strings.HasPrefix(user, "alphaa alphab") || !strings.HasSuffix(user, "...") || len(user) >= len(long)/2 {
		t.Errorf("user = %q", user)
	}
	if got := msgs[3].Get("content").String(); got != "And the answer is ?" {
		t.Errorf("last = %q", got)
	}
	// The short texts stay whole; the two long ones share what is left.
	if got := msgs[2].Get("content").String(); !strings.HasPrefix(got, "betaa betab") || !strings.HasSuffix(got, "...") {
		t.Errorf("assistant = %q", got)
	}
}

func TestTruncateNormalizingIsEnough(t *testing.T) {
	spaced := strings.Repeat("word   ,   ", 60)
	body := chat("gpt-4o", `"max_tokens":10,`, [2]string{"user", spaced})
	before := promptTokens(t, body)
	r := Apply(Request{Mode: Truncate, Body: body, Context: window(before)}) // limit before-10
	if r.Outcome != Truncated {
		t.Fatalf("got %+v", r)
	}
	got := gjson.GetBytes(r.Body, "messages.0.content").String()
	if strings.Contains(got, "...") || strings.Contains(got, " ,") || r.SentSize > r.Limit {
		t.Errorf("content %q, %d tokens, limit %d", got, r.SentSize, r.Limit)
	}
}

func TestMiddleOut(t *testing.T) {
	body := chat("gpt-4o", `"max_tokens":40,`,
		[2]string{"system", "You are helpful."},
		[2]string{"user", words("start", 60) + " " + words("middle", 300) + " " + words("end", 60)},
		[2]string{"assistant", "Understood."})
	r := Apply(Request{Mode: MiddleOut, Body: body, Context: window(240)})
	if r.Outcome != MiddledOut || !json.Valid(r.Body) {
		t.Fatalf("got %+v %s", r, r.Body)
	}
	if n := promptTokens(t, r.Body); n > r.Limit {
		t.Errorf("sent %d tokens, limit %d", n, r.Limit)
	}
	msgs := gjson.GetBytes(r.Body, "messages").Array()
	if len(msgs) != 3 || msgs[0].Get("content").String() != "You are helpful." || msgs[2].Get("content").String() != "Understood." {
		t.Fatalf("the ends moved: %s", r.Body)
	}
	user := msgs[1].Get("content").String()
	if !strings.HasPrefix(user, "starta startb") || !strings.HasSuffix(user, "endg endh") ||
		!strings.Contains(user, mark) || strings.Count(user, "middle") > 100 {
		t.Errorf("user = %q", user)
	}
}

// A window wider than one message drops the plain messages it covers
// whole, as Helicone's middle-out filters out messages left empty; a
// tool's answer is emptied, never dropped, so the call it answers stays
// paired.
func TestMiddleOutDropsEmptiedMessages(t *testing.T) {
	var msgs [][2]string
	msgs = append(msgs, [2]string{"system", "Rules: be brief."})
	for i := range 12 {
		msgs = append(msgs, [2]string{[]string{"user", "assistant"}[i%2], words(string(rune('k'+i)), 40)})
	}
	body := chat("gpt-4o", `"max_tokens":20,`, msgs...)
	r := Apply(Request{Mode: MiddleOut, Body: body, Context: window(300)})
	if r.Outcome != MiddledOut || !json.Valid(r.Body) {
		t.Fatalf("got %+v", r)
	}
	got := gjson.GetBytes(r.Body, "messages").Array()
	if len(got) >= len(msgs) || len(got) < 3 {
		t.Fatalf("%d messages left of %d", len(got), len(msgs))
	}
	if got[0].Get("content").String() != "Rules: be brief." || got[len(got)-1].Get("content").String() != msgs[len(msgs)-1][1] {
		t.Errorf("first or last message changed: %s", r.Body)
	}
	for _, m := range got {
		if m.Get("content").String() == "" {
			t.Errorf("an emptied message was kept: %s", r.Body)
		}
	}

	tool := []byte(`{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hi"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},` +
		`{"role":"tool","tool_call_id":"c1","content":"` + words("tool", 300) + `"},{"role":"user","content":"thanks"}]}`)
	r = Apply(Request{Mode: MiddleOut, Body: tool, Context: window(60)})
	if r.Outcome != MiddledOut || gjson.GetBytes(r.Body, "messages.#").Int() != 4 ||
		gjson.GetBytes(r.Body, "messages.2.tool_call_id").String() != "c1" {
		t.Fatalf("got %+v %s", r, r.Body)
	}
}

// Helicone's applyFallbackStrategy: the body's model is a list; over the
// limit the second is sent, within it the first, and with no known window
// the second (tokenLimitException.spec.ts, "should switch to fallback
// model when tokens exceed limit" and "…keep primary model…").
func TestFallback(t *testing.T) {
	big := chat("gpt-4o, gpt-4.1", `"max_tokens":10,`, [2]string{"user", words("w", 200)})
	small := chat("gpt-4o, gpt-4.1", `"max_tokens":10,`, [2]string{"user", "hi"})
	tests := []struct {
		name    string
		body    []byte
		context func(string) (int, bool)
		want    Outcome
		model   string // "" for an unchanged body
	}{
		{"over", big, window(100), FellBack, "gpt-4.1"},
		{"within", small, window(100), Fits, "gpt-4o"},
		{"unknown window", small, noWindow, FellBack, "gpt-4.1"},
		{"one model over", chat("gpt-4o", `"max_tokens":10,`, [2]string{"user", words("w", 200)}), window(100), Over, ""},
		{"one model within", chat("gpt-4o", "", [2]string{"user", "hi"}), window(100), Fits, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Apply(Request{Mode: Fallback, Body: tt.body, Context: tt.context})
			if r.Outcome != tt.want {
				t.Fatalf("outcome %s, want %s (%+v)", r.Outcome, tt.want, r)
			}
			if tt.model == "" {
				if r.Body != nil {
					t.Fatalf("body changed: %s", r.Body)
				}
				return
			}
			if got := gjson.GetBytes(r.Body, "model").String(); got != tt.model {
				t.Errorf("model %q, want %q", got, tt.model)
			}
			if gjson.GetBytes(r.Body, "messages.0.content").String() != gjson.GetBytes(tt.body, "messages.0.content").String() {
				t.Error("the prompt changed")
			}
		})
	}
}

func TestLimit(t *testing.T) {
	msg := [2]string{"user", words("w", 100)} // ~100 tokens
	tests := []struct {
		name    string
		body    []byte
		context int
		want    Outcome
		limit   int
	}{
		{"a tenth reserved without max_tokens", chat("gpt-4o", "", msg), 1000, Fits, 900},
		{"a tenth rounded up", chat("gpt-4o", "", msg), 16385, Fits, 14746},
		{"max_completion_tokens first", chat("gpt-4o", `"max_completion_tokens":950,"max_tokens":10,`, msg), 1000, Truncated, 50},
		{"max_output_tokens", chat("gpt-4o", `"max_output_tokens":950,`, msg), 1000, Truncated, 50},
		{"zero is not a limit", chat("gpt-4o", `"max_tokens":0,`, msg), 1000, Fits, 900},
		{"no room", chat("gpt-4o", `"max_tokens":1000,`, msg), 1000, NoRoom, 0},
		{"Gemini's generationConfig", chat("gpt-4o", `"generationConfig":{"temperature":1,"maxOutputTokens":960},`, msg), 1000, Truncated, 40},
		{"response.max_tokens", chat("gpt-4o", `"response":{"max_tokens":970},`, msg), 1000, Truncated, 30},
		{"generation_config has no max_tokens", chat("gpt-4o", `"generation_config":{"max_tokens":970},`, msg), 1000, Fits, 900},
		{"top level before nested", chat("gpt-4o", `"generation_config":{"max_output_tokens":10},"max_tokens":950,`, msg), 1000, Truncated, 50},
		{"the first of duplicate keys", chat("gpt-4o", `"max_tokens":950,"max_tokens":10,`, msg), 1000, Truncated, 50},
	}
	for _, tt := range tests {
		r := Apply(Request{Mode: Truncate, Body: tt.body, Context: window(tt.context)})
		if r.Outcome != tt.want || r.Limit != tt.limit {
			t.Errorf("%s: %s limit %d, want %s %d", tt.name, r.Outcome, r.Limit, tt.want, tt.limit)
		}
	}
}

func TestPassThrough(t *testing.T) {
	msg := [2]string{"user", words("w", 300)}
	tests := []struct {
		name string
		req  Request
		want Outcome
	}{
		{"unknown window", Request{Mode: Truncate, Body: chat("my-model", "", msg), Context: noWindow}, UnknownContext},
		{"no model", Request{Mode: Truncate, Body: []byte(`{"messages":[{"role":"user","content":"x"}]}`), Context: window(10)}, Skipped},
		{"not JSON", Request{Mode: Truncate, Body: []byte(`{"model":"gpt-4o",`), Context: window(10)}, Skipped},
		{"no prompt", Request{Mode: MiddleOut, Body: []byte(`{"model":"gpt-4o","input":[]}`), Context: window(10)}, Skipped},
		{"embeddings", Request{Mode: Truncate, Body: []byte(`{"model":"text-embedding-3-small","input":"x"}`), Context: window(8192)}, Fits},
	}
	for _, tt := range tests {
		r := Apply(tt.req)
		if r.Outcome != tt.want || r.Body != nil {
			t.Errorf("%s: %s, body %s; want %s, unchanged", tt.name, r.Outcome, r.Body, tt.want)
		}
	}
	// The model can come from Helicone-Model-Override.
	r := Apply(Request{Mode: Truncate, Body: []byte(`{"messages":[{"role":"user","content":"` + words("w", 300) + `"}]}`),
		Model: "gpt-4o", Context: window(100)})
	if r.Outcome != Truncated || r.Model != "gpt-4o" {
		t.Errorf("with Helicone-Model-Override: %+v", r)
	}
}

// A prompt whose bytes fit is never tokenized.
func TestFastPath(t *testing.T) {
	r := Apply(Request{Mode: Truncate, Body: chat("gpt-4o", "", [2]string{"user", "short"}), Context: window(128000)})
	if r.Outcome != Fits || r.Tokens != 0 || r.Counter != "" {
		t.Errorf("got %+v", r)
	}
}

func TestAnthropic(t *testing.T) {
	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":100,"system":[{"type":"text","text":"Be exact."}],` +
		`"messages":[{"role":"user","content":[{"type":"text","text":"` + words("doc", 400) + `"},{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]},` +
		`{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"` + words("res", 200) + `"}]}]}`)
	for _, mode := range []Mode{Truncate, MiddleOut} {
		r := Apply(Request{Mode: mode, Body: body, Context: window(400)})
		if r.Counter != "estimate" || !json.Valid(r.Body) || r.SentSize > r.Limit {
			t.Fatalf("%s: %+v %s", mode, r, r.Body)
		}
		if gjson.GetBytes(r.Body, "messages.#").Int() != 3 || gjson.GetBytes(r.Body, "messages.0.content.1.type").String() != "image" ||
			gjson.GetBytes(r.Body, "messages.2.content.0.tool_use_id").String() != "t1" {
			t.Errorf("%s: structure changed: %s", mode, r.Body)
		}
		if n := tokens.Estimate.Count(gjson.GetBytes(r.Body, "messages.0.content.0.text").String()); n >= 400 {
			t.Errorf("%s: the document was not cut (%d tokens)", mode, n)
		}
	}
}

func TestResponses(t *testing.T) {
	str := []byte(`{"model":"gpt-4.1","instructions":"Answer briefly.","input":"` + words("q", 500) + `","max_output_tokens":100}`)
	r := Apply(Request{Mode: Truncate, Body: str, Context: window(300)})
	if r.Outcome != Truncated || !strings.HasSuffix(gjson.GetBytes(r.Body, "input").String(), mark) || r.SentSize > r.Limit {
		t.Fatalf("string input: %+v %s", r, r.Body)
	}
	items := []byte(`{"model":"gpt-4.1","max_output_tokens":100,"input":[{"role":"user","content":[{"type":"input_text","text":"` + words("a", 300) + `"}]},` +
		`{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"` + words("o", 300) + `"},` +
		`{"role":"user","content":"last question"}]}`)
	r = Apply(Request{Mode: MiddleOut, Body: items, Context: window(300)})
	if r.Outcome != MiddledOut || !json.Valid(r.Body) || r.SentSize > r.Limit {
		t.Fatalf("items: %+v %s", r, r.Body)
	}
	if gjson.GetBytes(r.Body, "input.1.type").String() != "function_call" || gjson.GetBytes(r.Body, "input.2.call_id").String() != "c" ||
		gjson.GetBytes(r.Body, "input.3.content").String() != "last question" {
		t.Errorf("items moved: %s", r.Body)
	}
}

// Past exactWork the prompt is estimated, whatever the model, so that a
// huge body cannot hold the reply past Envoy's message timeout.
func TestHugePromptIsEstimated(t *testing.T) {
	huge := strings.Repeat("lorem ipsum ", exactWork/12+1)
	r := Apply(Request{Mode: Truncate, Body: chat("gpt-4o", `"max_tokens":10,`, [2]string{"user", huge}), Context: window(10000)})
	if r.Counter != "estimate" || r.Outcome != Truncated || r.SentSize > r.Limit || !json.Valid(r.Body) {
		t.Errorf("got %s %s, %d tokens sent of %d", r.Counter, r.Outcome, r.SentSize, r.Limit)
	}
}

// A vision call whose question fits is sent as is: its image counts
// tokens.PerMediaPart, not its base64 bytes (Helicone counts it as
// nothing), so truncate does not cut the question to "..." and fallback
// does not switch the model because the picture is large.
func TestImageBytesAreNotCounted(t *testing.T) {
	image := strings.Repeat("iVBORw0KGgoAAAANSUhEUgAA", 200<<10/24) // 200 KB of base64
	for _, shape := range []struct{ name, body string }{
		{"chat", `{"model":"gpt-4o,gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":[` +
			`{"type":"text","text":"What is in this image?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,` + image + `"}}]}]}`},
		{"anthropic", `{"model":"gpt-4o,gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":[` +
			`{"type":"text","text":"What is in this image?"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + image + `"}}]}]}`},
		{"responses", `{"model":"gpt-4o,gpt-4o-mini","max_output_tokens":100,"input":[{"role":"user","content":[` +
			`{"type":"input_text","text":"What is in this image?"},{"type":"input_image","image_url":"data:image/png;base64,` + image + `"}]}]}`},
	} {
		for _, mode := range []Mode{Truncate, MiddleOut, Fallback} {
			r := Apply(Request{Mode: mode, Body: []byte(shape.body), Context: window(1000)})
			if r.Outcome != Fits || r.Sent != "" {
				t.Errorf("%s %s: %+v", shape.name, mode, r)
				continue
			}
			if mode != Fallback && r.Body != nil {
				t.Errorf("%s %s: rewrote the body: %.200s", shape.name, mode, r.Body)
			}
			if mode == Fallback && gjson.GetBytes(r.Body, "model").String() != "gpt-4o" {
				t.Errorf("%s fallback: sent %q", shape.name, gjson.GetBytes(r.Body, "model").String())
			}
		}
	}
	// The image still counts: a question over the window with it is cut.
	long := `{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"` + words("q", 300) +
		`"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}`
	p, _ := parseBody(long)
	n := p.measure(tokens.O200k(), false).total()
	r := Apply(Request{Mode: Truncate, Body: []byte(long), Context: window(n + 10 - 1)}) // one token over
	if r.Outcome != Truncated || r.Tokens != n || n < tokens.PerMediaPart+300 {
		t.Errorf("with the image: %+v (%d tokens)", r, n)
	}
}

// Whatever the body, a call encodes at most exactWork bytes (callCost a
// string included) and a few bytes a text more (the mark a cut adds before
// it is counted again): bodies built to be slow to count, at sizes around
// the bound, under every mode, with windows that cut deep, cut a little,
// and fit.
func TestExactWorkIsBounded(t *testing.T) {
	most := 0
	for _, size := range []int{4 << 10, 24 << 10, 40 << 10, 100 << 10} {
		for _, tc := range adversarialBodies(size) {
			p, ok := parseBody(string(tc.body))
			if !ok {
				t.Fatalf("%s: no prompt", tc.name)
			}
			full := p.measure(tokens.O200k(), false).total()
			for _, mode := range []Mode{Truncate, MiddleOut, Fallback} {
				for _, context := range []int{256, full * 9 / 10, full + full/10, full * 2} {
					r := Apply(Request{Mode: mode, Body: tc.body, Context: window(context)})
					if slack := 3 * len(p.texts); r.work > exactWork+slack {
						t.Errorf("%d/%s/%s/window %d: encoded %d bytes, the bound is %d", size, tc.name, mode, context, r.work, exactWork)
					}
					if r.Body != nil && !json.Valid(r.Body) {
						t.Errorf("%d/%s/%s: invalid JSON", size, tc.name, mode)
					}
					most = max(most, r.work)
				}
			}
		}
	}
	if most < exactWork/2 {
		t.Errorf("the bodies encoded at most %d bytes: none came near the bound", most)
	}
	t.Logf("at most %d bytes encoded of %d", most, exactWork)
}

// tinyMessages is a chat body of n one-word messages.
func tinyMessages(model string, n int) []byte {
	msgs := make([][2]string, n)
	for i := range msgs {
		msgs[i] = [2]string{"user", "a b"}
	}
	return chat(model, `"max_tokens":10,`, msgs...)
}

// Past MaxTexts texts or messages, truncate and middle-out leave an
// oversized prompt as sent and say why (the processor warns); at MaxTexts they still cut, and
// fallback, which only swaps the model, has no bound.
func TestTooManyTexts(t *testing.T) {
	over := tinyMessages("gpt-4o,gpt-4o-mini", MaxTexts+1)
	for _, mode := range []Mode{Truncate, MiddleOut} {
		r := Apply(Request{Mode: mode, Body: over, Context: window(1000)})
		if r.Outcome != Over || !r.TooManyTexts || r.Body != nil || r.Tokens <= r.Limit {
			t.Errorf("%s past the cap: %s, too many %v, tokens %d of %d, body %d bytes; want over, unchanged",
				mode, r.Outcome, r.TooManyTexts, r.Tokens, r.Limit, len(r.Body))
		}
		// Within its window the cap changes nothing.
		if r := Apply(Request{Mode: mode, Body: over, Context: window(1 << 20)}); r.Outcome != Fits || r.TooManyTexts {
			t.Errorf("%s past the cap, within the window: %s, too many %v", mode, r.Outcome, r.TooManyTexts)
		}
	}
	if r := Apply(Request{Mode: Fallback, Body: over, Context: window(1000)}); r.Outcome != FellBack || r.Sent != "gpt-4o-mini" || r.TooManyTexts {
		t.Errorf("fallback past the cap: %s to %q, too many %v", r.Outcome, r.Sent, r.TooManyTexts)
	}

	// Messages count as texts do, with or without a text in them.
	empty := `{"role":"user","content":null},`
	fewTexts := []byte(`{"model":"gpt-4o","messages":[` + strings.Repeat(empty, MaxTexts) +
		`{"role":"user","content":"` + words("w", 2000) + `"}]}`)
	if r := Apply(Request{Mode: Truncate, Body: fewTexts, Context: window(1000)}); r.Outcome != Over || !r.TooManyTexts {
		t.Errorf("one text in %d messages: %s, too many %v", MaxTexts+1, r.Outcome, r.TooManyTexts)
	}

	at := tinyMessages("gpt-4o", MaxTexts)
	r := Apply(Request{Mode: Truncate, Body: at, Context: window(1000)})
	if r.Outcome != Truncated || r.TooManyTexts || gjson.GetBytes(r.Body, "messages.#").Int() != MaxTexts {
		t.Errorf("truncate at the cap: %s, too many %v", r.Outcome, r.TooManyTexts)
	}
	r = Apply(Request{Mode: MiddleOut, Body: at, Context: window(1000)})
	if n := gjson.GetBytes(r.Body, "messages.#").Int(); r.Outcome != MiddledOut || !json.Valid(r.Body) || n >= MaxTexts || n == 0 {
		t.Errorf("middle-out at the cap: %s, %d messages left", r.Outcome, n)
	}
}
