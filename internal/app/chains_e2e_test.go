package app

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// originServer is a loopback target origin that answers every request with
// status and body and keeps what each request carried.
type originServer struct {
	*httptest.Server
	mu   sync.Mutex
	got  []http.Header
	body []string
}

func newOriginServer(t *testing.T, status int, body string) *originServer {
	o := &originServer{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		o.mu.Lock()
		o.got, o.body = append(o.got, h), append(o.body, string(b))
		o.mu.Unlock()
		w.Header().Set("content-type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *originServer) received() ([]http.Header, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.got, o.body
}

// Cross-origin Helicone-Fallbacks through `tollgate dev` with nothing but
// --allowed-target-origins: dev has a fallback chain route for every
// sequence of its origins, as `tollgate envoy-chains` writes them for
// Envoy. Entry 0's origin fails with a status in its onCodes, entry 1's
// answers: the client gets entry 1's answer, each origin got its own
// entry's key, body and Host and nothing internal, and the record names
// entry 1's origin.
func TestDevCrossOriginFallbacks(t *testing.T) {
	for _, status := range []int{503, 429} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			a := newOriginServer(t, status, `{"error":{"message":"a is down"}}`)
			b := newOriginServer(t, 200, `{"id":"chatcmpl-b","object":"chat.completion","model":"model-b",`+
				`"choices":[{"index":0,"message":{"role":"assistant","content":"from b"},"finish_reason":"stop"}],`+
				`"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`)
			d := startDev(t, "--allowed-target-origins", a.URL+","+b.URL,
				"--retry-base-interval", "5ms", "--retry-max-interval", "20ms")
			fallbacks := `[{"target-url": "` + a.URL + `", "headers": {"authorization": "Bearer sk-a"}, "onCodes": [` + strconv.Itoa(status) + `]},` +
				` {"target-url": "` + b.URL + `", "headers": {"authorization": "Bearer sk-b"}, "bodyKeyOverride": {"model": "model-b"}}]`
			id := uuid.NewString()
			c := call{path: "/v1/chat/completions", body: chat("model-a"), headers: map[string]string{
				"helicone-fallbacks": fallbacks, "helicone-request-id": id, "authorization": "Bearer sk-app",
			}}
			resp, body := c.do(t, d)
			if resp.StatusCode != 200 || !strings.Contains(body, "from b") || resp.Header.Get("Helicone-Fallback-Index") != "1" {
				t.Fatalf("status %d, Helicone-Fallback-Index %q: want 200 from entry 1\n%s", resp.StatusCode, resp.Header.Get("Helicone-Fallback-Index"), body)
			}
			for _, tc := range []struct {
				o          *originServer
				key, model string
			}{{a, "Bearer sk-a", `"model":"model-a"`}, {b, "Bearer sk-b", `"model":"model-b"`}} {
				hs, bodies := tc.o.received()
				if len(hs) != 1 {
					t.Fatalf("origin %s got %d requests, want 1", tc.o.URL, len(hs))
				}
				if hs[0].Get("Authorization") != tc.key || !strings.Contains(bodies[0], tc.model) || hs[0].Get("Host") != strings.TrimPrefix(tc.o.URL, "http://") {
					t.Errorf("origin %s got key %q, Host %q, body %s", tc.o.URL, hs[0].Get("Authorization"), hs[0].Get("Host"), bodies[0])
				}
				for name := range hs[0] {
					if l := strings.ToLower(name); strings.HasPrefix(l, "x-tollgate-") || strings.HasPrefix(l, "helicone-") || strings.HasPrefix(l, "x-envoy-") {
						t.Errorf("origin %s: header %s reached it", tc.o.URL, name)
					}
				}
			}
			r := d.records(t)[id]
			if r == nil || r.FallbackIndex != 1 || r.TargetURL != b.URL || r.Provider != strings.TrimPrefix(b.URL, "http://") {
				t.Errorf("record %+v, want entry 1 on %s", r, b.URL)
			}
		})
	}
}

// Past envoy.MaxChainOrigins origins dev refuses to start, naming the
// setting, rather than build thousands of routes.
func TestDevRefusesTooManyChainOrigins(t *testing.T) {
	var origins []string
	for i := range 11 {
		origins = append(origins, "http://127.0.0.1:"+strconv.Itoa(20000+i))
	}
	cfg, _, err := loadConfig("dev", []string{"--allowed-target-origins", strings.Join(origins, ",")}, env(nil), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devFallbackChains(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), "--allowed-target-origins") {
		t.Errorf("13 origins: %v, want an error naming --allowed-target-origins", err)
	}
	cfg.AllowedTargets = origins[:10]
	chains, err := devFallbackChains(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || len(chains) != 12*11+12*11*10 {
		t.Errorf("12 origins: %d chains, %v", len(chains), err)
	}
}

// `tollgate envoy-chains` prints the generator's routes and clusters.
func TestEnvoyChainsCommand(t *testing.T) {
	var out strings.Builder
	if err := Run(t.Context(), []string{"envoy-chains", "--origins", "https://api.openai.com,https://api.together.xyz,https://api.groq.com"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "string_match: { exact: "); n != 3*2+3*2*1 {
		t.Errorf("%d routes, want 12:\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), `exact: "https://api.groq.com https://api.openai.com https://api.together.xyz"`) {
		t.Errorf("no route for groq, openai, together:\n%s", out.String())
	}
	if err := Run(t.Context(), []string{"envoy-chains", "--origins", "https://api.openai.com"}, io.Discard, io.Discard); err == nil {
		t.Error("one origin accepted")
	}
}
