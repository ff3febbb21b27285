package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/tollgate-dev/tollgate/mockprovider"
)

// runMock serves the mock provider: a stand-in for OpenAI and Anthropic in
// demos (`tollgate dev --upstream-openai http://127.0.0.1:9000`).
func runMock(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("mock", flag.ContinueOnError)
	addr := fs.String("listen", "127.0.0.1:9000", "listen address")
	latency := fs.Duration("latency", 0, "fixed delay before each response")
	chunkDelay := fs.Duration("chunk-delay", 0, "delay between streamed chunks")
	if err := fs.Parse(args); err != nil {
		return usageError(fs, err)
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: mockprovider.New(mockprovider.Options{Latency: *latency, ChunkDelay: *chunkDelay}), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- ignoreClosed(srv.Serve(lis)) }()
	fmt.Fprintf(stderr, "tollgate mock ready listen=%s\n", lis.Addr())
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
