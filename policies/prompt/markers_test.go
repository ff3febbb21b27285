package prompt_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies/prompt"
)

// The expectations follow Helicone's parseJSXObject (worker/src/api/lib/
// promptHelpers.ts, later @helicone/prompts objectParser): the provider
// gets each marker's text, the template keeps <helicone-prompt-input
// key="k" />, inputs map keys to trimmed text, object keys are not looked
// at, and an unclosed marker is left alone.
func TestExtractMarkers(t *testing.T) {
	tests := []struct {
		name             string
		body             string
		wantBody, wantTp string
		wantInputs       map[string]string
	}{
		{
			name:       "two inputs in two messages",
			body:       `{"model":"gpt-4o","messages":[{"role":"system","content":"Write about <helicone-prompt-input key=\"topic\"> the sea </helicone-prompt-input>."},{"role":"user","content":[{"type":"text","text":"In <helicone-prompt-input key=\"lang\" >French</helicone-prompt-input>"}]}],"max_tokens":50}`,
			wantBody:   `{"model":"gpt-4o","messages":[{"role":"system","content":"Write about  the sea ."},{"role":"user","content":[{"type":"text","text":"In French"}]}],"max_tokens":50}`,
			wantTp:     `{"model":"gpt-4o","messages":[{"role":"system","content":"Write about <helicone-prompt-input key=\"topic\" />."},{"role":"user","content":[{"type":"text","text":"In <helicone-prompt-input key=\"lang\" />"}]}],"max_tokens":50}`,
			wantInputs: map[string]string{"topic": "the sea", "lang": "French"},
		},
		{
			name:       "escaped by Go's encoder, multi-line value, repeated key keeps the last",
			body:       `{"messages":[{"content":"\u003chelicone-prompt-input key=\"a\"\u003eone\nline\u003c/helicone-prompt-input\u003e and <helicone-prompt-input key=\"a\">two</helicone-prompt-input>"}]}`,
			wantBody:   `{"messages":[{"content":"one\nline and two"}]}`,
			wantTp:     `{"messages":[{"content":"<helicone-prompt-input key=\"a\" /> and <helicone-prompt-input key=\"a\" />"}]}`,
			wantInputs: map[string]string{"a": "two"},
		},
		{
			name:     "unclosed marker and marker in a key stay",
			body:     `{"messages":[{"content":"<helicone-prompt-input key=\"x\">open"}],"<helicone-prompt-input key=\"k\">v</helicone-prompt-input>":1}`,
			wantBody: `{"messages":[{"content":"<helicone-prompt-input key=\"x\">open"}],"<helicone-prompt-input key=\"k\">v</helicone-prompt-input>":1}`,
			wantTp:   `{"messages":[{"content":"<helicone-prompt-input key=\"x\">open"}],"<helicone-prompt-input key=\"k\">v</helicone-prompt-input>":1}`,
		},
		{
			name:       "value holding quotes and braces goes back as JSON text",
			body:       `{"messages":[{"content":"<helicone-prompt-input key=\"q\">say \"hi\" {{x}}</helicone-prompt-input>"}]}`,
			wantBody:   `{"messages":[{"content":"say \"hi\" {{x}}"}]}`,
			wantTp:     `{"messages":[{"content":"<helicone-prompt-input key=\"q\" />"}]}`,
			wantInputs: map[string]string{"q": `say "hi" {{x}}`},
		},
		{
			name:     "no markers: unchanged",
			body:     `{"messages": [{"content": "plain"}]}`,
			wantBody: `{"messages": [{"content": "plain"}]}`,
			wantTp:   `{"messages": [{"content": "plain"}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := prompt.ExtractMarkers([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Body) != tt.wantBody {
				t.Errorf("body\n got %s\nwant %s", m.Body, tt.wantBody)
			}
			if string(m.Template) != tt.wantTp {
				t.Errorf("template\n got %s\nwant %s", m.Template, tt.wantTp)
			}
			if d := cmp.Diff(tt.wantInputs, m.Inputs); d != "" {
				t.Errorf("inputs (-want +got):\n%s", d)
			}
		})
	}
	if _, err := prompt.ExtractMarkers([]byte(`{"a":"<helicone-prompt-input key=\"x\">`)); err == nil {
		t.Error("invalid JSON: want an error")
	}
}

// A template versioned from marked calls renders with
// Helicone-Prompt-Variables: the self-closing markers are placeholders,
// as in Helicone's own playground (placeInputValues,
// worker/src/lib/... experiment runner).
func TestRenderFillsSelfClosingMarkers(t *testing.T) {
	v := prompt.Version{ID: "story", Version: 1, Template: prompt.Template{
		Messages: json.RawMessage(`[{"role":"user","content":"About <helicone-prompt-input key=\"topic\" /> in <helicone-prompt-input key=\"lang\"/>"}]`)}}
	out, err := prompt.Render(v, []byte(`{"topic":"the \"sea\"","lang":"French"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"role":"user","content":"About the \"sea\" in French"}]`; string(out.Messages) != want {
		t.Errorf("got %s, want %s", out.Messages, want)
	}
	if got := prompt.Placeholders(v); !cmp.Equal(got, []string{"lang", "topic"}) {
		t.Errorf("placeholders %v", got)
	}
}

func TestTemplateOf(t *testing.T) {
	tpl, ok := prompt.TemplateOf([]byte(`{"model":"claude-x","system":"s","messages":[ {"role":"user","content":"hi"} ],"temperature":1}`))
	if !ok || tpl.Model != "claude-x" || string(tpl.Messages) != `[{"role":"user","content":"hi"}]` || string(tpl.System) != `"s"` {
		t.Errorf("got %+v %v", tpl, ok)
	}
	if _, ok := prompt.TemplateOf([]byte(`{"prompt":"completion"}`)); ok {
		t.Error("a body without messages has no template")
	}
}
