package prompt_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/prompt"
)

func TestValidatePromptID(t *testing.T) {
	for _, id := range []string{"a", "support-answer", "v1.2_x-Y", strings.Repeat("x", 128), "...", ".a", "a.."} {
		if err := prompt.ValidateID(id); err != nil {
			t.Errorf("%q: %v", id, err)
		}
	}
	for _, id := range []string{"", strings.Repeat("x", 129), "a b", "a/b", "{tag}", "é", "a:b", "a\n", ".", ".."} {
		err := prompt.ValidateID(id)
		var fe *prompt.FieldError
		if !errors.As(err, &fe) || fe.Field != "id" || !errors.Is(err, prompt.ErrInvalid) {
			t.Errorf("%q: got %v", id, err)
		}
	}
}

func TestNormalizePromptTemplate(t *testing.T) {
	got, err := prompt.NormalizeTemplate(prompt.Template{
		Model:    " gpt-4o ",
		Messages: json.RawMessage(`[ {"role": "user", "content": "hi"} ]`),
		System:   json.RawMessage(` "be brief" `),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Model != "gpt-4o" || string(got.Messages) != `[{"role":"user","content":"hi"}]` || string(got.System) != `"be brief"` {
		t.Fatalf("got %+v", got)
	}
	if got, err := prompt.NormalizeTemplate(prompt.Template{Messages: json.RawMessage(`[{}]`), System: json.RawMessage(`null`)}); err != nil || got.System != nil {
		t.Fatalf("null system: %+v %v", got, err)
	}

	bad := []struct {
		tpl   prompt.Template
		field string
	}{
		{prompt.Template{}, "messages"},
		{prompt.Template{Messages: json.RawMessage(`null`)}, "messages"},
		{prompt.Template{Messages: json.RawMessage(`[]`)}, "messages"},
		{prompt.Template{Messages: json.RawMessage(`{"role":"user"}`)}, "messages"},
		{prompt.Template{Messages: json.RawMessage(`"hi"`)}, "messages"},
		{prompt.Template{Messages: json.RawMessage(`[{"role":"user"`)}, "messages"},
		{prompt.Template{Messages: json.RawMessage(`[{"role":"user"},"hi"]`)}, "messages[1]"},
		{prompt.Template{Messages: json.RawMessage(`[{}]`), System: json.RawMessage(`{"a":1}`)}, "system"},
		{prompt.Template{Messages: json.RawMessage(`[{}]`), System: json.RawMessage(`42`)}, "system"},
	}
	for _, tc := range bad {
		_, err := prompt.NormalizeTemplate(tc.tpl)
		var fe *prompt.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s / %s: got %v, want a problem with %s", tc.tpl.Messages, tc.tpl.System, err, tc.field)
		}
	}
}

func TestParsePromptVersion(t *testing.T) {
	for in, want := range map[string]int{"": 0, "latest": 0, " 3 ": 3, "1": 1} {
		if got, err := prompt.ParseVersion(in); err != nil || got != want {
			t.Errorf("%q: %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"0", "-1", "x", "1.5", "v2"} {
		_, err := prompt.ParseVersion(in)
		var bh *helicone.BadHeaderError
		if !errors.As(err, &bh) || bh.Header != "Helicone-Prompt-Version" {
			t.Errorf("%q: got %v", in, err)
		}
	}
}

func TestPromptErrorsNameIDAndVersion(t *testing.T) {
	err := error(&prompt.NotFoundError{ID: "faq", Version: 4})
	if !errors.Is(err, prompt.ErrNotFound) || err.Error() != `prompt "faq" version 4 not found` {
		t.Fatalf("got %v", err)
	}
	if err := (&prompt.NotFoundError{ID: "faq"}); err.Error() != `prompt "faq" not found` {
		t.Fatalf("got %v", err)
	}
	ro := error(&prompt.ReadOnlyError{ID: "faq", File: "faq.yaml"})
	if !errors.Is(ro, prompt.ErrReadOnly) || !strings.Contains(ro.Error(), "faq.yaml") {
		t.Fatalf("got %v", ro)
	}
}
