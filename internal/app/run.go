// Package app is the tollgate command: subcommands, configuration, start-up
// and graceful shutdown. main only calls Run, so all of it is testable
// in-process on port 0.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
)

const usage = `tollgate — an Envoy external processor for LLM traffic

Usage:
  tollgate serve [flags]    ext_proc gRPC server plus HTTP health, metrics and API
  tollgate dev [flags]      serve plus a local data plane on --listen (no Envoy needed)
  tollgate migrate [flags]  create or upgrade the ClickHouse schema (--clickhouse)
  tollgate mock [flags]     a mock OpenAI/Anthropic provider for demos and tests
  tollgate inject -f FILE   add the Tollgate and Envoy sidecars to Kubernetes manifests
  tollgate webhook [flags]  the same as a mutating admission webhook, for pods as they are created
  tollgate bootstrap        write the sidecar's Envoy configuration (run inside injected pods)
  tollgate envoy-chains --origins A,B,...  Envoy fallback chain routes and clusters for those origins
  tollgate vault issue      make a key-vault proxy key (--id, --tenant) and its vault entry
  tollgate help             this text

Run "tollgate <command> -h" for the flags of a command.
`

// Run executes the command line args (without the program name). It returns
// when ctx is cancelled and shutdown has finished, or on a start-up error.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, args, stdout, stderr, os.Getenv)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve", "dev":
		cfg, fs, err := loadConfig(cmd, rest, getenv, cmd == "dev")
		if err != nil {
			return usageError(fs, err)
		}
		return serve(ctx, cfg, cmd == "dev", stderr)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stderr)
	case "mock":
		return runMock(ctx, rest, stderr)
	case "vault":
		return runVault(rest, stdout, stderr)
	case "envoy-chains":
		return runEnvoyChains(rest, stdout, stderr)
	case "inject", "webhook", "bootstrap":
		return runKube(ctx, cmd, rest, os.Stdin, stdout, stderr, getenv)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func usageError(fs *flag.FlagSet, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
