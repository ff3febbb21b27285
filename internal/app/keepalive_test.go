package app

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-dev/tollgate/dataplane"
	"github.com/tollgate-dev/tollgate/envoy"
	"github.com/tollgate-dev/tollgate/processor"
)

// The ext_proc cluster's keepalive in envoy/*.yaml must be one the
// processor's server accepts, and the one the data plane copies.
func TestProcessorKeepaliveAcceptsEnvoyPings(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string][]byte{"sidecar.yaml": envoy.Sidecar, "gateway.yaml": envoy.Gateway} {
		interval, timeout, jitter := tollgateClusterKeepalive(t, name, cfg)
		// Envoy adds the jitter; reading it as either sign keeps this safe.
		shortest := time.Duration(float64(interval) * (1 - jitter/100))
		if processorKeepalive.minPing >= shortest {
			t.Errorf("%s: pings every %v (jitter %v%%, so as close as %v), but the processor's keepalive MinTime is %v: grpc-go would answer with GOAWAY too_many_pings",
				name, interval, jitter, shortest, processorKeepalive.minPing)
		}
		if interval != dataplane.KeepaliveInterval || timeout != dataplane.KeepaliveTimeout {
			t.Errorf("%s: connection_keepalive interval %v timeout %v, but the data plane pings every %v with timeout %v (dataplane.KeepaliveInterval, KeepaliveTimeout)",
				name, interval, timeout, dataplane.KeepaliveInterval, dataplane.KeepaliveTimeout)
		}
	}
}

// tollgateClusterKeepalive reads connection_keepalive of the cluster named
// tollgate: interval, timeout and interval_jitter in percent (Envoy's
// default 15 when unset).
func tollgateClusterKeepalive(t *testing.T, name string, data []byte) (interval, timeout time.Duration, jitter float64) {
	t.Helper()
	var boot struct {
		StaticResources struct {
			Clusters []struct {
				Name    string `json:"name"`
				Options map[string]struct {
					Explicit struct {
						HTTP2 struct {
							Keepalive *struct {
								Interval string `json:"interval"`
								Timeout  string `json:"timeout"`
								Jitter   *struct {
									Value float64 `json:"value"`
								} `json:"interval_jitter"`
							} `json:"connection_keepalive"`
						} `json:"http2_protocol_options"`
					} `json:"explicit_http_config"`
				} `json:"typed_extension_protocol_options"`
			} `json:"clusters"`
		} `json:"static_resources"`
	}
	if err := yaml.Unmarshal(data, &boot); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, c := range boot.StaticResources.Clusters {
		if c.Name != "tollgate" {
			continue
		}
		ka := c.Options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].Explicit.HTTP2.Keepalive
		if ka == nil {
			t.Fatalf("%s: the tollgate cluster has no http2_protocol_options.connection_keepalive; the data plane pings as if it had (dataplane.KeepaliveInterval)", name)
		}
		var err1, err2 error
		interval, err1 = time.ParseDuration(ka.Interval)
		timeout, err2 = time.ParseDuration(ka.Timeout)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: connection_keepalive %+v: %v %v", name, ka, err1, err2)
		}
		jitter = 15
		if ka.Jitter != nil {
			jitter = ka.Jitter.Value
		}
		return interval, timeout, jitter
	}
	t.Fatalf("%s: no cluster named tollgate", name)
	return 0, 0, 0
}

// An ext_proc stream that stays quiet while Envoy pings the connection (as
// it does during a long LLM call) must still complete. The pings come from a
// raw HTTP/2 client, spaced like Envoy's relative to the server's minimum
// (three times it), before the stream opens and while it waits.
func TestQuietStreamSurvivesKeepalivePings(t *testing.T) {
	t.Parallel()
	const gap = 150 * time.Millisecond
	ka := processorKeepalive
	ka.minPing = gap / 3

	t.Run("processor options", func(t *testing.T) {
		t.Parallel()
		c := dialRawProcessor(t, grpc.NewServer(grpcServerOptions(ka)...))
		if err := c.quietCall(gap); err != nil {
			t.Fatal(err)
		}
	})
	// The same exchange against grpc-go's defaults must fail, or this test
	// could not see the bug it guards against.
	t.Run("grpc-go defaults", func(t *testing.T) {
		t.Parallel()
		c := dialRawProcessor(t, grpc.NewServer())
		err := c.quietCall(gap)
		if err == nil || !strings.Contains(err.Error(), "too_many_pings") {
			t.Fatalf("want GOAWAY too_many_pings from a server without the policy, got %v", err)
		}
	})
}

// rawClient is an HTTP/2 client that speaks gRPC frame by frame, so it can
// ping at will as Envoy does.
type rawClient struct {
	t      *testing.T
	mu     sync.Mutex // guards writes on fr
	fr     *http2.Framer
	events chan http2.Frame
	data   bytes.Buffer // stream 1's DATA so far
}

func dialRawProcessor(t *testing.T, srv *grpc.Server) *rawClient {
	t.Helper()
	extprocv3.RegisterExternalProcessorServer(srv, processor.New(processor.Options{}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, fr: http2.NewFramer(conn, conn), events: make(chan http2.Frame, 64)}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := c.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	go c.read()
	return c
}

// read hands every frame but SETTINGS (acked here) to events. The framer
// reuses frames, so they are copied first.
func (c *rawClient) read() {
	defer close(c.events)
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.write(func() error { return c.fr.WriteSettingsAck() })
			}
		case *http2.PingFrame:
			p := *f
			c.events <- &p
		case *http2.GoAwayFrame:
			c.events <- &goAway{code: f.ErrCode, debug: string(f.DebugData())}
		case *http2.DataFrame:
			c.mu.Lock()
			c.data.Write(f.Data())
			c.mu.Unlock()
			c.events <- &http2.DataFrame{FrameHeader: f.FrameHeader}
		case *http2.MetaHeadersFrame:
			c.events <- f
		}
	}
}

// goAway carries a GOAWAY's code and debug data out of the reader.
type goAway struct {
	http2.Frame
	code  http2.ErrCode
	debug string
}

func (c *rawClient) write(fn func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fn()
}

// next waits for a frame that done accepts; a GOAWAY or a closed connection
// is an error.
func (c *rawClient) next(what string, done func(http2.Frame) bool) error {
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-c.events:
			if !ok {
				return fmt.Errorf("connection closed waiting for %s", what)
			}
			if g, isGoAway := f.(*goAway); isGoAway {
				return fmt.Errorf("GOAWAY %v %q waiting for %s", g.code, g.debug, what)
			}
			if done(f) {
				return nil
			}
		case <-timeout:
			return fmt.Errorf("no %s", what)
		}
	}
}

func (c *rawClient) ping(n byte) error {
	data := [8]byte{n}
	if err := c.write(func() error { return c.fr.WritePing(false, data) }); err != nil {
		return err
	}
	return c.next("ping ack", func(f http2.Frame) bool {
		p, ok := f.(*http2.PingFrame)
		return ok && p.IsAck() && p.Data == data
	})
}

func (c *rawClient) send(req *extprocv3.ProcessingRequest) error {
	msg, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
	frame = append(frame, msg...)
	return c.write(func() error { return c.fr.WriteData(1, false, frame) })
}

// reply waits until the n-th gRPC message of the stream has arrived.
func (c *rawClient) reply(n int) error {
	return c.next(fmt.Sprintf("reply %d", n), func(http2.Frame) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		b := c.data.Bytes()
		for i := 0; i < n; i++ {
			if len(b) < 5 || len(b) < 5+int(binary.BigEndian.Uint32(b[1:5])) {
				return false
			}
			b = b[5+int(binary.BigEndian.Uint32(b[1:5])):]
		}
		return true
	})
}

// quietCall pings an idle connection, opens an ext_proc stream, lets it sit
// through pings while the "upstream" is slow, then finishes the call and
// checks it ends with grpc-status 0.
func (c *rawClient) quietCall(gap time.Duration) error {
	var n byte
	pings := func(count int) error {
		for i := 0; i < count; i++ {
			time.Sleep(gap)
			n++
			if err := c.ping(n); err != nil {
				return err
			}
		}
		return nil
	}
	// Envoy pings connections without streams too.
	if err := pings(4); err != nil {
		return err
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":authority", "tollgate"},
		{":path", "/envoy.service.ext_proc.v3.ExternalProcessor/Process"},
		{"content-type", "application/grpc"}, {"te", "trailers"},
	} {
		enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	if err := c.write(func() error {
		return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	}); err != nil {
		return err
	}
	if err := c.send(headersMsg(true, ":method", "POST", ":path", "/v1/models", ":authority", "api.openai.com", ":scheme", "https")); err != nil {
		return err
	}
	if err := c.reply(1); err != nil {
		return err
	}
	// The provider thinks: nothing on the stream, Envoy keeps pinging.
	if err := pings(5); err != nil {
		return err
	}
	if err := c.send(headersMsg(false, ":status", "200")); err != nil {
		return err
	}
	if err := c.reply(2); err != nil {
		return err
	}
	if err := c.write(func() error { return c.fr.WriteData(1, true, nil) }); err != nil {
		return err
	}
	var status string
	err := c.next("trailers", func(f http2.Frame) bool {
		h, ok := f.(*http2.MetaHeadersFrame)
		if !ok || !h.StreamEnded() {
			return false
		}
		for _, hf := range h.RegularFields() {
			if hf.Name == "grpc-status" {
				status = hf.Value
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	if status != "0" {
		return fmt.Errorf("call ended with grpc-status %q", status)
	}
	return nil
}

// headersMsg is request_headers (request true) or response_headers with
// end_of_stream, header values in raw_value as Envoy sends them.
func headersMsg(request bool, kv ...string) *extprocv3.ProcessingRequest {
	h := &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{}, EndOfStream: true}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Headers.Headers = append(h.Headers.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	if request {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: h}}
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: h}}
}
