package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-dev/tollgate/processor"
	"github.com/tollgate-dev/tollgate/record"
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
// the embedded default (JSON lines in dir, flushed every 500 ms), "discard"
// drops them. The ClickHouse sink plugs in here when it lands.
func openLogSink(kind, dir string) (record.Sink, error) {
	switch kind {
	case "file":
		return record.OpenFileSink(filepath.Join(dir, "requests.jsonl"), 500*time.Millisecond)
	case "discard":
		return record.Discard{}, nil
	}
	return nil, fmt.Errorf("unknown sink %q (want file or discard)", kind)
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
// state (sink buffers, log files, connection windows) carries from run to
// run. Tollgate is processor.New with the log sink on; the processor has no
// cache or rate-limit policy yet, so those are not in the measurement.
func startTarget(kind, sinkKind string) (*extprocTarget, error) {
	var impl extprocv3.ExternalProcessorServer
	cleanup := func() error { return nil }
	switch kind {
	case targetFloor:
		impl = floorServer{}
	case targetTollgate:
		dir, err := os.MkdirTemp("", "tollgate-bench-")
		if err != nil {
			return nil, err
		}
		sink, err := openLogSink(sinkKind, dir)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		impl = processor.New(processor.Options{Sink: sink})
		cleanup = func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return errors.Join(sink.Close(ctx), os.RemoveAll(dir))
		}
	default:
		return nil, fmt.Errorf("unknown target %q", kind)
	}
	srv, conn, addr, err := startExtProc(impl)
	if err != nil {
		_ = cleanup()
		return nil, err
	}
	return &extprocTarget{
		kind:   kind,
		client: extprocv3.NewExternalProcessorClient(conn),
		conn:   conn,
		addr:   addr,
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
	if err := stream.CloseSend(); err != nil {
		return 0, fmt.Errorf("close send: %w", err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("end of stream: want EOF, got %v", err)
	}
	return time.Since(start), nil
}

// check makes sure a run measures what it claims: every reply is of the
// kind asked (an ImmediateResponse would mean the processor rejected the
// call), and Tollgate tags the response and streams SSE.
func (t *extprocTarget) check(sc *script, req *extprocv3.ProcessingRequest, resp *extprocv3.ProcessingResponse) error {
	switch req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		if resp.GetRequestHeaders() == nil {
			return fmt.Errorf("request_headers answered with %T", resp.GetResponse())
		}
	case *extprocv3.ProcessingRequest_RequestBody:
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
