package prompt_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/prompt"
	"github.com/tollgate-dev/tollgate/storage/memstore"
)

func promptOf(messages string) prompt.Version {
	return prompt.Version{ID: "p", Version: 3, Template: prompt.Template{Model: "gpt-4o-mini", Messages: json.RawMessage(messages)}}
}

func TestRenderPrompt(t *testing.T) {
	tests := []struct {
		name     string
		messages string
		vars     string
		want     string
	}{
		{"plain", `[{"role":"user","content":"Hi {{name}}!"}]`, `{"name":"Ada"}`,
			`[{"role":"user","content":"Hi Ada!"}]`},
		{"spaces inside the braces", `[{"role":"user","content":"{{ name }}/{{name  }}/{{\tname}}"}]`, `{"name":"x"}`,
			`[{"role":"user","content":"x/x/x"}]`},
		{"quotes, backslashes and newlines stay inside the string", `[{"role":"user","content":"say {{v}}"}]`,
			`{"v":"\"}],\"evil\":[{\"a\":\"\\\\\n\r\t"}`,
			`[{"role":"user","content":"say \"}],\"evil\":[{\"a\":\"\\\\\n\r\t"}]`},
		{"a value holding a placeholder is not expanded again", `[{"role":"user","content":"{{a}} {{b}}"}]`,
			`{"a":"{{b}}","b":"{{a}}"}`,
			`[{"role":"user","content":"{{b}} {{a}}"}]`},
		{"unicode, and HTML characters kept as written", `[{"role":"user","content":"{{v}}"}]`, `{"v":"héllo 世界 🙂 <b>&amp;</b> \u2028"}`,
			`[{"role":"user","content":"héllo 世界 🙂 <b>&amp;</b> \u2028"}]`},
		{"numbers, booleans and null as JSON text", `[{"role":"user","content":"{{n}} {{f}} {{b}} {{z}} {{big}}"}]`,
			`{"n":42,"f":1.50,"b":true,"z":null,"big":12345678901234567890}`,
			`[{"role":"user","content":"42 1.50 true null 12345678901234567890"}]`},
		{"objects and arrays as compact JSON", `[{"role":"user","content":"{{o}} {{a}}"}]`,
			`{"o": {"k": [1, 2], "s": "x y"}, "a": [ "q\"" ]}`,
			`[{"role":"user","content":"{\"k\":[1,2],\"s\":\"x y\"} [\"q\\\"\"]"}]`},
		{"every string value: role, nested content parts, any field", `[{"role":"{{role}}","content":[{"type":"text","text":"Q: {{q}}"},{"type":"image_url","image_url":{"url":"https://x/{{img}}.png"}}]}]`,
			`{"role":"user","q":"why?","img":"cat"}`,
			`[{"role":"user","content":[{"type":"text","text":"Q: why?"},{"type":"image_url","image_url":{"url":"https://x/cat.png"}}]}]`},
		{"object keys are not templates", `[{"role":"user","{{k}}":"v","content":"c"}]`, `{"k":"x"}`,
			`[{"role":"user","{{k}}":"v","content":"c"}]`},
		{"not placeholders stay as written", `[{"role":"user","content":"{{}} {{ a b }} {x} {{{v}}} {{v}"}]`, `{"v":"V"}`,
			`[{"role":"user","content":"{{}} {{ a b }} {x} {V} {{v}"}]`},
		{"escaped braces in the template decode to a placeholder", `[{"role":"user","content":"\u007b\u007bv}}"}]`, `{"v":"V"}`,
			`[{"role":"user","content":"V"}]`},
		{"empty value", `[{"role":"user","content":"[{{v}}]"}]`, `{"v":""}`, `[{"role":"user","content":"[]"}]`},
		{"names with dots and dashes", `[{"role":"user","content":"{{user.name}} {{a-b_c}}"}]`, `{"user.name":"n","a-b_c":"m"}`,
			`[{"role":"user","content":"n m"}]`},
		{"no variables header, no placeholders", ` [ {"role" : "user", "content": "hi"} ] `, ``, `[{"role":"user","content":"hi"}]`},
		{"unused variables are fine", `[{"role":"user","content":"hi"}]`, `{"unused":1}`, `[{"role":"user","content":"hi"}]`},
		{"numbers and literals in the template survive", `[{"role":"user","content":"x","n":1.0e3,"t":true,"z":null}]`, `{}`,
			`[{"role":"user","content":"x","n":1.0e3,"t":true,"z":null}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := prompt.Render(promptOf(tc.messages), []byte(tc.vars))
			if err != nil {
				t.Fatal(err)
			}
			if string(out.Messages) != tc.want {
				t.Fatalf("got  %s\nwant %s", out.Messages, tc.want)
			}
			if !json.Valid(out.Messages) || out.Model != "gpt-4o-mini" || out.System != nil {
				t.Fatalf("bad output %+v", out)
			}
		})
	}
}

func TestRenderPromptSystem(t *testing.T) {
	v := promptOf(`[{"role":"user","content":"{{q}}"}]`)
	v.System = json.RawMessage(`"You work for {{company}}."`)
	out, err := prompt.Render(v, []byte(`{"q":"hi","company":"Acme \"Ltd\""}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(out.System) != `"You work for Acme \"Ltd\"."` {
		t.Fatalf("system %s", out.System)
	}
	v.System = json.RawMessage(`[{"type":"text","text":"{{company}}","cache_control":{"type":"ephemeral"}}]`)
	out, err = prompt.Render(v, []byte(`{"q":"hi","company":"Acme"}`))
	if err != nil || string(out.System) != `[{"type":"text","text":"Acme","cache_control":{"type":"ephemeral"}}]` {
		t.Fatalf("system %s, %v", out.System, err)
	}
}

func TestRenderPromptMissingVariables(t *testing.T) {
	v := promptOf(`[{"role":"system","content":"{{company}} {{tone}}"},{"role":"user","content":"{{question}} {{company}}"}]`)
	_, err := prompt.Render(v, []byte(`{"tone":"warm"}`))
	var me *prompt.VariableMissingError
	if !errors.As(err, &me) || !errors.Is(err, prompt.ErrVariableMissing) {
		t.Fatalf("got %v", err)
	}
	if !reflect.DeepEqual(me.Names, []string{"company", "question"}) || me.PromptID != "p" || me.Version != 3 {
		t.Fatalf("got %+v", me)
	}
	for _, want := range []string{`"company"`, `"question"`, `prompt "p" version 3`, "Helicone-Prompt-Variables"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not mention %s", err, want)
		}
	}
	_, err = prompt.Render(v, nil)
	if !errors.As(err, &me) || len(me.Names) != 3 {
		t.Fatalf("no variables: %v", err)
	}
	_, err = prompt.Render(promptOf(`[{"role":"user","content":"{{only}}"}]`), []byte(`{}`))
	if err == nil || !strings.Contains(err.Error(), `variable "only" is missing`) {
		t.Fatalf("got %v", err)
	}
}

func TestRenderPromptInvalidVariables(t *testing.T) {
	v := promptOf(`[{"role":"user","content":"{{a}}"}]`)
	for _, vars := range []string{`[1,2]`, `"a"`, `{"a":`, `null`, `1`, `{"a":"b"} x`, `a=b`} {
		_, err := prompt.Render(v, []byte(vars))
		var bh *helicone.BadHeaderError
		if !errors.As(err, &bh) || bh.Header != "Helicone-Prompt-Variables" || !strings.Contains(err.Error(), "JSON object") {
			t.Errorf("%s: got %v", vars, err)
		}
	}
}

func TestParsePromptVariables(t *testing.T) {
	got, err := prompt.ParseVariables([]byte(`{"s":"text","n":1.50,"b":false,"z":null,"o":{"a": [1, "x"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"s": "text", "n": "1.50", "b": "false", "z": "null", "o": `{"a":[1,"x"]}`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	if got, err := prompt.ParseVariables([]byte("  ")); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
}

func TestRenderPromptRejectsBrokenTemplate(t *testing.T) {
	if _, err := prompt.Render(promptOf(`[{"role":`), nil); err == nil {
		t.Fatal("a broken template rendered")
	}
}

func TestPromptPlaceholders(t *testing.T) {
	v := promptOf(`[{"role":"user","content":"{{b}} {{ a }} {{b}}"}]`)
	v.System = json.RawMessage(`"{{c}}"`)
	if got := prompt.Placeholders(v); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("got %v", got)
	}
}

func BenchmarkRenderPrompt(b *testing.B) {
	v := promptOf(`[{"role":"system","content":"You are {{company}}'s assistant. Answer in {{ language }}, briefly and politely."},` +
		`{"role":"user","content":[{"type":"text","text":"Customer {{name}} asks: {{question}}"}]}]`)
	vars := []byte(`{"company":"Acme","language":"English","name":"Ada \"A\" Lovelace","question":"Where is my order #1234?\nThanks!"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := prompt.Render(v, vars); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTagUnchangedPrompt is the request path of a Helicone-style
// call whose template this process already knows: markers out, template
// read, version answered from memory.
func BenchmarkTagUnchangedPrompt(b *testing.B) {
	lib, err := prompt.NewLibrary(prompt.LibraryOptions{Store: memstore.NewPromptStore(memstore.PromptOptions{})})
	if err != nil {
		b.Fatal(err)
	}
	defer lib.Close()
	body := []byte(`{"model":"gpt-4o-mini","temperature":0.2,"messages":[{"role":"system","content":"You write stories for children. Keep them short and kind."},` +
		`{"role":"user","content":"Write about <helicone-prompt-input key=\"hero\">a brave cat</helicone-prompt-input> in <helicone-prompt-input key=\"place\">Paris</helicone-prompt-input>."}]}`)
	m, _ := prompt.ExtractMarkers(body)
	tpl, _ := prompt.TemplateOf(m.Template)
	lib.Observe("acme", "story", tpl)
	lib.Flush()
	b.ReportAllocs()
	for b.Loop() {
		m, _ := prompt.ExtractMarkers(body)
		tpl, _ := prompt.TemplateOf(m.Template)
		if lib.Observe("acme", "story", tpl) != 1 {
			b.Fatal("version unknown")
		}
	}
}
