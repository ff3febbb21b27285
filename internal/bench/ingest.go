package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
	"github.com/tollgate-dev/tollgate/storage/chstore"
)

// ingestResult is the log ingestion measurement (DESIGN §7: ≥ 50,000 rows/s
// into ClickHouse from one processor).
type ingestResult struct {
	Rows      int
	BodyBytes int           // request + response body of one record, on average
	WriteTime time.Duration // the Write loop alone
	Elapsed   time.Duration // first Write to the end of Flush
	Final     uint64        // SELECT count() FROM db.requests FINAL afterwards
	Logs      []string
}

func (r *ingestResult) rowsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Rows) / r.Elapsed.Seconds()
}

func (r *ingestResult) writeNs() float64 {
	if r.Rows == 0 {
		return 0
	}
	return float64(r.WriteTime.Nanoseconds()) / float64(r.Rows)
}

// ingestRecord is a finished call as the processor logs it: distinct id, a
// ~2 KB request body and a ~1 KB response body, each with the row number in
// it so that ClickHouse's compression is not flattered by identical rows.
func ingestRecord(i int, at time.Time) *record.Record {
	return &record.Record{
		RequestID:   benchID(),
		CreatedAt:   at,
		Tenant:      "default",
		UserID:      fmt.Sprintf("user-%d", i%997),
		SessionID:   fmt.Sprintf("5b0f3c1e-8d3a-4f7e-9a61-%012d", i%4093),
		SessionPath: "/support/chat",
		SessionName: "support",
		RequestName: "answer",
		Properties: []record.Property{
			{Key: "environment", Value: "production"}, {Key: "feature", Value: "support-chat"}},
		Provider:         "openai",
		Model:            "gpt-4o-mini",
		ResponseModel:    "gpt-4o-mini-2024-07-18",
		Method:           "POST",
		Path:             chatPath,
		Status:           200,
		PromptTokens:     412,
		CompletionTokens: int64(40 + i%60),
		CachedTokens:     128,
		CostUSD:          0.0000966,
		LatencyMs:        int64(300 + i%700),
		TTFTMs:           int64(120 + i%50),
		RequestBody:      string(chatRequestBodyN(false, uint64(i))),
		ResponseBody:     strings.Replace(chatResponseJSON, "chatcmpl-BxQk2mN8vT4pLr7sYw1eZ0aHf9", fmt.Sprintf("chatcmpl-%026d", i), 1),
	}
}

// benchID is a random version-4 UUID, as the processor's request ids are.
func benchID() string {
	a, b := rand.Uint64(), rand.Uint64()
	a = a&^0xf000 | 0x4000
	b = b&^(3<<62) | 2<<62
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

// runIngest writes rows records as fast as one goroutine can into one
// chstore.Writer on a fresh database, then Flush. The records are built
// beforehand, so the time is the writer's and ClickHouse's. QueueSize is
// above rows: the figure is what ClickHouse takes, not the disk spool.
func runIngest(ctx context.Context, base string, rows int, pr *progress) (*ingestResult, error) {
	logs := newLogCounter(pr.w)
	res := &ingestResult{Rows: rows}
	defer func() { res.Logs = logs.summary() }()
	url, db, drop, err := benchDatabase(ctx, base, "ingest", slogTo(logs))
	if err != nil {
		return nil, err
	}
	defer func() {
		if derr := drop(); derr != nil {
			fmt.Fprintf(pr.w, "bench: dropping %s: %v\n", db, derr)
		}
	}()
	dir, err := os.MkdirTemp("", "tollgate-bench-ingest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	recs := make([]*record.Record, rows)
	at := time.Now().UTC()
	for i := range recs {
		recs[i] = ingestRecord(i, at.Add(time.Duration(i)*time.Microsecond))
	}
	res.BodyBytes = len(recs[0].RequestBody) + len(recs[0].ResponseBody)
	w, err := chstore.Open(ctx, chstore.Options{URL: url, SpoolDir: dir, Logger: slogTo(logs), QueueSize: rows + 1})
	if err != nil {
		return nil, err
	}
	runtime.GC()

	start := time.Now()
	for _, r := range recs {
		w.Write(r)
	}
	res.WriteTime = time.Since(start)
	clear(recs) // the writer owns them now
	fctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	ferr := w.Flush(fctx)
	cancel()
	res.Elapsed = time.Since(start)
	cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	cerr := w.Close(cctx)
	cancel()
	if err := errors.Join(ferr, cerr); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}

	conn, _, err := chschema.Connect(url)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	qctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := conn.QueryRow(qctx, "SELECT count() FROM "+db+"."+chschema.RequestsTable+" FINAL").Scan(&res.Final); err != nil {
		return nil, fmt.Errorf("ingest: counting: %w", err)
	}
	pr.printf("ingest %d rows: %.0f rows/s (flushed after %s), Write %.0f ns/op, count() FINAL %d",
		rows, res.rowsPerSec(), res.Elapsed.Round(time.Millisecond), res.writeNs(), res.Final)
	return res, nil
}
