package app

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/mockprovider"
	"github.com/tollgate-dev/tollgate/processor"
	"github.com/tollgate-dev/tollgate/record"
)

// A client must not choose the upstream: behind Envoy a client-sent
// x-tollgate-upstream(-host) picked the forward-proxy route before any
// filter ran, an open proxy past the allowed origins.

// countingServer is a second loopback origin, the one a client would like
// to reach.
func countingServer(t *testing.T, status int) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("content-type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"error":{"message":"from the test server"}}`)
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

func TestDevClientCannotChooseUpstream(t *testing.T) {
	evil, evilHits := countingServer(t, 200)
	d := startDev(t)
	c := call{path: "/v1/chat/completions", body: chat("gpt-4o-mini"), headers: map[string]string{
		"helicone-request-id": uuid.NewString(),
		"x-tollgate-upstream": evil.URL, "x-tollgate-upstream-host": strings.TrimPrefix(evil.URL, "http://"),
		"Host": "evil.example",
	}}
	resp, _ := c.do(t, d)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n := evilHits.Load(); n != 0 {
		t.Fatalf("the client's chosen origin got %d requests", n)
	}
	if len(d.mock.Received()) != 1 {
		t.Fatalf("the provider got %d requests, want 1", len(d.mock.Received()))
	}
}

// x-envoy-max-retries from a client would buy it ten paid calls under one
// record; the data plane, like Envoy, drops it from an external request.
func TestDevClientEnvoyRetryHeadersIgnored(t *testing.T) {
	d := startRetryingDev(t)
	c := call{path: "/v1/chat/completions", body: chat("gpt-4o-mini"), headers: map[string]string{
		"helicone-request-id": uuid.NewString(), "x-test-call": "client-retries",
		"x-envoy-max-retries": "10", "x-envoy-retry-on": "5xx", "x-envoy-retriable-status-codes": "503",
		mockprovider.HeaderFailFirst: "100", mockprovider.HeaderFailKey: "client-retries", mockprovider.HeaderStatus: "503",
	}}
	resp, _ := c.do(t, d)
	if resp.StatusCode != 503 {
		t.Fatalf("status %d, want the provider's 503", resp.StatusCode)
	}
	if _, headers := sentModels(d, "client-retries"); len(headers) != 1 {
		t.Fatalf("the provider saw %d attempts, want 1", len(headers))
	}
	recs := d.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	if r := recs[c.headers["helicone-request-id"]]; r == nil || r.Attempts != 1 {
		t.Fatalf("record %+v, want one attempt", r)
	}
}

// planeWithProcessor is the data plane in front of a real processor, with a
// config of the test's choosing: what a hand-written Envoy config without
// the early header mutation, or with trusted internal addresses, would be.
// The processor alone must then keep the client from steering the router.
func planeWithProcessor(t *testing.T, openai string, cfg dataplane.Config) *httptest.Server {
	t.Helper()
	cfg.OpenAIUpstream, cfg.AnthropicUpstream = openai, openai
	cfg.AllowEnvoyHeaderMutation = true
	cfg.ReceivingNamespaces = []string{processor.LinkNamespace}
	cfg.UpstreamFilter = &dataplane.UpstreamFilterConfig{
		Metadata:             map[string]string{processor.FilterLevelMetadata: processor.FilterLevelUpstream},
		ForwardingNamespaces: []string{processor.LinkNamespace},
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return planeFor(t, processor.New(processor.Options{Sink: record.NewMemory()}), cfg)
}

// planeFor serves proc over gRPC on loopback, with the server options of
// tollgate dev, and puts a data plane with cfg in front of it, dialing as
// tollgate dev does (dataplane.DialOptions).
func planeFor(t *testing.T, proc extprocv3.ExternalProcessorServer, cfg dataplane.Config) *httptest.Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpcServerOptions(processorKeepalive)...)
	extprocv3.RegisterExternalProcessorServer(srv, proc)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	dial := append(dataplane.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	conn, err := grpc.NewClient(lis.Addr().String(), dial...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	plane, err := dataplane.New(cfg, conn)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(plane)
	t.Cleanup(front.Close)
	return front
}

// recordingProcessor passes each stream to a real processor and keeps the
// request headers it was sent, as the processor received them.
type recordingProcessor struct {
	next extprocv3.ExternalProcessorServer
	mu   sync.Mutex
	seen []map[string]string // one per request_headers message
}

func (r *recordingProcessor) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	return r.next.Process(recordingStream{s, r})
}

func (r *recordingProcessor) requests() []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

type recordingStream struct {
	extprocv3.ExternalProcessor_ProcessServer
	r *recordingProcessor
}

func (s recordingStream) Recv() (*extprocv3.ProcessingRequest, error) {
	m, err := s.ExternalProcessor_ProcessServer.Recv()
	if h := m.GetRequestHeaders(); h != nil {
		got := map[string]string{}
		for _, hv := range h.GetHeaders().GetHeaders() {
			got[hv.GetKey()] = string(hv.GetRawValue())
		}
		s.r.mu.Lock()
		s.r.seen = append(s.r.seen, got)
		s.r.mu.Unlock()
	}
	return m, err
}

// Each layer on its own: the data plane of tollgate dev, configured as dev
// configures it, removes a client's x-tollgate-upstream(-host) (the early
// header mutation) and the router's x-envoy-* headers (an external
// request) before the processor ever sees the request, and adds Envoy's
// x-envoy-external-address. TestDevClientCannotChooseUpstream and
// TestDevClientEnvoyRetryHeadersIgnored would pass on the processor's
// backstop alone; TestProcessorUndoesClientUpstreamWithoutEarlyRemoval and
// TestProcessorDropsClientRetryHeadersOfInternalRequest test that backstop.
func TestDevPlaneStripsClientRoutingBeforeTheProcessor(t *testing.T) {
	provider, hits := countingServer(t, 200)
	evil, evilHits := countingServer(t, 200)
	cfg, _, err := loadConfig("dev", []string{"--upstream-openai", provider.URL, "--upstream-anthropic", provider.URL}, env(nil), true)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingProcessor{next: processor.New(processor.Options{Sink: record.NewMemory()})}
	planeCfg, err := devPlaneConfig(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	front := planeFor(t, rec, planeCfg)
	client := map[string]string{
		"x-tollgate-upstream": evil.URL, "x-tollgate-upstream-host": strings.TrimPrefix(evil.URL, "http://"),
		"x-envoy-max-retries": "10", "x-envoy-retry-on": "5xx", "x-envoy-retriable-status-codes": "503",
		"x-envoy-upstream-rq-timeout-ms": "1", "x-envoy-external-address": "203.0.113.7",
	}
	if code := post(t, front.URL, client); code != 200 {
		t.Fatalf("status %d", code)
	}
	if hits.Load() != 1 || evilHits.Load() != 0 {
		t.Fatalf("the provider got %d requests, the client's origin %d", hits.Load(), evilHits.Load())
	}
	seen := rec.requests()
	if len(seen) == 0 {
		t.Fatal("the processor got no request headers")
	}
	for i, got := range seen {
		for k := range client {
			if k == "x-envoy-external-address" {
				continue
			}
			if v, ok := got[k]; ok {
				t.Errorf("request_headers %d: the processor received the client's %s: %q", i, k, v)
			}
		}
		if i == 0 && got["x-envoy-external-address"] != "127.0.0.1" {
			t.Errorf("x-envoy-external-address %q, want the peer's 127.0.0.1 (Envoy's, not the client's)", got["x-envoy-external-address"])
		}
	}
}

func post(t *testing.T, url string, hdr map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(chat("gpt-4o-mini")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Without the early removal the route is the client's choice when the
// request arrives; the processor removes the header and clears the route
// cache, and the route is picked again.
func TestProcessorUndoesClientUpstreamWithoutEarlyRemoval(t *testing.T) {
	evil, evilHits := countingServer(t, 200)
	good, goodHits := countingServer(t, 200)
	front := planeWithProcessor(t, good.URL, dataplane.Config{})
	if code := post(t, front.URL, map[string]string{"x-tollgate-upstream": evil.URL}); code != 200 {
		t.Fatalf("status %d", code)
	}
	if evilHits.Load() != 0 || goodHits.Load() != 1 {
		t.Fatalf("evil got %d, the provider %d", evilHits.Load(), goodHits.Load())
	}
}

// A request the connection manager calls internal keeps its x-envoy-*
// headers; the processor removes the ones it did not set.
func TestProcessorDropsClientRetryHeadersOfInternalRequest(t *testing.T) {
	down, hits := countingServer(t, 503)
	front := planeWithProcessor(t, down.URL, dataplane.Config{
		InternalAddresses: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		RetryBaseInterval: 1e6, RetryMaxInterval: 2e6,
	})
	if code := post(t, front.URL, map[string]string{"x-envoy-max-retries": "10", "x-envoy-retry-on": "5xx"}); code != 503 {
		t.Fatalf("status %d", code)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d upstream attempts, want 1", n)
	}
}

// With --allowed-target-origins=*, a client must not reach a plain-HTTP
// service on the gateway's loopback (Envoy's admin port, cloud metadata,
// Tollgate's own API) through Helicone-Target-URL: "*" covers public
// https:// origins only. The same origin listed exactly is the operator's
// choice and is reached.
func TestDevWildcardTargetOriginIsNotLoopback(t *testing.T) {
	local, hits := countingServer(t, 200)
	for _, tc := range []struct {
		allowed string
		status  int
		hits    int32
	}{
		{"*", 403, 0},
		{"*," + local.URL, 200, 1},
	} {
		hits.Store(0)
		d := startDev(t, "--allowed-target-origins", tc.allowed)
		c := call{path: "/v1/chat/completions", body: chat("gpt-4o-mini"), headers: map[string]string{
			"helicone-request-id": uuid.NewString(), "helicone-target-url": local.URL + "/quitquitquit",
		}}
		resp, body := c.do(t, d)
		if resp.StatusCode != tc.status {
			t.Fatalf("allowed %s: status %d (%s), want %d", tc.allowed, resp.StatusCode, body, tc.status)
		}
		if tc.status == 403 && (!strings.Contains(body, "Helicone-Target-URL") || !strings.Contains(body, "https:// origins only")) {
			t.Fatalf("allowed %s: body %s, want one naming Helicone-Target-URL and why", tc.allowed, body)
		}
		if n := hits.Load(); n != tc.hits {
			t.Fatalf("allowed %s: the loopback server got %d requests, want %d", tc.allowed, n, tc.hits)
		}
		if len(d.mock.Received()) != 0 {
			t.Fatalf("allowed %s: the provider got %d requests, want 0", tc.allowed, len(d.mock.Received()))
		}
		_ = d.stop()
	}
}
