package processor

import (
	"net"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tollgate-dev/tollgate/dataplane"
)

// dataPlaneFor serves s over gRPC on loopback and puts the local data plane,
// configured by cfg, in front of it, as Envoy is in front of Tollgate. All
// is closed when the test ends.
func dataPlaneFor(t *testing.T, s *Server, cfg dataplane.Config) *dataplane.Proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(),
		append(dataplane.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	proxy, err := dataplane.New(cfg, conn)
	if err != nil {
		t.Fatal(err)
	}
	return proxy
}
