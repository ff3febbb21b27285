package attempts

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/helicone"
)

func TestParseFallbacksShortForm(t *testing.T) {
	p, err := ParseFallbacks(`[{"model": "gpt-4o-mini"}, {"model": "gpt-3.5-turbo"}]`, "")
	if err != nil {
		t.Fatal(err)
	}
	if !p.OriginalFirst || p.Retries() != 2 {
		t.Fatalf("OriginalFirst=%v Retries=%d, want true, 2", p.OriginalFirst, p.Retries())
	}
	// Attempt 1 is the request as sent; attempts 2 and 3 the entries;
	// further attempts stay on the last entry.
	for attempt, want := range map[int]int{1: 0, 2: 1, 3: 2, 4: 2, 0: 0} {
		if got := p.Index(attempt); got != want {
			t.Errorf("Index(%d) = %d, want %d", attempt, got, want)
		}
	}
	if p.Entry(0) != nil {
		t.Error("index 0 of the short form must be the request as sent")
	}
	if e := p.Entry(2); e == nil || e.Model != "gpt-3.5-turbo" {
		t.Errorf("Entry(2) = %+v", e)
	}
	// Default codes: 429 and 5xx gateway errors move on; the last entry
	// never does.
	for _, tc := range []struct {
		index, status int
		want          bool
	}{{0, 429, true}, {0, 500, true}, {0, 400, false}, {1, 503, true}, {2, 503, false}, {0, 200, false}} {
		if got := p.MovesOn(tc.index, tc.status); got != tc.want {
			t.Errorf("MovesOn(%d, %d) = %v, want %v", tc.index, tc.status, got, tc.want)
		}
	}
}

// The plainest short form names models only, comma-separated: the same
// plan as the JSON list of {"model": …} entries.
func TestParseFallbacksModelList(t *testing.T) {
	for _, v := range []string{"claude-sonnet-4-5", " gpt-4o-mini , claude-sonnet-4-5 "} {
		p, err := ParseFallbacks(v, "")
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		want := []FallbackEntry{}
		for _, n := range strings.Split(v, ",") {
			want = append(want, FallbackEntry{Model: strings.TrimSpace(n)})
		}
		if !p.OriginalFirst || !cmp.Equal(want, p.Entries) {
			t.Errorf("%q: OriginalFirst=%v entries %+v, want %+v", v, p.OriginalFirst, p.Entries, want)
		}
	}
}

func TestParseFallbacksGatewayForm(t *testing.T) {
	p, err := ParseFallbacks("", `[
	  {"target-url": "https://api.openai.com/v1", "headers": {"Authorization": "Bearer sk-a"}, "onCodes": [401, {"from": 500, "to": 599}]},
	  {"target-url": "https://API.openai.com", "headers": {"Authorization": "Bearer sk-b"}, "onCodes": [], "bodyKeyOverride": {"model": "gpt-4o-mini", "temperature": 0}}
	]`)
	if err != nil {
		t.Fatal(err)
	}
	if p.OriginalFirst || p.Retries() != 1 {
		t.Fatalf("OriginalFirst=%v Retries=%d, want false, 1", p.OriginalFirst, p.Retries())
	}
	want := []FallbackEntry{
		{TargetOrigin: "https://api.openai.com", Headers: [][2]string{{"authorization", "Bearer sk-a"}},
			OnCodes: []CodeRange{{401, 401}, {500, 599}}},
		{TargetOrigin: "https://api.openai.com", Headers: [][2]string{{"authorization", "Bearer sk-b"}},
			BodyOverride: [][2]string{{"model", `"gpt-4o-mini"`}, {"temperature", "0"}}},
	}
	if diff := cmp.Diff(want, p.Entries); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if e := p.Entry(0); e == nil || e.Headers[0][1] != "Bearer sk-a" {
		t.Errorf("Entry(0) must be the first entry, got %+v", e)
	}
	if !p.MovesOn(0, 401) || !p.MovesOn(0, 502) || p.MovesOn(0, 429) || p.MovesOn(1, 500) {
		t.Error("onCodes not honoured")
	}
	if diff := cmp.Diff([]string{"https://api.openai.com", "https://api.openai.com"}, p.AttemptOrigins("https://api.openai.com")); diff != "" {
		t.Errorf("origins (-want +got):\n%s", diff)
	}
}

func TestParseFallbacksErrors(t *testing.T) {
	tests := []struct{ short, gateway, want string }{
		{`[{"model":"a"}]`, `[{"model":"b"}]`, "Helicone-Fallback and Helicone-Fallbacks cannot both be sent"},
		{`{"model":"a"}`, "", "Helicone-Fallback must be a JSON array"},
		{`[]`, "", "Helicone-Fallback must list at least one entry"},
		{`gpt-4o-mini,,claude-sonnet-4-5`, "", `Helicone-Fallback entry 1: "" is not a model name`},
		{`gpt 4o`, "", `entry 0: "gpt 4o" is not a model name`},
		{strings.TrimSuffix(strings.Repeat("m,", MaxFallbacks+1), ","), "", "at most 10 are allowed"},
		{`[{"model":""}]`, "", `entry 0: "model" must be a non-empty model name`},
		{`[{"model":"a"},{"modle":"b"}]`, "", `entry 1: json: unknown field "modle"`},
		{"", `[{"target-url":"ftp://x"}]`, `Helicone-Fallbacks entry 0: "target-url" must be an absolute http(s) URL`},
		{"", `[{"headers":{"Host":"evil"}}]`, `"Host" cannot be set by a fallback`},
		{"", `[{"headers":{"Helicone-Auth":"x"}}]`, `cannot be set by a fallback`},
		{"", `[{"headers":{"x-envoy-max-retries":"99"}}]`, `cannot be set by a fallback`},
		{"", `[{"headers":{"bad name":"x"}}]`, `is not a valid header name`},
		{"", `[{"headers":{"x-a":"1\r\nx-b: 2"}}]`, `contains a control character`},
		{"", `[{"onCodes":[99]}]`, `"onCodes": 99 is not an HTTP status`},
		{"", `[{"onCodes":[{"from":600,"to":500}]}]`, `is not a range of HTTP statuses`},
		{"", `[{"onCodes":["5xx"]}]`, `"onCodes" entries are statuses`},
		{"", `[{"bodyKeyOverride":{"a.b":1}}]`, `must be a plain top-level field name`},
		{`[` + strings.TrimSuffix(strings.Repeat(`{"model":"m"},`, MaxFallbacks+1), ",") + `]`, "", "at most 10 are allowed"},
	}
	for _, tt := range tests {
		_, err := ParseFallbacks(tt.short, tt.gateway)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseFallbacks(%q, %q) err = %v, want it to contain %q", tt.short, tt.gateway, err, tt.want)
			continue
		}
		if _, ok := err.(*helicone.BadHeaderError); !ok {
			t.Errorf("err is %T, want *helicone.BadHeaderError", err)
		}
	}
}

func TestFallbackRewrite(t *testing.T) {
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi \"there\""}],"temperature":1}`)
	e := FallbackEntry{Model: "gpt-4o-mini", BodyOverride: [][2]string{{"temperature", "0"}, {"max_tokens", "5"}}}
	out, err := e.Rewrite(body)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("rewritten body is not JSON: %v\n%s", err, out)
	}
	want := map[string]any{"model": "gpt-4o-mini", "temperature": 0.0, "max_tokens": 5.0,
		"messages": []any{map[string]any{"role": "user", "content": `hi "there"`}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if string(body) != `{"model":"gpt-4o","messages":[{"role":"user","content":"hi \"there\""}],"temperature":1}` {
		t.Error("Rewrite changed its input")
	}
	// Nothing to change, or not a JSON object: the body is kept.
	for _, b := range []string{`[1,2]`, `not json`} {
		if out, _ := e.Rewrite([]byte(b)); string(out) != b {
			t.Errorf("Rewrite(%q) = %q, want it unchanged", b, out)
		}
	}
}

// FuzzParseFallbacks: the parser of an untrusted header never panics, and
// whatever it accepts is usable: indexes stay in range and rewriting a JSON
// body keeps it JSON.
func FuzzParseFallbacks(f *testing.F) {
	f.Add(`[{"model":"gpt-4o-mini"}]`, true)
	f.Add(`[{"target-url":"https://api.openai.com","headers":{"authorization":"Bearer x"},"onCodes":[429,{"from":500,"to":599}],"bodyKeyOverride":{"model":"m"}}]`, false)
	f.Fuzz(func(t *testing.T, header string, short bool) {
		var p *FallbackPlan
		var err error
		if short {
			p, err = ParseFallbacks(header, "")
		} else {
			p, err = ParseFallbacks("", header)
		}
		if err != nil || p == nil {
			return
		}
		if p.Retries() < 0 || p.Retries() > MaxFallbacks {
			t.Fatalf("Retries() = %d", p.Retries())
		}
		for attempt := 1; attempt <= p.Retries()+2; attempt++ {
			idx := p.Index(attempt)
			e := p.Entry(idx)
			if e == nil {
				continue
			}
			out, err := e.Rewrite([]byte(`{"model":"x","messages":[]}`))
			if err == nil && !json.Valid(out) {
				t.Fatalf("entry %d produced invalid JSON %q", idx, out)
			}
			for _, h := range e.Headers {
				if strings.ContainsAny(h[1], "\r\n\x00") || !validHeaderName(h[0]) {
					t.Fatalf("unsafe header %q accepted", h)
				}
			}
		}
	})
}

// Helicone forwards each Helicone-Fallbacks entry to its own target-url,
// the first included (worker/src/routers/gatewayRouter.ts, fallBack); the
// short form sends the request as it came first. AttemptOrigins is the
// origin of every attempt, in order, with route for the request's own.
func TestAttemptOrigins(t *testing.T) {
	const route = "https://api.openai.com"
	tests := []struct {
		short, gateway string
		want           []string
	}{
		{"", `[{"target-url": "https://api.openai.com"}, {"target-url": "https://API.Together.xyz/v1"}]`,
			[]string{route, "https://api.together.xyz"}},
		{"", `[{"target-url": "https://api.together.xyz"}, {"model": "m"}, {"target-url": "https://api.groq.com"}]`,
			[]string{"https://api.together.xyz", route, "https://api.groq.com"}},
		{`[{"model": "m"}, {"target-url": "https://api.together.xyz"}]`, "",
			[]string{route, route, "https://api.together.xyz"}},
	}
	for _, tt := range tests {
		p, err := ParseFallbacks(tt.short, tt.gateway)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, p.AttemptOrigins(route)); diff != "" {
			t.Errorf("%s%s: origins (-want +got):\n%s", tt.short, tt.gateway, diff)
		}
	}
}

// Below ServerErrorsBefore an attempt moves on only on a 5xx, whatever its
// onCodes or the defaults say.
func TestMovesOnServerErrorsBefore(t *testing.T) {
	p, err := ParseFallbacks("", `[{}, {"onCodes":[429, 503]}, {}, {}]`)
	if err != nil {
		t.Fatal(err)
	}
	p.ServerErrorsBefore = 2
	for _, tc := range []struct {
		index, status int
		want          bool
	}{
		{0, 429, false}, {0, 503, true}, {1, 429, false}, {1, 503, true}, {1, 502, false}, {2, 429, true},
	} {
		if got := p.MovesOn(tc.index, tc.status); got != tc.want {
			t.Errorf("MovesOn(%d, %d) = %v, want %v", tc.index, tc.status, got, tc.want)
		}
	}
}
