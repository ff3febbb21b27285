package processor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/policies/vault"
)

// providerProxyKey is the test proxy key stored for provider p.
func providerProxyKey(p string) string {
	return "sk-helicone-proxy-" + fmt.Sprintf("%-7.7s", p+"xxxxxxx") + "-hijklmn-opqrstu-vwxyz23-0b5c7a4e-2d7b-4f4e-9b1a-1c2d3e4f5a6b"
}

// providerVault holds one key per provider, each standing for the
// provider key "real-<provider>"; the azure one may go to one resource.
func providerVault(t *testing.T) func(*Options) {
	t.Helper()
	var file strings.Builder
	file.WriteString("keys:\n")
	for _, p := range []string{"openai", "anthropic", "azure", "gemini", "together", "groq"} {
		sum := sha256.Sum256([]byte(providerProxyKey(p)))
		origins := "[]"
		if p == "azure" || p == "openai" { // an openai key may name an Azure resource too
			origins = "[https://res.openai.azure.com]"
		}
		fmt.Fprintf(&file, "- {id: key-%s, tenant: t, provider: %s, origins: %s, proxyKeySHA256: %s, providerKey: real-%s}\n",
			p, p, origins, hex.EncodeToString(sum[:]), p)
	}
	v, err := vault.Parse([]byte(file.String()))
	if err != nil {
		t.Fatal(err)
	}
	return func(o *Options) {
		o.Vault = func() *vault.Vault { return v }
		o.AllowedTargetOrigins = []string{"https://res.openai.azure.com", "https://api.together.xyz", "https://api.groq.com"}
	}
}

// A proxy key stored for a provider reaches that provider in the header
// it reads, whatever header the client put it in (the OpenAI SDK sends
// Authorization to Groq and Together, Google's SDKs send x-goog-api-key,
// Gemini's REST examples use ?key=, Helicone's vault users send
// Authorization to Azure, which reads api-key); the header it came in
// goes no further.
func TestProxyKeyGoesInTheProvidersHeader(t *testing.T) {
	for _, tc := range []struct {
		name, provider, path string
		sentIn, sent         string // header and value ("" header: in the path)
		extra                []string
		want, wantValue      string // the header set and its value
		wantPath             string // the :path set ("" none)
	}{
		{"together, bearer", "together", "/together/v1/chat/completions", "authorization", "Bearer ", nil, "authorization", "Bearer real-together", ""},
		{"together, x-api-key", "together", "/together/v1/chat/completions", "x-api-key", "", nil, "authorization", "Bearer real-together", ""},
		{"groq", "groq", "/groq/openai/v1/chat/completions", "authorization", "Bearer ", nil, "authorization", "Bearer real-groq", ""},
		{"gemini native", "gemini", "/v1beta/models/gemini-2.5-flash:generateContent", "x-goog-api-key", "", nil, "x-goog-api-key", "real-gemini", ""},
		{"gemini stable", "gemini", "/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "x-goog-api-key", "", nil, "x-goog-api-key", "real-gemini", ""},
		{"gemini, bearer on the native API", "gemini", "/v1beta/models/gemini-2.5-flash:generateContent", "authorization", "Bearer ", nil, "x-goog-api-key", "real-gemini", ""},
		{"gemini openai-compatible", "gemini", "/v1beta/openai/chat/completions", "authorization", "Bearer ", nil, "authorization", "Bearer real-gemini", ""},
		{"gemini key= query", "gemini", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=", "", "", nil,
			"x-goog-api-key", "real-gemini", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"},
		{"gemini key= first", "gemini", "/v1beta/models/gemini-2.5-flash:generateContent?key=", "", "", nil,
			"x-goog-api-key", "real-gemini", "/v1beta/models/gemini-2.5-flash:generateContent"},
		{"azure, bearer", "azure", "/openai/deployments/d/chat/completions?api-version=2024-10-21", "authorization", "Bearer ",
			[]string{"helicone-openai-api-base", "https://res.openai.azure.com"}, "api-key", "real-azure", ""},
		{"azure, api-key", "azure", "/openai/deployments/d/chat/completions?api-version=2024-10-21", "api-key", "",
			[]string{"helicone-openai-api-base", "https://res.openai.azure.com"}, "api-key", "real-azure", ""},
		{"together by its origin", "together", "/v1/chat/completions", "authorization", "Bearer ",
			[]string{"helicone-target-url", "https://api.together.xyz"}, "authorization", "Bearer real-together", ""},
		{"anthropic, bearer", "anthropic", "/v1/messages", "authorization", "Bearer ", nil, "x-api-key", "real-anthropic", ""},
		// Groq's own path through its origin looks like Azure's v1 API.
		{"groq by its origin", "groq", "/openai/v1/chat/completions", "authorization", "Bearer ",
			[]string{"helicone-target-url", "https://api.groq.com"}, "authorization", "Bearer real-groq", ""},
		{"openai key on an Azure resource", "openai", "/openai/deployments/d/chat/completions?api-version=2024-10-21", "api-key", "",
			[]string{"helicone-openai-api-base", "https://res.openai.azure.com"}, "api-key", "real-openai", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, sink := newTestServer(t, providerVault(t))
			kv := []string{":method", "POST", ":path", tc.path}
			if tc.sentIn == "" {
				kv[3] += providerProxyKey(tc.provider)
			} else {
				kv = append(kv, tc.sentIn, tc.sent+providerProxyKey(tc.provider))
			}
			replies, _ := run(s, nil, reqHeaders(false, append(kv, tc.extra...)...))
			if imm := replies[0].GetImmediateResponse(); imm != nil {
				t.Fatalf("refused: %s", imm.GetBody())
			}
			cr := replies[0].GetRequestHeaders().GetResponse()
			if got := setValue(cr, tc.want); got != tc.wantValue {
				t.Errorf("%s set to %q, want %q", tc.want, got, tc.wantValue)
			}
			if tc.sentIn != "" && tc.sentIn != tc.want && !slices.Contains(cr.GetHeaderMutation().GetRemoveHeaders(), tc.sentIn) {
				t.Errorf("%s (the proxy key) is not removed", tc.sentIn)
			}
			if got := setValue(cr, ":path"); got != tc.wantPath {
				t.Errorf(":path set to %q, want %q", got, tc.wantPath)
			}
			for _, h := range cr.GetHeaderMutation().GetSetHeaders() {
				if strings.Contains(string(h.GetHeader().GetRawValue()), "sk-helicone-proxy") {
					t.Errorf("%s keeps the proxy key", h.GetHeader().GetKey())
				}
			}
			if recs := sink.Records(); len(recs) > 0 && strings.Contains(recs[0].Path, "key=") {
				t.Errorf("record path %q", recs[0].Path)
			}
		})
	}
}

// A proxy key is usable only for the provider it was stored for: an
// OpenAI key must not reach Together, Groq or Google because their routes
// speak OpenAI's format, nor a Gemini key OpenAI because Gemini's stable
// paths start like OpenAI's.
func TestProxyKeyOnlyForItsProvider(t *testing.T) {
	for _, tc := range []struct{ provider, path string }{
		{"openai", "/together/v1/chat/completions"},
		{"openai", "/groq/openai/v1/chat/completions"},
		{"openai", "/v1beta/openai/chat/completions"},
		{"openai", "/v1/models/gemini-2.5-flash:generateContent"},
		{"together", "/v1/chat/completions"},
		{"together", "/groq/openai/v1/chat/completions"},
		{"groq", "/together/v1/chat/completions"},
		{"gemini", "/v1/chat/completions"},
		{"gemini", "/v1/models/gpt-4o"},
		{"anthropic", "/v1beta/models/gemini-2.5-flash:generateContent"},
		{"azure", "/openai/deployments/d/chat/completions"}, // no Azure origin named: OpenAI's route
	} {
		t.Run(tc.provider+" "+tc.path, func(t *testing.T) {
			s, _ := newTestServer(t, providerVault(t))
			replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", tc.path, "authorization", "Bearer "+providerProxyKey(tc.provider)))
			imm := replies[0].GetImmediateResponse()
			if imm == nil || imm.GetStatus().GetCode() != 403 || !strings.Contains(string(imm.GetBody()), "key-"+tc.provider+" may not be sent") {
				t.Fatalf("want a 403 naming the key, got %v", replies[0])
			}
			if strings.Contains(string(imm.GetBody()), "real-") {
				t.Fatalf("the body names the provider key: %s", imm.GetBody())
			}
		})
	}
}

// Two proxy keys, one in a header and one in the key= query parameter:
// one would be swapped and the other sent on, so the call is refused.
func TestProxyKeyInQueryAndHeaderIsRefused(t *testing.T) {
	s, _ := newTestServer(t, providerVault(t))
	replies, _ := run(s, nil, reqHeaders(false, ":method", "POST",
		":path", "/v1beta/models/m:generateContent?key="+providerProxyKey("gemini"), "x-goog-api-key", providerProxyKey("gemini")))
	imm := replies[0].GetImmediateResponse()
	if imm == nil || imm.GetStatus().GetCode() != 400 || !strings.Contains(string(imm.GetBody()), "both hold a key-vault proxy key") {
		t.Fatalf("want a 400, got %v", replies[0])
	}
}

// Two proxy keys in key= parameters are refused likewise.
func TestTwoProxyKeysInTheQueryAreRefused(t *testing.T) {
	s, _ := newTestServer(t, providerVault(t))
	replies, _ := run(s, nil, reqHeaders(false, ":method", "POST",
		":path", "/v1beta/models/m:generateContent?key="+providerProxyKey("gemini")+"&key="+providerProxyKey("openai")))
	imm := replies[0].GetImmediateResponse()
	if imm == nil || imm.GetStatus().GetCode() != 400 || !strings.Contains(string(imm.GetBody()), "given 2 key-vault proxy keys") {
		t.Fatalf("want a 400, got %v", replies[0])
	}
}

// An ordinary key= parameter (Google's own key) is left alone.
func TestQueryKeyOfTheProviderIsLeftAlone(t *testing.T) {
	s, _ := newTestServer(t, providerVault(t))
	replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/v1beta/models/m:generateContent?key=AIzaOrdinary"))
	var cr *extprocv3.CommonResponse = replies[0].GetRequestHeaders().GetResponse()
	if replies[0].GetImmediateResponse() != nil || setValue(cr, ":path") != "" || setValue(cr, "x-goog-api-key") != "" {
		t.Fatalf("reply %v", replies[0])
	}
}

// A fallback entry that sets the header a proxy key came in puts back, on
// the other attempts, the header as it goes upstream: removed (the key
// went to the header its provider reads), not the client's proxy key.
func TestForwardedHeaderOfARemovedHeader(t *testing.T) {
	c := &call{reqHeaders: []*corev3.HeaderValue{{Key: "authorization", RawValue: []byte("Bearer " + providerProxyKey("azure"))}}}
	var m headerMutation
	m.setHeader("api-key", "real-azure")
	m.removeHeader("authorization")
	if v := forwardedHeader(c, &m, "authorization"); v != nil {
		t.Fatalf("authorization forwarded as %q", *v)
	}
	if v := forwardedHeader(c, &m, "api-key"); v == nil || *v != "real-azure" {
		t.Fatalf("api-key forwarded as %v", v)
	}
}

// Groq's own /openai/v1/… path sent to Groq's origin by Helicone-Target-URL
// is Groq's call, not an Azure one: recorded, priced and checked as groq.
func TestTargetOriginOfAProviderIsNotAzure(t *testing.T) {
	s, sink := newTestServer(t, func(o *Options) { o.AllowedTargetOrigins = []string{"https://api.groq.com"} })
	run(s, nil, reqHeaders(false, ":method", "POST", ":path", "/openai/v1/chat/completions", "helicone-target-url", "https://api.groq.com"),
		reqBody(chatBody), respHeaders(false, ":status", "200"), respBody(chatResponse, true))
	if recs := sink.Records(); len(recs) != 1 || recs[0].Provider != "groq" || recs[0].Model != "gpt-4o-mini" {
		t.Fatalf("records %+v", recs)
	}
}

// FuzzProxyKeyInQuery: whatever the path, a proxy key found in key= is one;
// when the path is not refused, the path handed on keeps its base and no
// parameter of it holds a proxy key in any spelling (percent-encoded, its
// name in another case).
func FuzzProxyKeyInQuery(f *testing.F) {
	f.Add("/v1beta/models/m:generateContent?alt=sse&key=" + providerProxyKey("gemini"))
	f.Add("/v1beta/models/m:generateContent?key=sk-helicone-proxy-%2Fx&key=AIza")
	f.Add("/v1beta/models/m:generateContent?k%65y=sk-helicone-proxy-x")
	f.Add("/v1beta/models/m:generateContent?KEY=sk%2Dhelicone%2Dproxy%2Dx&alt=sse")
	f.Add("/v1beta/models/m:generateContent?key=sk-helicone-proxy-x%zz")
	f.Add("/v1beta/models/m:generateContent?api_key=sk%2dhelicone-proxy-x")
	f.Fuzz(func(t *testing.T, path string) {
		key, rest, n, err := proxyKeyInQuery(path)
		if err != nil {
			return
		}
		effective := path
		if n == 0 {
			if key != "" || rest != "" {
				t.Fatalf("none found but %q %q", key, rest)
			}
		} else {
			base, _, _ := strings.Cut(path, "?")
			if !vault.IsProxyKey(key) || !strings.HasPrefix(rest, base) {
				t.Fatalf("proxyKeyInQuery(%q) = %q %q", path, key, rest)
			}
			effective = rest
		}
		if _, query, ok := strings.Cut(effective, "?"); ok {
			for _, param := range strings.Split(query, "&") {
				_, value, _ := strings.Cut(param, "=")
				if v, _ := lenientUnescape(value); vault.IsProxyKey(v) {
					t.Fatalf("a proxy key stays in %q (from %q)", effective, path)
				}
			}
		}
	})
}

// A proxy key in the key= parameter is found however it is spelt (the name
// percent-encoded or in capitals, the value percent-encoded) and taken out
// of the path; what cannot be read one way only is a 400 naming it.
func TestProxyKeyInQuerySpellings(t *testing.T) {
	const base = "/v1beta/models/gemini-2.5-flash:generateContent"
	pk := providerProxyKey("gemini")
	enc := strings.ReplaceAll(pk, "-", "%2D")
	for _, tc := range []struct{ name, query, wantPath, wantErr string }{
		{"name percent-encoded", "?k%65y=" + pk + "&alt=sse", base + "?alt=sse", ""},
		{"name in capitals", "?KEY=" + pk, base, ""},
		{"value percent-encoded", "?alt=sse&key=" + enc, base + "?alt=sse", ""},
		{"invalid escape", "?key=" + pk + "%zz", "", `the query parameter \"key\" holds a key-vault proxy key in invalid percent-encoding`},
		{"another parameter", "?api_key=" + enc, "", `the query parameter \"api_key\" holds a key-vault proxy key; only key= takes one`},
		{"beside another key", "?key=AIzaOwn&Key=" + pk, "", "the key= query parameter is given a key-vault proxy key and another value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, sink := newTestServer(t, providerVault(t))
			replies, _ := run(s, nil, reqHeaders(false, ":method", "POST", ":path", base+tc.query))
			imm := replies[0].GetImmediateResponse()
			if tc.wantErr != "" {
				if imm == nil || imm.GetStatus().GetCode() != 400 || !strings.Contains(string(imm.GetBody()), tc.wantErr) {
					t.Fatalf("want a 400 %q, got %v", tc.wantErr, replies[0])
				}
				if strings.Contains(string(imm.GetBody()), "sk-helicone-proxy") {
					t.Errorf("the refusal names the proxy key: %s", imm.GetBody())
				}
				return
			}
			if imm != nil {
				t.Fatalf("refused: %s", imm.GetBody())
			}
			cr := replies[0].GetRequestHeaders().GetResponse()
			if got := setValue(cr, "x-goog-api-key"); got != "real-gemini" {
				t.Errorf("x-goog-api-key set to %q", got)
			}
			if got := setValue(cr, ":path"); got != tc.wantPath {
				t.Errorf(":path set to %q, want %q", got, tc.wantPath)
			}
			if recs := sink.Records(); len(recs) > 0 && recs[0].ProxyKeyID != "key-gemini" {
				t.Errorf("record proxy key %q", recs[0].ProxyKeyID)
			}
		})
	}
}
