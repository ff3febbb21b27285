package provider

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// Seeds beyond these live in testdata/fuzz/<FuzzName>/ and run as ordinary
// tests; add crashers found by `go test -fuzz` there.

func FuzzSSEParser(f *testing.F) {
	f.Add([]byte(tricky), uint(5))
	f.Add(testdata(f, "anthropic_stream.sse"), uint(300))
	f.Fuzz(func(t *testing.T, data []byte, cut uint) {
		i := int(cut % uint(len(data)+1))
		whole := parseAll(&SSEParser{}, data)
		split := parseAll(&SSEParser{}, data[:i], data[i:])
		if !reflect.DeepEqual(whole, split) {
			t.Fatalf("split at %d changed the events:\nwhole %q\nsplit %q", i, whole, split)
		}
		// A small limit exercises the dropping paths on short inputs.
		small := parseAll(&SSEParser{limit: 8}, data)
		smallSplit := parseAll(&SSEParser{limit: 8}, data[:i], data[i:])
		if !reflect.DeepEqual(small, smallSplit) {
			t.Fatalf("limit 8, split at %d changed the events:\nwhole %q\nsplit %q", i, small, smallSplit)
		}
		for _, e := range small {
			if len(e.Data) > 8 {
				t.Fatalf("event over the limit dispatched: %q", e.Data)
			}
		}
	})
}

func FuzzParseRequest(f *testing.F) {
	f.Add(testdata(f, "req_chat.json"))
	f.Add([]byte(`{"model":"claude-3-haiku","metadata":{"user_id":"u"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseRequest(body)
		isObject := json.Valid(body) && firstByte(body) == '{'
		if isBlank(body) {
			isObject = true
		}
		if (err == nil) != isObject {
			t.Fatalf("err = %v, but encoding/json says object = %v", err, isObject)
		}
		if !utf8.ValidString(req.Model) || !utf8.ValidString(req.User) {
			t.Fatalf("invalid UTF-8 kept: %+v", req)
		}
		if err != nil || isBlank(body) {
			return
		}
		// Where the document is unambiguous (no repeated "model" key), the
		// model must agree with encoding/json's reading.
		if n := modelKeys(body); n == 0 || n == 1 {
			var std map[string]any
			if json.Unmarshal(body, &std) == nil {
				want, _ := std["model"].(string)
				if req.Model != want {
					t.Fatalf("model = %q, encoding/json says %q", req.Model, want)
				}
			}
		}
	})
}

// modelKeys counts the top-level "model" keys of a JSON object as
// encoding/json reads them (escapes decoded); -1 if it cannot tell.
func modelKeys(body []byte) int {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		return -1
	}
	n := 0
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return -1
		}
		if k == "model" {
			n++
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return -1
		}
	}
	return n
}

func FuzzParseResponse(f *testing.F) {
	for _, name := range []string{"resp_openai_chat.json", "resp_openai_responses.json", "resp_anthropic_messages.json"} {
		f.Add(testdata(f, name), name == "resp_anthropic_messages.json")
	}
	f.Add([]byte(usageShapes[3].body), false) // an array of Gemini responses
	f.Fuzz(func(t *testing.T, body []byte, anthropic bool) {
		prov := OpenAI
		if anthropic {
			prov = Anthropic
		}
		u, model, err := ParseResponse(prov, body)
		if (err == nil) != (isBlank(body) || json.Valid(body)) {
			t.Fatalf("err = %v, json.Valid = %v", err, json.Valid(body))
		}
		checkUsage(t, u)
		if !utf8.ValidString(model) {
			t.Fatalf("invalid UTF-8 model %q", model)
		}
		if c := DefaultPrices(); c != nil {
			if p, ok := c.Lookup(prov, model); ok && p.Cost(u) < 0 {
				t.Fatal("negative cost")
			}
		}
	})
}

func FuzzStreamAccumulator(f *testing.F) {
	f.Add(testdata(f, "openai_chat_stream.sse"), uint(100), false)
	f.Add(testdata(f, "anthropic_stream.sse"), uint(700), true)
	f.Add(testdata(f, "responses_stream.sse"), uint(1500), false)
	f.Add([]byte("data: "+usageShapes[0].body+"\r\n\r\n"), uint(60), false) // Gemini alt=sse
	f.Fuzz(func(t *testing.T, data []byte, cut uint, anthropic bool) {
		prov := OpenAI
		if anthropic {
			prov = Anthropic
		}
		i := int(cut % uint(len(data)+1))
		whole := accumulate(prov, data)
		split := accumulate(prov, data[:i], data[i:])
		if whole != split {
			t.Fatalf("split at %d changed the result:\nwhole %+v\nsplit %+v", i, whole, split)
		}
		checkUsage(t, whole.Usage)
		if !utf8.ValidString(whole.Model) || !utf8.ValidString(whole.Text) {
			t.Fatalf("invalid UTF-8 kept: %+v", whole)
		}
	})
}

func checkUsage(t *testing.T, u Usage) {
	t.Helper()
	if u.PromptTokens < 0 || u.CompletionTokens < 0 || u.CachedTokens < 0 || u.CacheWriteTokens < 0 || u.ReasoningTokens < 0 {
		t.Fatalf("negative count: %+v", u)
	}
}

// FuzzAzurePath checks the Azure path parser (request paths are the
// client's): a deployment it returns is one path segment of valid UTF-8,
// the query never changes the answer, and Classify agrees with it.
func FuzzAzurePath(f *testing.F) {
	f.Add("/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21")
	f.Add("/openai/deployments/my%20dep/embeddings")
	f.Add("/openai/deployments/a%2Fb/completions")
	f.Add("/openai/responses")
	f.Fuzz(func(t *testing.T, path string) {
		d, ep, ok := AzurePath(path)
		if !ok && (d != "" || ep != EndpointUnknown) {
			t.Fatalf("not Azure, yet (%q, %v)", d, ep)
		}
		if ok && (!utf8.ValidString(d) || strings.ContainsAny(d, "/\x00") || len(d) > maxDeployment) {
			t.Fatalf("deployment %q is not one clean segment", d)
		}
		if !strings.Contains(path, "?") {
			d2, ep2, ok2 := AzurePath(path + "?api-version=2024-10-21")
			if d2 != d || ep2 != ep || ok2 != ok {
				t.Fatalf("the query changed the answer: (%q, %v, %v) vs (%q, %v, %v)", d, ep, ok, d2, ep2, ok2)
			}
		}
		if prov, cep := Classify(path); ok && (prov != OpenAI || cep != ep) {
			t.Fatalf("Classify = (%q, %v), AzurePath says %v", prov, cep, ep)
		}
	})
}

// FuzzUsageEventFilter: however the stream is cut into chunks, the client
// gets the upstream's events in order, less some usage events (never any
// other event), and a stream without usage events byte for byte.
func FuzzUsageEventFilter(f *testing.F) {
	f.Add([]byte(sseOf("\n", chunkRole, chunkText, chunkUsage, chunkDone)), uint(40), uint(300))
	f.Add([]byte(sseOf("\r\n", chunkAzureFilter, chunkUsage, chunkDone)), uint(7), uint(7))
	f.Add([]byte(tricky), uint(5), uint(60))
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint) {
		i := int(cut1 % uint(len(data)+1))
		j := i + int(cut2%uint(len(data)-i+1))
		var fl UsageEventFilter
		var got []byte
		for k, c := range [][]byte{data[:i], data[i:j], data[j:]} {
			out, _ := fl.Filter(bytes.Clone(c), k == 2)
			got = append(got, out...)
		}
		in := parseAll(&SSEParser{}, data)
		outEvents := parseAll(&SSEParser{}, got)
		k := 0
		for _, e := range in {
			if k < len(outEvents) && outEvents[k].Name == e.Name && outEvents[k].Data == e.Data {
				k++
				continue
			}
			if !isUsageData([]byte(e.Data)) {
				t.Fatalf("cut at %d, %d: event %q lost or changed\nin  %q\nout %q", i, j, e.Data, data, got)
			}
		}
		if k != len(outEvents) {
			t.Fatalf("cut at %d, %d: events the upstream did not send: %q\nin  %q\nout %q", i, j, outEvents[k:], data, got)
		}
		if fl.Removed() == 0 && !bytes.Equal(got, data) {
			t.Fatalf("cut at %d, %d: nothing removed but bytes changed\nin  %q\nout %q", i, j, data, got)
		}
	})
}
