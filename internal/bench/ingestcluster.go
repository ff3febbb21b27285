package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// scenarioIngestCluster is the ingest scenario through the Distributed
// path: the same writer and records into a private ClickHouse cluster of
// 2 shards × 2 replicas (with ZooKeeper) started for the run by
// internal/testenv, the schema in cluster mode (?cluster=), so every
// insert goes into the Distributed requests table with
// insert_distributed_sync: it returns once a replica of each shard has its
// rows, and the other replica fetches them meanwhile. All five servers
// share the machine's cores with the writer.
const scenarioIngestCluster = "ingest-cluster"

// runIngestCluster starts the cluster with internal/testenv (which starts
// and stops servers for tests, hence benchTB) and runs runIngest on it.
func runIngestCluster(ctx context.Context, rows int, pr *progress) (res *ingestResult, err error) {
	tb := &benchTB{pr: pr}
	defer func() {
		tb.cleanup()
		if r := recover(); r != nil {
			if _, ok := r.(benchTBStop); !ok {
				panic(r)
			}
			res, err = nil, fmt.Errorf("%s: %s", scenarioIngestCluster, tb.msg)
			if tb.skipped { // no servers, outside make bench: not an error
				fmt.Fprintf(pr.w, "bench: skipping %s: %s\n", scenarioIngestCluster, tb.msg)
				err = nil
			}
		}
	}()
	start := time.Now()
	c := testenv.StartClickHouseCluster(tb, 2, 2)
	fmt.Fprintf(pr.w, "bench: ingest-cluster: %d ClickHouse nodes and ZooKeeper up in %s\n", len(c.Nodes), time.Since(start).Round(time.Millisecond))
	base, err := chschema.WithCluster(c.URL(), c.Name)
	if err != nil {
		return nil, err
	}
	return runIngest(ctx, base, rows, pr)
}

// benchTB is the part of testing.TB that internal/testenv's server
// helpers use, for a program: Fatal and Skip stop the scenario (a panic
// runIngestCluster recovers), Cleanup runs when it ends. The embedded
// interface is nil: any other method would panic.
type benchTB struct {
	testing.TB
	pr       *progress
	msg      string
	failed   bool
	skipped  bool
	cleanups []func()
}

type benchTBStop struct{}

func (b *benchTB) Helper()                         {}
func (b *benchTB) Name() string                    { return "bench-" + scenarioIngestCluster }
func (b *benchTB) Cleanup(f func())                { b.cleanups = append(b.cleanups, f) }
func (b *benchTB) Failed() bool                    { return b.failed }
func (b *benchTB) Log(args ...any)                 { fmt.Fprintln(b.pr.w, args...) }
func (b *benchTB) Logf(format string, args ...any) { fmt.Fprintf(b.pr.w, format+"\n", args...) }
func (b *benchTB) Errorf(format string, args ...any) {
	b.failed = true
	b.Logf(format, args...)
}
func (b *benchTB) Fatal(args ...any)                 { b.stop(fmt.Sprint(args...)) }
func (b *benchTB) Fatalf(format string, args ...any) { b.stop(fmt.Sprintf(format, args...)) }
func (b *benchTB) Skip(args ...any)                  { b.skipped = true; b.stop(fmt.Sprint(args...)) }
func (b *benchTB) Skipf(format string, args ...any) {
	b.skipped = true
	b.stop(fmt.Sprintf(format, args...))
}

func (b *benchTB) stop(msg string) {
	b.failed, b.msg = true, msg
	panic(benchTBStop{})
}

// cleanup runs the Cleanup functions, last registered first, as testing
// does.
func (b *benchTB) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
}

func writeIngestCluster(w io.Writer, r *ingestResult, single *ingestResult) {
	fmt.Fprintf(w, "## Log ingestion into a ClickHouse cluster (Distributed)\n\n")
	fmt.Fprintf(w, "The ingest scenario's writer and records, into the Distributed requests table of a private cluster "+
		"of 2 shards × 2 replicas (four ClickHouse 18.16 servers and ZooKeeper on this machine, sharing its cores with "+
		"the writer), `insert_distributed_sync=1`: an insert returns once a replica of each shard holds its rows.\n\n")
	fmt.Fprintf(w, "| Path | N | Elapsed | Rows/s | Write ns/op | count() FINAL | |\n")
	fmt.Fprintf(w, "|---|--:|--:|--:|--:|--:|---|\n")
	row := func(path string, r *ingestResult) {
		got := "all arrived"
		if r.Final != uint64(r.Rows) {
			got = fmt.Sprintf("**%d missing**", int64(r.Rows)-int64(r.Final))
		}
		fmt.Fprintf(w, "| %s | %d | %s | %.0f | %.0f | %d | %s |\n", path, r.Rows, r.Elapsed.Round(time.Millisecond),
			r.rowsPerSec(), r.writeNs(), r.Final, got)
	}
	if single != nil {
		row("one server", single)
	}
	row("cluster, Distributed", r)
	if len(r.Logs) > 0 {
		fmt.Fprintf(w, "\nThe writer logged (warnings and errors, counted):\n\n")
		for _, l := range r.Logs {
			fmt.Fprintf(w, "- %s\n", strings.ReplaceAll(l, "|", "\\|"))
		}
	}
	fmt.Fprintln(w)
}
