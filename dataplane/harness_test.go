package dataplane

import (
	"context"
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
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// waitLimit bounds every wait in the tests; nothing here should get close.
const waitLimit = 10 * time.Second

// step is the scripted processor's answer to one message.
type step struct {
	resp *extprocv3.ProcessingResponse
	hang bool  // never answer; wait for the stream to end
	end  error // end the stream with this status (nil error from the handler when endOK)
	ok   bool  // end the stream with OK status without answering
}

// streamRec records one ext_proc stream as the processor saw it.
type streamRec struct {
	mu       sync.Mutex
	msgs     []*extprocv3.ProcessingRequest
	done     chan struct{}
	endCode  codes.Code // status of the Recv (or wait) that ended the stream; OK for io.EOF
	ctxErr   error      // the stream context's error when it ended
	deadline time.Time  // the stream context's deadline (from grpc-timeout)
	endedAt  time.Time
	md       metadata.MD // the stream's initial metadata
}

// endedByDeadline reports whether the stream ended because its deadline
// passed. grpc-go's server arms two timers for a deadline (the context's and
// one that closes the stream) and the second can win, so the status alone may
// say Canceled; a processor has to look at the deadline, as this does.
func (s *streamRec) endedByDeadline() bool {
	return s.ctxErr != nil && !s.deadline.IsZero() && !s.endedAt.Before(s.deadline) &&
		(s.endCode == codes.DeadlineExceeded || s.endCode == codes.Canceled)
}

func (s *streamRec) messages() []*extprocv3.ProcessingRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*extprocv3.ProcessingRequest(nil), s.msgs...)
}

// extServer is a scripted ext_proc server: it records every message and
// answers with script (continueAll when nil). Streams of the upstream filter
// (told apart by their metadata, as Tollgate's processor does) go to
// upstreamScript and upStarted instead.
type extServer struct {
	extprocv3.UnimplementedExternalProcessorServer
	script         func(req *extprocv3.ProcessingRequest) step
	started        chan *streamRec
	upstreamScript func(req *extprocv3.ProcessingRequest) step
	upStarted      chan *streamRec
}

func (s *extServer) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	rec := &streamRec{done: make(chan struct{}), md: md}
	started, script := s.started, s.script
	if slices.Contains(md.Get(UpstreamFilterMetadataKey), UpstreamFilterMetadataValue) {
		started, script = s.upStarted, s.upstreamScript
	}
	select {
	case started <- rec:
	default: // a benchmark opens more streams than anyone waits for
	}
	defer close(rec.done)
	ctx := stream.Context()
	finish := func(err error) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.endCode = codes.OK
		if err != io.EOF {
			rec.endCode = status.Code(err)
		}
		rec.ctxErr = ctx.Err()
		rec.endedAt = time.Now()
		rec.deadline, _ = ctx.Deadline()
	}
	for {
		req, err := stream.Recv()
		if err != nil {
			finish(err)
			return nil
		}
		rec.mu.Lock()
		rec.msgs = append(rec.msgs, req)
		rec.mu.Unlock()
		st := continueAll(req)
		if script != nil {
			st = script(req)
		}
		switch {
		case st.hang:
			<-ctx.Done()
			finish(status.FromContextError(ctx.Err()).Err())
			return ctx.Err()
		case st.ok:
			finish(io.EOF)
			return nil
		case st.end != nil:
			finish(st.end)
			return st.end
		}
		if err := stream.Send(st.resp); err != nil {
			finish(err)
			return nil
		}
	}
}

// continueAll answers every message with an empty reply of the matching kind.
func continueAll(req *extprocv3.ProcessingRequest) step {
	return step{resp: reply(req, &extprocv3.CommonResponse{})}
}

// reply builds the reply of the kind that matches req.
func reply(req *extprocv3.ProcessingRequest, cr *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
			RequestHeaders: &extprocv3.HeadersResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{
			ResponseHeaders: &extprocv3.HeadersResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_RequestBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
			RequestBody: &extprocv3.BodyResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_ResponseBody:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
			ResponseBody: &extprocv3.BodyResponse{Response: cr}}}
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{
			ResponseTrailers: &extprocv3.TrailersResponse{HeaderMutation: cr.GetHeaderMutation()}}}
	}
	panic("unexpected request kind")
}

// kind names a message for scripts.
func kind(req *extprocv3.ProcessingRequest) string {
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return "request_headers"
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return "response_headers"
	case *extprocv3.ProcessingRequest_RequestBody:
		return "request_body"
	case *extprocv3.ProcessingRequest_ResponseBody:
		return "response_body"
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return "response_trailers"
	}
	return "?"
}

// upstreamRec is one request as an upstream saw it.
type upstreamRec struct {
	method, path, host string
	header             http.Header
	body               string
	at                 time.Time // arrival
}

// upstream is an httptest server that records requests and answers with
// handler (a small JSON reply when nil).
type upstream struct {
	*httptest.Server
	hits atomic.Int32
	reqs chan upstreamRec
}

func newUpstream(t testing.TB, handler http.HandlerFunc) *upstream {
	u := &upstream{reqs: make(chan upstreamRec, 16)}
	if handler == nil {
		handler = jsonReply(`{"ok":true}`)
	}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		u.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		select {
		case u.reqs <- upstreamRec{r.Method, r.URL.RequestURI(), r.Host, r.Header.Clone(), string(body), at}:
		default: // a benchmark sends more requests than anyone reads
		}
		handler(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) next(t *testing.T) upstreamRec {
	t.Helper()
	select {
	case r := <-u.reqs:
		return r
	case <-time.After(waitLimit):
		t.Fatal("upstream got no request")
		return upstreamRec{}
	}
}

func jsonReply(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil // keep recorded headers deterministic
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "yes")
		_, _ = io.WriteString(w, body)
	}
}

// harness is a proxy in front of an upstream, driving a scripted processor.
type harness struct {
	ext       *extServer
	openai    *upstream
	anthropic *upstream
	proxy     *Proxy
	front     *httptest.Server
	client    *http.Client
	served    chan struct{} // one value each time ServeHTTP returns
}

type harnessOpts struct {
	script func(req *extprocv3.ProcessingRequest) step
	// upstreamScript answers the upstream filter's streams; setting it
	// configures an upstream filter with Tollgate's metadata.
	upstreamScript func(req *extprocv3.ProcessingRequest) step
	upstream       http.HandlerFunc
	config         func(*Config)
	noProc         bool
	procAddr       string // dial this instead of the scripted server
	anthropic      http.HandlerFunc
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	h := &harness{
		ext: &extServer{
			script:         o.script,
			started:        make(chan *streamRec, 64),
			upstreamScript: o.upstreamScript,
			upStarted:      make(chan *streamRec, 64),
		},
		served: make(chan struct{}, 64),
	}
	h.openai = newUpstream(t, o.upstream)
	h.anthropic = newUpstream(t, o.anthropic)

	var conn *grpc.ClientConn
	if !o.noProc {
		addr := o.procAddr
		if addr == "" {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := grpc.NewServer()
			extprocv3.RegisterExternalProcessorServer(srv, h.ext)
			go func() { _ = srv.Serve(lis) }()
			t.Cleanup(srv.Stop)
			addr = lis.Addr().String()
		}
		var err error
		// As tollgate dev dials: Envoy's windows and keepalive pings.
		conn, err = grpc.NewClient(addr, append(DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
	}

	cfg := Config{
		OpenAIUpstream:    h.openai.URL,
		AnthropicUpstream: h.anthropic.URL,
		// Generous, so a loaded machine does not turn into a message
		// timeout; tests of timeouts set their own.
		MessageTimeout: 3 * time.Second,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		// The tests' client is a trusted internal caller: it drives the
		// router's x-envoy-* headers itself. Tests of external requests
		// set their own.
		InternalAddresses: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if o.upstreamScript != nil {
		// The scripted processors set no AttemptsHeader: the filter is
		// on every cluster, as in an Envoy with one cluster per upstream.
		cfg.UpstreamFilter = &UpstreamFilterConfig{
			Metadata:     map[string]string{UpstreamFilterMetadataKey: UpstreamFilterMetadataValue},
			EveryCluster: true,
		}
	}
	if o.config != nil {
		o.config(&cfg)
	}
	var err error
	if conn != nil {
		h.proxy, err = New(cfg, conn)
	} else {
		h.proxy, err = New(cfg, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	h.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			select {
			case h.served <- struct{}{}:
			default:
			}
		}()
		h.proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(h.front.Close)
	tr := &http.Transport{DisableCompression: true}
	h.client = &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	return h
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// do sends a request with deterministic headers and returns status, headers
// and body.
func (h *harness) do(t *testing.T, method, path, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	resp := h.send(t, context.Background(), method, path, body, hdr)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func (h *harness) send(t *testing.T, ctx context.Context, method, path, body string, hdr map[string]string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.front.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "tollgate-test")
	req.Header.Set("X-Request-Id", "req-1")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	return resp
}

// stream returns the next processor stream of the router-level filter,
// waiting for it to end.
func (h *harness) stream(t *testing.T) *streamRec {
	t.Helper()
	return waitStream(t, h.ext.started)
}

// upstreamStream returns the next stream of the upstream filter, waiting for
// it to end.
func (h *harness) upstreamStream(t *testing.T) *streamRec {
	t.Helper()
	return waitStream(t, h.ext.upStarted)
}

func waitStream(t *testing.T, started chan *streamRec) *streamRec {
	t.Helper()
	var rec *streamRec
	select {
	case rec = <-started:
	case <-time.After(waitLimit):
		t.Fatal("no ext_proc stream was opened")
	}
	select {
	case <-rec.done:
	case <-time.After(waitLimit):
		t.Fatal("ext_proc stream did not end")
	}
	return rec
}

func (h *harness) waitServed(t *testing.T) {
	t.Helper()
	select {
	case <-h.served:
	case <-time.After(waitLimit):
		t.Fatal("ServeHTTP did not return")
	}
}

func (h *harness) authority() string { return strings.TrimPrefix(h.front.URL, "http://") }

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}
