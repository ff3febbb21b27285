package processor

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/policies/tokenlimit"
	"github.com/tollgate-dev/tollgate/provider"
	"github.com/tollgate-dev/tollgate/record"
)

// tinyWindows gives two models small context windows, so that a prompt of
// a few hundred words is over them.
func tinyWindows(o *Options) {
	o.Prices = provider.DefaultPrices().WithOverrides(map[string]map[string]provider.Price{
		provider.OpenAI: {"gpt-4o": {Input: 2.5, Output: 10, Context: 300}, "gpt-4o-mini": {Input: 0.15, Output: 0.6, Context: 100000}},
	})
}

func longChat(model string) string {
	return `{"model":"` + model + `","max_tokens":50,"messages":[{"role":"system","content":"Be brief."},` +
		`{"role":"user","content":"` + strings.Repeat("lorem ipsum dolor sit amet ", 200) + `"}]}`
}

// manyMessages is a chat of more one-word messages than tokenlimit cuts.
func manyMessages(model string) string {
	msg := `{"role":"user","content":"a b"}`
	return `{"model":"` + model + `","max_tokens":50,"messages":[` +
		strings.Repeat(msg+",", tokenlimit.MaxTexts) + msg + `]}`
}

// visionChat is a question and a 300 KB base64 photo.
func visionChat(model string) string {
	return `{"model":"` + model + `","max_tokens":50,"messages":[{"role":"user","content":[{"type":"text","text":"What is in this photo?"},` +
		`{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,` + strings.Repeat("/9j/4AAQSkZJRgABAQ", 300<<10/18) + `"}}]}]}`
}

func props(r *record.Record) map[string]string {
	out := map[string]string{}
	for _, p := range r.Properties {
		out[p.Key] = p.Value
	}
	return out
}

func TestTokenLimitHandler(t *testing.T) {
	tests := []struct {
		name, header, body string
		wantBody           func(t *testing.T, body []byte) // nil: the body goes unchanged
		wantModel          string
		wantProps          map[string]string
		wantWarning        string
	}{
		{name: "no header", body: longChat("gpt-4o"), wantModel: "gpt-4o", wantProps: map[string]string{}},
		{name: "truncate", header: "truncate", body: longChat("gpt-4o"), wantModel: "gpt-4o",
			wantBody: func(t *testing.T, b []byte) {
				if c := gjson.GetBytes(b, "messages.1.content").String(); !strings.HasSuffix(c, "...") || len(c) > 2000 {
					t.Errorf("user content %q", c)
				}
			},
			wantProps: map[string]string{"tollgate-token-limit": "truncated", "tollgate-token-limit-limit": "250", "tollgate-token-limit-model": "gpt-4o"}},
		{name: "middle-out", header: "Middle-Out", body: longChat("gpt-4o"), wantModel: "gpt-4o",
			wantBody: func(t *testing.T, b []byte) {
				if c := gjson.GetBytes(b, "messages.1.content").String(); !strings.HasPrefix(c, "lorem ipsum") || !strings.HasSuffix(c, "sit amet ") {
					t.Errorf("user content %q", c)
				}
			},
			wantProps: map[string]string{"tollgate-token-limit": "middle-out"}},
		{name: "fallback", header: "fallback", body: longChat("gpt-4o,gpt-4o-mini"), wantModel: "gpt-4o-mini",
			wantBody: func(t *testing.T, b []byte) {
				if m := gjson.GetBytes(b, "model").String(); m != "gpt-4o-mini" {
					t.Errorf("model %q", m)
				}
			},
			wantProps: map[string]string{"tollgate-token-limit": "fallback"}},
		{name: "unknown value", header: "shorten", body: longChat("gpt-4o"), wantModel: "gpt-4o", wantProps: map[string]string{},
			wantWarning: `Helicone-Token-Limit-Exception-Handler "shorten" is not truncate, middle-out or fallback; the prompt is sent as is`},
		// Past tokenlimit.MaxTexts a prompt is not cut: sent as is, said so.
		{name: "too many texts", header: "truncate", body: manyMessages("gpt-4o"), wantModel: "gpt-4o",
			wantProps:   map[string]string{"tollgate-token-limit": "over", "tollgate-token-limit-limit": "250"},
			wantWarning: fmt.Sprintf("Helicone-Token-Limit-Exception-Handler the prompt has more than %d texts or messages, too many to cut; it is sent as is", tokenlimit.MaxTexts)},
		{name: "unknown window", header: "truncate", body: longChat("my-finetune"), wantModel: "my-finetune",
			wantProps: map[string]string{"tollgate-token-limit": "unknown-context"}},
		// A photo's base64 is not its tokens: a short question with a large
		// image fits the 300-token window, and is neither cut nor moved to
		// the fallback model.
		{name: "vision truncate", header: "truncate", body: visionChat("gpt-4o"), wantModel: "gpt-4o",
			wantProps: map[string]string{"tollgate-token-limit": "fits"}},
		{name: "vision fallback", header: "fallback", body: visionChat("gpt-4o,gpt-4o-mini"), wantModel: "gpt-4o",
			wantBody: func(t *testing.T, b []byte) {
				if m := gjson.GetBytes(b, "model").String(); m != "gpt-4o" {
					t.Errorf("model %q", m)
				}
				if q := gjson.GetBytes(b, "messages.0.content.0.text").String(); q != "What is in this photo?" {
					t.Errorf("question %q", q)
				}
			},
			wantProps: map[string]string{"tollgate-token-limit": "fits"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, sink := newTestServer(t, tinyWindows)
			hdrs := []string{":method", "POST", ":path", "/v1/chat/completions", "helicone-request-id", requestID}
			if tt.header != "" {
				hdrs = append(hdrs, "helicone-token-limit-exception-handler", tt.header)
			}
			replies, _ := run(s, nil, reqHeaders(false, hdrs...), reqBody(tt.body),
				respHeaders(false, ":status", "200"), respBody(chatResponse, true))
			sent := replies[1].GetRequestBody().GetResponse().GetBodyMutation().GetBody()
			if tt.wantBody == nil {
				if sent != nil {
					t.Fatalf("body replaced: %s", sent)
				}
			} else {
				if !gjson.ValidBytes(sent) {
					t.Fatalf("no valid body sent: %q", sent)
				}
				tt.wantBody(t, sent)
			}
			rec := sink.Records()[0]
			if rec.Model != tt.wantModel {
				t.Errorf("record model %q, want %q", rec.Model, tt.wantModel)
			}
			got := props(rec)
			for k, v := range tt.wantProps {
				if got[k] != v {
					t.Errorf("property %s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
			if len(tt.wantProps) == 0 && len(got) != 0 {
				t.Errorf("properties %v, want none", got)
			}
			if rec.Warnings != tt.wantWarning {
				t.Errorf("warnings %q, want %q", rec.Warnings, tt.wantWarning)
			}
		})
	}
}

// Off the chat paths the header is tolerated with a warning.
func TestTokenLimitHandlerOtherPaths(t *testing.T) {
	s, sink := newTestServer(t, tinyWindows)
	replies, _ := run(s, nil,
		reqHeaders(false, ":method", "POST", ":path", "/v1/embeddings", "helicone-request-id", requestID,
			"helicone-token-limit-exception-handler", "truncate"),
		reqBody(`{"model":"gpt-4o","input":"`+strings.Repeat("word ", 2000)+`"}`),
		respHeaders(false, ":status", "200"), respBody(`{"data":[],"usage":{"prompt_tokens":1,"total_tokens":1}}`, true))
	if b := replies[1].GetRequestBody().GetResponse().GetBodyMutation().GetBody(); b != nil {
		t.Fatalf("body replaced: %.80s", b)
	}
	if w := sink.Records()[0].Warnings; !strings.Contains(w, "Helicone-Token-Limit-Exception-Handler applies to chat completions") {
		t.Errorf("warnings %q", w)
	}
}
