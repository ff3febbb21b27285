package screen

import (
	"encoding/json"
	"testing"
)

// FuzzLastUserInput: any request body is read without a panic; what is
// found is the last message's, a user's, and encodes as the moderation
// request's input.
func FuzzLastUserInput(f *testing.F) {
	for _, seed := range []string{
		string(chat(system, userClean)),
		string(chat(userAttack, `{"role":"assistant","content":"No."}`)),
		`{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":"https://x/y.png"}]}]}`,
		`{"messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`,
		`{"messages":{"role":"user"}}`, `{"messages":[1,2,"x"]}`, `[]`, ``, `{"messages":[`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, ok := lastUserInput(body)
		if !ok {
			if in.moderation != nil || in.text != "" {
				t.Fatalf("nothing found, yet %+v", in)
			}
			return
		}
		if in.moderation == nil {
			t.Fatal("found, yet no moderation input")
		}
		if _, err := json.Marshal(struct {
			Input any `json:"input"`
		}{in.moderation}); err != nil {
			t.Fatal(err)
		}
		if s, isString := in.moderation.(string); isString && s != in.text {
			t.Fatalf("text %q for content %q", in.text, s)
		}
	})
}
