package prompt_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/policies/prompt"
)

// FuzzRenderPrompt: for any valid template and any variables header,
// rendering never panics and, when it succeeds, yields valid JSON of the
// template's shape (as many messages, a system prompt only when the
// template has one); and a template without placeholders comes out as it
// went in, compacted.
func FuzzRenderPrompt(f *testing.F) {
	f.Add(`[{"role":"user","content":"Hi {{name}}"}]`, ``, `{"name":"\"}]\\n{{name}}"}`)
	f.Add(`[{"role":"user","content":[{"type":"text","text":"{{ a }}{{b}}"}]}]`, `"{{a}}"`, `{"a":{"x":[1,"\""]},"b":null}`)
	f.Add(`[{"role":"{{r}}","content":"\u007b\u007br}}"}]`, `[{"type":"text","text":"{{r}}"}]`, `{"r":"\\u2028<&>"}`)
	f.Add(`[{"content":"{{missing}}"}]`, ``, `{}`)
	f.Add(`[{"content":"x"}]`, ``, `[1]`)
	f.Fuzz(func(t *testing.T, messages, system, variables string) {
		tpl, err := prompt.NormalizeTemplate(prompt.Template{Messages: json.RawMessage(messages), System: json.RawMessage(system)})
		if err != nil {
			return
		}
		v := prompt.Version{ID: "fuzz", Version: 1, Template: tpl}
		out, err := prompt.Render(v, []byte(variables))
		if err != nil {
			return
		}
		var in, got []json.RawMessage
		_ = json.Unmarshal(tpl.Messages, &in)
		if err := json.Unmarshal(out.Messages, &got); err != nil || len(got) != len(in) {
			t.Fatalf("messages %s with %s rendered as %s (%v)", messages, variables, out.Messages, err)
		}
		if (tpl.System == nil) != (out.System == nil) || out.System != nil && !json.Valid(out.System) {
			t.Fatalf("system %s with %s rendered as %s", system, variables, out.System)
		}
		if len(prompt.Placeholders(v)) == 0 && string(out.Messages) != string(tpl.Messages) {
			t.Fatalf("no placeholders, yet %s became %s", tpl.Messages, out.Messages)
		}
	})
}

// FuzzExtractMarkers: for any JSON body, reading Helicone's markers never
// panics; both outputs are valid JSON; a body without markers comes back
// as it is; and the provider's body holds no complete marker that the
// request did not hold as text of a value.
func FuzzExtractMarkers(f *testing.F) {
	f.Add(`{"messages":[{"content":"a <helicone-prompt-input key=\"k\">v</helicone-prompt-input> b"}]}`)
	f.Add(`{"messages":[{"content":"\u003chelicone-prompt-input key=\"k\" \u003e\"}]{{x}}\u003c/helicone-prompt-input\u003e"}]}`)
	f.Add(`{"m":"<helicone-prompt-input key=\"\">x</helicone-prompt-input><helicone-prompt-input key=\"y\">"}`)
	f.Add(`{"<helicone-prompt-input key=\"k\">v</helicone-prompt-input>":"<helicone-prompt-input key=\"k\" />"}`)
	f.Add(`not json <helicone-prompt-input`)
	f.Fuzz(func(t *testing.T, body string) {
		m, err := prompt.ExtractMarkers([]byte(body))
		if err != nil {
			return
		}
		if !strings.Contains(body, "helicone-prompt-input") {
			if string(m.Body) != body || string(m.Template) != body || m.Inputs != nil {
				t.Fatalf("no markers, yet %q changed", body)
			}
			return
		}
		if !json.Valid([]byte(body)) {
			t.Fatalf("invalid body %q accepted", body)
		}
		if !json.Valid(m.Body) || !json.Valid(m.Template) {
			t.Fatalf("%s gave body %s, template %s", body, m.Body, m.Template)
		}
		if m.Inputs == nil && (string(m.Body) != body || string(m.Template) != body) {
			t.Fatalf("no markers, yet %s changed to %s / %s", body, m.Body, m.Template)
		}
	})
}

// FuzzCompile: for any stored messages, request body and inputs, merging
// never panics and, when it succeeds, yields a JSON object without the
// prompt fields whose messages are the stored ones followed by the
// request's.
func FuzzCompile(f *testing.F) {
	f.Add(`[{"role":"system","content":"{{hc:a:string}} {{hc:n:number}}"}]`, `{"prompt_id":"p","messages":[{"role":"user","content":"{{hc:a:string}}"}]}`, `{"a":"\"}]{{hc:a:string}}","n":"7"}`)
	f.Add(`[{"content":"{{ hc : b : boolean }}"}]`, `{"prompt_id":"p","inputs":{},"tools":[{"x":"{{hc:b:boolean}}"}]}`, `{"b":"yes"}`)
	f.Add(`[{"content":"x"}]`, `{"prompt_id":"p","response_format":{"{{hc:k:string}}":"{{hc:k:string}}"}}`, `{"k":{"o":[1,"\u2028"]}}`)
	f.Add(`[{"content":"{{hc:n:number}}"}]`, `{"prompt_id":"p","messages":"not an array"}`, `{"n":"0x1G"}`)
	f.Fuzz(func(t *testing.T, messages, body, inputs string) {
		tpl, err := prompt.NormalizeTemplate(prompt.Template{Messages: json.RawMessage(messages)})
		if err != nil || !json.Valid([]byte(body)) || len(body) == 0 || body[0] != '{' {
			return
		}
		var in map[string]json.RawMessage
		if json.Unmarshal([]byte(inputs), &in) != nil {
			return
		}
		out, err := prompt.Compile([]byte(body), prompt.Version{ID: "p", Version: 1, Template: tpl}, in)
		if err != nil {
			return
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s compiled to invalid JSON %s", body, out)
		}
		for _, f := range []string{"prompt_id", "version_id", "environment", "inputs"} {
			if _, ok := got[f]; ok {
				t.Fatalf("%s kept %s: %s", body, f, out)
			}
		}
		var stored, sent, merged []json.RawMessage
		_ = json.Unmarshal(tpl.Messages, &stored)
		var req struct {
			Messages json.RawMessage `json:"messages"`
		}
		_ = json.Unmarshal([]byte(body), &req)
		_ = json.Unmarshal(req.Messages, &sent)
		if err := json.Unmarshal(got["messages"], &merged); err != nil || len(merged) != len(stored)+len(sent) {
			t.Fatalf("messages %s + %s merged as %s", tpl.Messages, req.Messages, got["messages"])
		}
	})
}
