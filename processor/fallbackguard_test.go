package processor

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// The attempts before a translated fallback (sent on the gateway's key)
// move on only on a server error: a client whose own key answers 429 to
// every call (no quota) gets that 429, not the other provider's answer on
// the gateway's key. A 503 still falls back.
func TestTranslatedFallbackNotOnClientErrorsThroughDataPlane(t *testing.T) {
	const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	for _, tc := range []struct {
		name      string
		status    string // the client's own provider's, for its own model
		fallback  string // Helicone-Fallback(s)
		header    string
		want      int
		wantIndex int32
	}{
		{"429 by default", "429", "claude-sonnet-4-5", "helicone-fallback", 429, 0},
		{"429 in the gateway form", "429", `[{},{"model":"claude-sonnet-4-5"}]`, "helicone-fallbacks", 429, 0},
		{"503 falls back", "503", "claude-sonnet-4-5", "helicone-fallback", 200, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTranslatedPlane(t)
			req, _ := http.NewRequest("POST", tp.front+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("content-type", "application/json")
			req.Header.Set("authorization", "Bearer sk-client-no-quota")
			req.Header.Set(tc.header, tc.fallback)
			req.Header.Set(mockprovider.HeaderFailModels, "gpt-4o-mini")
			req.Header.Set(mockprovider.HeaderStatus, tc.status)
			resp, err := tp.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("client got %d %s, want %d", resp.StatusCode, b, tc.want)
			}
			recs := tp.sink.Records()
			if len(recs) != 1 || recs[0].FallbackIndex != tc.wantIndex {
				t.Fatalf("records %+v, want one answered by fallback index %d", recs, tc.wantIndex)
			}
			if tc.want == 429 && (recs[0].Attempts != 1 || recs[0].Provider != "openai") {
				t.Errorf("record attempts %d provider %q: the gateway's key must not have been used", recs[0].Attempts, recs[0].Provider)
			}
		})
	}
}

// onCodes naming any client error on an entry before a translated one are
// refused before any call, naming the entry.
func TestTranslatedFallbackRefusesClientErrorOnCodes(t *testing.T) {
	for _, codes := range []string{`[429]`, `[{"from":400,"to":499}]`, `[408, 500]`} {
		s, sink := newTestServer(t, func(o *Options) { o.ProviderKeys = map[string]string{"anthropic": "sk-ant-gateway"} })
		replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "authorization", "Bearer sk-client",
			"helicone-fallbacks", `[{"onCodes":`+codes+`},{"model":"claude-sonnet-4-5"}]`),
			reqBody(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
		ir := replies[0].GetImmediateResponse()
		if ir == nil || ir.GetStatus().GetCode() != 400 || !strings.Contains(string(ir.GetBody()), "Helicone-Fallbacks entry 0: onCodes") ||
			!strings.Contains(string(ir.GetBody()), "include a client error (4xx)") {
			t.Errorf("onCodes %s: replies %v, want a 400 naming entry 0", codes, replies)
		}
		if recs := sink.Records(); len(recs) != 1 || recs[0].Attempts != 0 {
			t.Errorf("onCodes %s: records %+v, want one with no attempt", codes, recs)
		}
	}
}
