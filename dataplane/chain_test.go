package dataplane

import (
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// chainOf answers the router-level request_headers by naming a fallback
// chain, as Tollgate's processor does for entries on several origins.
func chainOf(value string) func(req *extprocv3.ProcessingRequest) step {
	return func(req *extprocv3.ProcessingRequest) step {
		if req.GetRequestHeaders() != nil {
			return step{resp: reply(req, &extprocv3.CommonResponse{
				HeaderMutation:  mutation([]*corev3.HeaderValueOption{setHdr(FallbackChainHeader, value)}),
				ClearRouteCache: true,
			})}
		}
		return continueAll(req)
	}
}

func authorityOf(req *extprocv3.ProcessingRequest) string {
	for _, v := range req.GetRequestHeaders().GetHeaders().GetHeaders() {
		if v.GetKey() == ":authority" {
			return string(v.GetRawValue())
		}
	}
	return ""
}

// A fallback chain route is one upstream whose priority levels are the
// origins; Envoy's retry priority previous_priorities (update_frequency 1)
// sends each retry to the next level not tried, and back to level 0 once
// all were (previous_priorities.cc). The Host of an attempt is its
// endpoint's (auto_host_rewrite), written when the connection is ready
// (upstream_request.cc, onPoolReady): after the upstream filter saw the
// headers.
func TestFallbackChainMovesAcrossPriorityLevels(t *testing.T) {
	a := newUpstream(t, perAttempt(textReply(503, "a down"), textReply(503, "a down")))
	b := newUpstream(t, perAttempt(textReply(503, "b down"), jsonReply(`{"from":"b"}`)))
	chain := a.URL + " " + b.URL
	h := newHarness(t, harnessOpts{
		script:         chainOf(chain),
		upstreamScript: continueAll,
		config: func(c *Config) {
			fastRetries(c)
			c.FallbackChains = []FallbackChain{{Origins: []string{a.URL, b.URL}}}
		},
	})
	code, _, body := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, retry5xx(3))
	if code != 200 || !strings.Contains(body, `"from":"b"`) {
		t.Fatalf("client got %d %s, want b's second answer", code, body)
	}
	// Levels a, b, a, b: four attempts, two on each origin, each with its
	// own Host and no chain header.
	for n, u := range []*upstream{a, b, a, b} {
		rec := u.next(t)
		if want := strings.TrimPrefix(u.URL, "http://"); rec.host != want {
			t.Errorf("attempt %d: Host %q, want %q", n+1, rec.host, want)
		}
		if rec.header.Get(FallbackChainHeader) != "" {
			t.Errorf("attempt %d: %s reached the upstream", n+1, FallbackChainHeader)
		}
		if rec.path != "/v1/chat/completions" || rec.body != `{"a":1}` {
			t.Errorf("attempt %d: %s %q", n+1, rec.path, rec.body)
		}
	}
	if h.openai.hits.Load() != 0 {
		t.Error("the default route was taken")
	}
	// The upstream filter runs before the host is written: attempt 1 sees
	// the client's Host, each later one the previous attempt's.
	want := []string{h.authority(), strings.TrimPrefix(a.URL, "http://"), strings.TrimPrefix(b.URL, "http://"), strings.TrimPrefix(a.URL, "http://")}
	for n, w := range want {
		if got := authorityOf(h.upstreamStream(t).messages()[0]); got != w {
			t.Errorf("attempt %d: the upstream filter saw :authority %q, want %q", n+1, got, w)
		}
	}
}

// A chain no route serves is the catch-all route's 400, as envoy/*.yaml
// answers it (direct_response), after the request went through the
// filters; no upstream is called.
func TestUnknownFallbackChainIsALocalReply(t *testing.T) {
	a := newUpstream(t, nil)
	h := newHarness(t, harnessOpts{
		script:         chainOf(a.URL + " " + a.URL + "x"),
		upstreamScript: continueAll,
		config:         func(c *Config) { c.FallbackChains = []FallbackChain{{Origins: []string{a.URL, "http://127.0.0.1:1"}}} },
	})
	if code, _, _ := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, nil); code != http.StatusBadRequest {
		t.Errorf("client got %d, want 400", code)
	}
	if a.hits.Load() != 0 || h.openai.hits.Load() != 0 {
		t.Error("an upstream was called")
	}
}

// A chain route's header value names the origins as the processor writes
// them; its levels may be other endpoints (`tollgate dev` serves
// https://api.openai.com from --upstream-openai). Each attempt goes to its
// level with the level's Host, whatever the origin the header named.
func TestFallbackChainLevelsServeOtherOrigins(t *testing.T) {
	a := newUpstream(t, perAttempt(textReply(503, "a down")))
	b := newUpstream(t, perAttempt(jsonReply(`{"from":"b"}`)))
	named := "https://api.openai.com https://b.example"
	h := newHarness(t, harnessOpts{
		script:         chainOf(named),
		upstreamScript: continueAll,
		config: func(c *Config) {
			fastRetries(c)
			c.FallbackChains = []FallbackChain{{Origins: strings.Fields(named), Levels: []string{a.URL, b.URL}}}
		},
	})
	code, _, body := h.do(t, "POST", "/v1/chat/completions", `{"a":1}`, retry5xx(1))
	if code != 200 || !strings.Contains(body, `"from":"b"`) {
		t.Fatalf("client got %d %s, want b's answer", code, body)
	}
	for n, u := range []*upstream{a, b} {
		if rec := u.next(t); rec.host != strings.TrimPrefix(u.URL, "http://") {
			t.Errorf("attempt %d: Host %q, want %q", n+1, rec.host, strings.TrimPrefix(u.URL, "http://"))
		}
	}
	if h.openai.hits.Load() != 0 {
		t.Error("the default route was taken")
	}
}

func TestFallbackChainConfig(t *testing.T) {
	for _, chain := range []FallbackChain{
		{Origins: []string{"http://127.0.0.1:1"}},
		{Origins: []string{"http://127.0.0.1:1", "http://127.0.0.1:2/v1"}},
		{Origins: []string{"http://127.0.0.1:1", "ftp://x"}},
		{Origins: []string{"https://a.example", "https://b.example"}, Levels: []string{"http://127.0.0.1:1"}},
	} {
		if _, err := New(Config{FallbackChains: []FallbackChain{chain}}, nil); err == nil {
			t.Errorf("chain %v accepted", chain)
		}
	}
}
