package processor

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/record"
)

// chainPlane is the local data plane as envoy/ configures it (the link
// received and forwarded as dynamic metadata, the upstream-level filter,
// Envoy's retry headers allowed) with one fallback chain route over two
// loopback mock origins, in front of a processor that allows both. The
// default route goes to a third mock that must stay untouched.
type chainPlane struct {
	front       string
	a, b, deflt *mockprovider.Server
	aURL, bURL  string
	sink        *record.Memory
}

func newChainPlane(t *testing.T) *chainPlane {
	t.Helper()
	cp := &chainPlane{a: mockprovider.New(mockprovider.Options{}), b: mockprovider.New(mockprovider.Options{}), deflt: mockprovider.New(mockprovider.Options{})}
	for _, m := range []struct {
		srv *mockprovider.Server
		url *string
	}{{cp.a, &cp.aURL}, {cp.b, &cp.bURL}} {
		hs := httptest.NewServer(m.srv)
		t.Cleanup(hs.Close)
		*m.url = hs.URL
	}
	deflt := httptest.NewServer(cp.deflt)
	t.Cleanup(deflt.Close)

	var s *Server
	s, cp.sink = newTestServer(t, func(o *Options) { o.AllowedTargetOrigins = []string{cp.aURL, cp.bURL} })
	proxy := dataPlaneFor(t, s, dataplane.Config{
		OpenAIUpstream: deflt.URL, AnthropicUpstream: deflt.URL,
		MessageTimeout: 5 * time.Second, AllowEnvoyHeaderMutation: true,
		EarlyRemoveHeaders:  dataplane.EarlyRemovedHeaders,
		ReceivingNamespaces: []string{LinkNamespace},
		UpstreamFilter: &dataplane.UpstreamFilterConfig{
			Metadata:             map[string]string{dataplane.UpstreamFilterMetadataKey: dataplane.UpstreamFilterMetadataValue},
			ForwardingNamespaces: []string{LinkNamespace},
		},
		FallbackChains: []dataplane.FallbackChain{{Origins: []string{cp.aURL, cp.bURL}}},
		RetryJitter:    func(int64) int64 { return 0 },
		RetrySleep:     func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	fs := httptest.NewServer(proxy)
	t.Cleanup(fs.Close)
	cp.front = fs.URL
	return cp
}

func (cp *chainPlane) post(t *testing.T, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("POST", cp.front+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Helicone's gateway sends each Helicone-Fallbacks entry to its own
// target-url with the entry's headers and bodyKeyOverride, moves on when
// the status is in the entry's onCodes, and answers with the entry that
// stopped it, marked helicone-fallback-index (Helicone's
// worker/src/routers/gatewayRouter.ts, fallBack; the origin plus the
// request's own path, worker/src/lib/clients/ProviderClient.ts,
// buildTargetUrl). Behind Envoy the origins are the priority levels of one
// fallback chain upstream.
func TestCrossOriginFallbacksThroughDataPlane(t *testing.T) {
	for _, status := range []string{"503", "429"} {
		t.Run(status, func(t *testing.T) {
			cp := newChainPlane(t)
			fallbacks := `[{"target-url": "` + cp.aURL + `/ignored/path", "headers": {"authorization": "Bearer sk-a", "` +
				mockprovider.HeaderStatus + `": "` + status + `", "` + mockprovider.HeaderRetryAfter + `": "0", "` + mockprovider.HeaderFailModels + `": "gpt-4o"}, "onCodes": [429, {"from": 500, "to": 599}]},` +
				` {"target-url": "` + cp.bURL + `", "headers": {"authorization": "Bearer sk-b"}, "onCodes": [], "bodyKeyOverride": {"model": "gpt-4o-mini"}}]`
			id := "0192f0c4-5a1e-7cc0-8f00-00000000c4a1"
			resp, body := cp.post(t, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, map[string]string{
				"Helicone-Fallbacks": fallbacks, "Helicone-Request-Id": id, "Authorization": "Bearer sk-app",
				// Retries on top ask for more attempts; a chain makes one per level.
				"Helicone-Retry-Enabled": "true", "Helicone-Retry-Num": "5",
			})
			if resp.StatusCode != 200 || resp.Header.Get("Helicone-Fallback-Index") != "1" || !strings.HasPrefix(gjson.Get(body, "model").String(), "gpt-4o-mini") {
				t.Fatalf("client got %d, index %q, %s: want entry 1's answer", resp.StatusCode, resp.Header.Get("Helicone-Fallback-Index"), body)
			}

			got := map[string][]mockprovider.ReceivedRequest{"a": cp.a.Received(), "b": cp.b.Received(), "default": cp.deflt.Received()}
			if len(got["a"]) != 1 || len(got["b"]) != 1 || len(got["default"]) != 0 {
				t.Fatalf("requests: a %d, b %d, default %d; want 1, 1, 0", len(got["a"]), len(got["b"]), len(got["default"]))
			}
			a, b := got["a"][0], got["b"][0]
			if a.Path != "/v1/chat/completions" || a.Header.Get("Authorization") != "Bearer sk-a" || gjson.GetBytes(a.Body, "model").String() != "gpt-4o" {
				t.Errorf("entry 0 sent %s, key %q, body %s", a.Path, a.Header.Get("Authorization"), a.Body)
			}
			if b.Path != "/v1/chat/completions" || b.Header.Get("Authorization") != "Bearer sk-b" || gjson.GetBytes(b.Body, "model").String() != "gpt-4o-mini" {
				t.Errorf("entry 1 sent %s, key %q, body %s", b.Path, b.Header.Get("Authorization"), b.Body)
			}
			// Entry 0's headers were for entry 0 only.
			if b.Header.Get(mockprovider.HeaderStatus) != "" || b.Header.Get(mockprovider.HeaderFailModels) != "" {
				t.Errorf("entry 0's headers reached entry 1's origin: %v", b.Header)
			}
			for name, reqs := range got {
				for _, r := range reqs {
					for h := range r.Header {
						if l := strings.ToLower(h); strings.HasPrefix(l, "x-tollgate-") || strings.HasPrefix(l, "helicone-") || strings.HasPrefix(l, "x-envoy-") {
							t.Errorf("origin %s received %s", name, h)
						}
					}
				}
			}

			rec := recordOf(t, cp.sink, id)
			if rec.FallbackIndex != 1 || rec.Attempts != 2 || rec.Status != 200 {
				t.Errorf("record fallback_index %d attempts %d status %d, want 1, 2, 200", rec.FallbackIndex, rec.Attempts, rec.Status)
			}
			if host := strings.TrimPrefix(cp.bURL, "http://"); rec.Provider != host || rec.TargetURL != cp.bURL {
				t.Errorf("record provider %q target_url %q, want entry 1's origin %s", rec.Provider, rec.TargetURL, cp.bURL)
			}
			if rec.Model != "gpt-4o" || !strings.HasPrefix(rec.ResponseModel, "gpt-4o-mini") || rec.CostUSD <= 0 {
				t.Errorf("record model %q response_model %q cost %v: want the model that answered priced", rec.Model, rec.ResponseModel, rec.CostUSD)
			}
		})
	}
}

// The record is written once the router-level stream ends, just after the
// client has its answer.
func recordOf(t *testing.T, sink *record.Memory, id string) *record.Record {
	t.Helper()
	for _, r := range sink.WaitFor(1, 5*time.Second) {
		if r.RequestID == id {
			return r
		}
	}
	t.Fatalf("no record for %s", id)
	return nil
}
