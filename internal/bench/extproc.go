package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-dev/tollgate/processor"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chstore"
)

// Which ext_proc server a run drives.
const (
	targetFloor    = "floor"
	targetTollgate = "tollgate"
)

// floorServer is the do-nothing ext_proc server of DESIGN §7: every message
// is answered with an empty CONTINUE of the matching kind. Its replies are
// built once; gRPC only reads them.
type floorServer struct {
	extprocv3.UnimplementedExternalProcessorServer
}

var floorReplies = struct {
	reqHeaders, reqBody, respHeaders, respBody, reqTrailers, respTrailers *extprocv3.ProcessingResponse
}{
	reqHeaders:   &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}},
	reqBody:      &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}},
	respHeaders:  &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}},
	respBody:     &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}},
	reqTrailers:  &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}},
	respTrailers: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}},
}

func (floorServer) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var resp *extprocv3.ProcessingResponse
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			resp = floorReplies.reqHeaders
		case *extprocv3.ProcessingRequest_RequestBody:
			resp = floorReplies.reqBody
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp = floorReplies.respHeaders
		case *extprocv3.ProcessingRequest_ResponseBody:
			resp = floorReplies.respBody
		case *extprocv3.ProcessingRequest_RequestTrailers:
			resp = floorReplies.reqTrailers
		default:
			resp = floorReplies.respTrailers
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// openLogSink is where Tollgate's records go during a benchmark: "file" is
// the embedded default (JSON lines in dir, flushed every 500 ms),
// "clickhouse" a chstore.Writer into the bench run's database (spool in
// dir), "discard" drops them.
func openLogSink(be *backends, dir string) (record.Sink, error) {
	switch be.sink {
	case sinkFile:
		return record.OpenFileSink(filepath.Join(dir, "requests.jsonl"), 500*time.Millisecond)
	case sinkDiscard:
		return record.Discard{}, nil
	case sinkClickHouse:
		if be.chURL == "" {
			return nil, errors.New("clickhouse sink without a database")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return chstore.Open(ctx, chstore.Options{URL: be.chURL, SpoolDir: dir, Logger: be.logger()})
	}
	return nil, fmt.Errorf("unknown sink %q (want %s)", be.sink, strings.Join(sinkKinds, ", "))
}

// extprocTarget is a running ext_proc server on loopback and one client
// connection to it, shared by every call of a run as Envoy shares its
// connection to a cluster.
type extprocTarget struct {
	kind   string
	client extprocv3.ExternalProcessorClient
	conn   *grpc.ClientConn
	addr   string
	stop   func() error
	// trips counts the store's Redis round trips so far; nil when there
	// is none to count (floor, memstore, no gate).
	trips func() uint64
	// streams counts the ext_proc streams opened to the server so far
	// (by the bench's client or by the data plane, router and upstream
	// level alike).
	streams *atomic.Uint64
}

// streamCounter counts the streams opened to the server it wraps.
type streamCounter struct {
	extprocv3.ExternalProcessorServer
	n *atomic.Uint64
}

func (c streamCounter) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	c.n.Add(1)
	return c.ExternalProcessorServer.Process(stream)
}

// startExtProc serves impl on 127.0.0.1:0 and dials it.
func startExtProc(impl extprocv3.ExternalProcessorServer) (*grpc.Server, *grpc.ClientConn, string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, "", err
	}
	srv := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(srv, impl)
	go func() { _ = srv.Serve(lis) }()
	addr := lis.Addr().String()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Stop()
		return nil, nil, "", err
	}
	conn.Connect()
	return srv, conn, addr, nil
}

// startTarget starts a fresh floor or Tollgate server for one run, so no
// state (sink buffers, log files, cache entries, buckets, connection
// windows) carries from run to run. Tollgate is processor.New with the log
// sink and, unless the store is "none", the cache / rate-limit gate on a
// store of its own (on Redis: a key prefix of its own, deleted at stop).
func startTarget(kind string, be *backends) (*extprocTarget, error) {
	var impl extprocv3.ExternalProcessorServer
	var trips func() uint64
	cleanup := func() error { return nil }
	switch kind {
	case targetFloor:
		impl = floorServer{}
	case targetTollgate:
		dir, err := os.MkdirTemp("", "tollgate-bench-")
		if err != nil {
			return nil, err
		}
		sink, err := openLogSink(be, dir)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		gate, closeStore, t, err := openGate(be)
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return nil, errors.Join(err, sink.Close(ctx), os.RemoveAll(dir))
		}
		trips = t
		opts := processor.Options{Sink: sink}
		if gate != nil {
			opts.Gate = gate
		}
		impl = processor.New(opts)
		cleanup = func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return errors.Join(sink.Close(ctx), closeStore(), os.RemoveAll(dir))
		}
	default:
		return nil, fmt.Errorf("unknown target %q", kind)
	}
	streams := new(atomic.Uint64)
	srv, conn, addr, err := startExtProc(streamCounter{impl, streams})
	if err != nil {
		_ = cleanup()
		return nil, err
	}
	return &extprocTarget{
		kind:    kind,
		client:  extprocv3.NewExternalProcessorClient(conn),
		conn:    conn,
		addr:    addr,
		trips:   trips,
		streams: streams,
		stop: func() error {
			cerr := conn.Close()
			srv.Stop()
			return errors.Join(cerr, cleanup())
		},
	}, nil
}

// call plays one request's exchange as Envoy does: each message sent, its
// reply awaited, then the half-close and the end of the stream. The time is
// taken from the first Send to the end of the stream.
func (t *extprocTarget) call(ctx context.Context, sc *script) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // releases the stream if the exchange fails half-way
	stream, err := t.client.Process(ctx)
	if err != nil {
		return 0, fmt.Errorf("open stream: %w", err)
	}
	start := time.Now()
	for k, msg := range sc.msgs {
		if k == 1 {
			msg = sc.requestBody()
		}
		if err := stream.Send(msg); err != nil {
			return 0, fmt.Errorf("send %d: %w", k, err)
		}
		resp, err := stream.Recv()
		if err != nil {
			return 0, fmt.Errorf("reply %d: %w", k, err)
		}
		if err := t.check(sc, msg, resp); err != nil {
			return 0, fmt.Errorf("reply %d: %w", k, err)
		}
	}
	// Envoy waits for the last reply, not for the end of the stream: the
	// processor's cache fill happens after it, off the client's path.
	elapsed := time.Since(start)
	if err := stream.CloseSend(); err != nil {
		return 0, fmt.Errorf("close send: %w", err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("end of stream: want EOF, got %v", err)
	}
	return elapsed, nil
}

// check makes sure a run measures what it claims: every reply is of the
// kind asked (an ImmediateResponse would mean the processor rejected the
// call), Tollgate answers from the gate exactly when the script says so (a
// cache hit, a 429), and it tags the response and streams SSE.
func (t *extprocTarget) check(sc *script, req *extprocv3.ProcessingRequest, resp *extprocv3.ProcessingResponse) error {
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		if resp.GetRequestHeaders() == nil {
			return fmt.Errorf("request_headers answered with %T", resp.GetResponse())
		}
	case *extprocv3.ProcessingRequest_RequestBody:
		if sc.answer != 0 && t.kind == targetTollgate {
			ir := resp.GetImmediateResponse()
			if ir == nil {
				return fmt.Errorf("request_body answered with %T, want an immediate %d", resp.GetResponse(), sc.answer)
			}
			if got := int(ir.GetStatus().GetCode()); got != sc.answer {
				return fmt.Errorf("immediate response %d, want %d", got, sc.answer)
			}
			return nil
		}
		if resp.GetRequestBody() == nil {
			return fmt.Errorf("request_body answered with %T", resp.GetResponse())
		}
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		rh := resp.GetResponseHeaders()
		if rh == nil {
			return fmt.Errorf("response_headers answered with %T", resp.GetResponse())
		}
		if t.kind != targetTollgate {
			return nil
		}
		if len(rh.GetResponse().GetHeaderMutation().GetSetHeaders()) == 0 {
			return errors.New("Tollgate set no response header (Helicone-Id expected)")
		}
		if sc.sse && resp.GetModeOverride().GetResponseBodyMode() != filterv3.ProcessingMode_STREAMED {
			return errors.New("Tollgate did not switch the event stream to STREAMED")
		}
	case *extprocv3.ProcessingRequest_ResponseBody:
		if resp.GetResponseBody() == nil {
			return fmt.Errorf("response_body answered with %T", resp.GetResponse())
		}
	}
	return nil
}
