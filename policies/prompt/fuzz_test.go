package prompt_test

import (
	"encoding/json"
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
