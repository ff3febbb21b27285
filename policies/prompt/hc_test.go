package prompt_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/policies/prompt"
)

func TestParseBodyPrompt(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		ok      bool
		want    prompt.BodyPrompt
		wantErr error
	}{
		{name: "plain chat body", body: `{"model":"gpt-4o","messages":[]}`},
		// Helicone tests the fields for JavaScript truth
		// (worker/src/lib/util/aiGateway.ts, attemptModelRequestWithFallback).
		{name: "falsy fields", body: `{"prompt_id":"","version_id":null,"inputs":0,"environment":false}`},
		{name: "full", body: `{"prompt_id":"support","version_id":"3","environment":"production","inputs":{"n":2, "s":"x"}}`, ok: true,
			want: prompt.BodyPrompt{ID: "support", VersionID: "3", Environment: "production", Inputs: map[string]json.RawMessage{"n": json.RawMessage(`2`), "s": json.RawMessage(`"x"`)}}},
		// PromptStore.getPromptVersionId answers "No prompt ID provided"
		// (worker/src/lib/db/PromptStore.ts).
		{name: "inputs without a prompt", body: `{"inputs":{"a":1}}`, ok: true, wantErr: prompt.ErrNoPromptID},
		{name: "inputs not an object", body: `{"prompt_id":"p","inputs":"x"}`, ok: true, wantErr: prompt.ErrInputsNotObject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := prompt.ParseBodyPrompt([]byte(tt.body))
			if ok != tt.ok || !errors.Is(err, tt.wantErr) {
				t.Fatalf("ok %v err %v, want %v %v", ok, err, tt.ok, tt.wantErr)
			}
			if tt.wantErr == nil {
				if d := cmp.Diff(tt.want, got); d != "" {
					t.Errorf("(-want +got):\n%s", d)
				}
			}
		})
	}
	if n := (prompt.BodyPrompt{VersionID: "4"}).VersionNumber(); n != 4 {
		t.Errorf("version number %d", n)
	}
	if n := (prompt.BodyPrompt{ID: "p", VersionID: "p@2"}).VersionNumber(); n != 2 {
		t.Errorf("p@2: version number %d", n)
	}
	if n := (prompt.BodyPrompt{ID: "p", VersionID: "q@2"}).VersionNumber(); n != 0 {
		t.Errorf("another prompt's version: %d", n)
	}
	if n := (prompt.BodyPrompt{VersionID: "0b5d…uuid"}).VersionNumber(); n != 0 {
		t.Errorf("a Helicone version uuid is no Tollgate version: %d", n)
	}
}

// The merge follows HeliconePromptManager.mergePromptBody
// (packages/prompts/HeliconePromptManager.ts) and the variables
// HeliconeTemplateManager (packages/prompts/templates.ts).
func TestCompile(t *testing.T) {
	stored := prompt.Version{ID: "support", Version: 2, Template: prompt.Template{Model: "gpt-4o-mini",
		Messages: json.RawMessage(`[{"role":"system","content":"You help {{hc:company:string}} with {{ hc : count : number }} items, urgent: {{hc:urgent:boolean}}."}]`)}}
	body := `{"prompt_id":"support","version_id":"2","environment":"production","inputs":{"company":"Acme \"Inc\"\n","count":"3","urgent":"YES","q":"where?"},` +
		`"messages":[{"role":"user","content":"{{hc:q:string}} {{hc:unset:string}}"}],"temperature":0.1,` +
		`"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"object","maxItems":"{{hc:count:number}}"}}}}`
	out, err := prompt.Compile([]byte(body), stored, map[string]json.RawMessage{
		"company": json.RawMessage(`"Acme \"Inc\"\n"`), "count": json.RawMessage(`"3"`), "urgent": json.RawMessage(`"YES"`), "q": json.RawMessage(`"where?"`)})
	if err != nil {
		t.Fatal(err)
	}
	// The prompt fields are gone; stored messages first; a variable
	// without an input stays as written (substituteVariables keeps the
	// match); a whole-string variable of response_format takes the input's
	// own JSON (processObjectKV).
	want := `{"messages":[{"role":"system","content":"You help Acme \"Inc\"\n with 3 items, urgent: YES."},{"role":"user","content":"where? {{hc:unset:string}}"}],"temperature":0.1,` +
		`"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"object","maxItems":"3"}}},"model":"gpt-4o-mini"}`
	if string(out) != want {
		t.Errorf("compiled\n got %s\nwant %s", out, want)
	}
	if !json.Valid(out) {
		t.Fatal("not JSON")
	}

	// A type mismatch is Helicone's message, one line per variable.
	_, err = prompt.Compile([]byte(`{"prompt_id":"support","model":"gpt-4o"}`), stored, map[string]json.RawMessage{
		"company": json.RawMessage(`"x"`), "count": json.RawMessage(`"many"`), "urgent": json.RawMessage(`"maybe"`)})
	var bad *prompt.InvalidInputsError
	if !errors.As(err, &bad) || err.Error() != "Variable 'count' is 'number' but got 'many'\nVariable 'urgent' is 'boolean' but got 'maybe'" {
		t.Errorf("mismatch error %v", err)
	}
	// tools: a variable without an input is an error (substituteVariablesJSON).
	_, err = prompt.Compile([]byte(`{"prompt_id":"support","tools":[{"type":"function","function":{"name":"{{hc:fn:string}}"}}]}`), stored, nil)
	if !errors.As(err, &bad) || err.Error() != "Variable 'fn' is 'string' but got 'undefined'" {
		t.Errorf("tools error %v", err)
	}
}

func TestInputFits(t *testing.T) {
	tests := []struct {
		raw, typ string
		want     bool
	}{
		{`12`, "number", true}, {`"12.5"`, "number", true}, {`" 0x1F "`, "number", true}, {`"1e3"`, "number", true},
		{`"Infinity"`, "number", true}, {`true`, "number", true}, {`""`, "number", true},
		{`"inf"`, "number", false}, {`"1_000"`, "number", false}, {`"12abc"`, "number", false}, {`{"a":1}`, "number", false},
		{`true`, "boolean", true}, {`"No"`, "boolean", true}, {`"1"`, "boolean", false}, {`1`, "boolean", false},
		{`{"any":"thing"}`, "string", true}, {`[1]`, "image", true},
	}
	for _, tt := range tests {
		if got := prompt.InputFits(json.RawMessage(tt.raw), tt.typ); got != tt.want {
			t.Errorf("InputFits(%s, %s) = %v, want %v", tt.raw, tt.typ, got, tt.want)
		}
	}
}
