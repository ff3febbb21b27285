package app

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// `tollgate serve --grpc-listen unix:///path`, as the injected sidecar runs:
// a stale socket file left by a crash does not stop it, the socket is open
// to its owner and group only, and Envoy's ext_proc stream works over it.
func TestServeExtProcOverUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ext_proc.sock")
	// What a killed processor leaves behind: a socket file nobody serves.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()

	addrs, stderr, stop := runReady(t, []string{"serve", "--role", "sidecar", "--grpc-listen", "unix://" + sock,
		"--http-listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--drain-delay", "0s", "--shutdown-timeout", "10s"})
	if got, want := addrs["grpc"], "unix://"+sock; got != want {
		t.Errorf("ready line names grpc=%s, want %s", got, want)
	}

	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("%s has mode %v, want a socket with permissions 0660 (owner and group may connect, nobody else)", sock, fi.Mode())
	}

	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := extprocv3.NewExternalProcessorClient(conn).Process(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(headersMsg(true, ":method", "GET", ":path", "/v1/models", ":authority", "127.0.0.1:10000", ":scheme", "http")); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("request headers over the socket: %v", err)
	}
	if resp.GetRequestHeaders() == nil {
		t.Fatalf("request headers answered with %v, want a request-headers reply", resp)
	}
	if err := stream.Send(headersMsg(false, ":status", "200", "content-type", "application/json")); err != nil {
		t.Fatal(err)
	}
	resp, err = stream.Recv()
	if err != nil {
		t.Fatalf("response headers over the socket: %v", err)
	}
	var heliconeID string
	for _, o := range resp.GetResponseHeaders().GetResponse().GetHeaderMutation().GetSetHeaders() {
		if o.GetHeader().GetKey() == "helicone-id" {
			heliconeID = string(o.GetHeader().GetRawValue())
		}
	}
	if heliconeID == "" {
		t.Errorf("the response-headers reply sets no Helicone-Id: %v", resp)
	}
	stream.CloseSend()
	conn.Close()

	if err := stop(); err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("after shutdown %s is still there (%v): the next start would find a stale socket", sock, err)
	}
}
