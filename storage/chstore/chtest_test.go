package chstore

// Helpers shared by the tests of this package. Private ClickHouse servers
// (for tests that kill and restart one) come from internal/testenv.

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/tollgate-dev/tollgate/internal/testenv"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

// testLogger: see testenv.Logger.
func testLogger(t testing.TB) (*slog.Logger, *testenv.LogBuffer) {
	return testenv.Logger(t, "writer log")
}

// chConn opens a native connection to addr (host:port).
func chConn(t testing.TB, addr string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol:    clickhouse.Native,
		Addr:        []string{addr},
		Auth:        clickhouse.Auth{Username: "default"},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// testDB names a fresh database on the server at baseURL
// (clickhouse://host:port), migrated, dropped when the test ends. It
// returns the writer URL and a connection for checks.
func testDB(t testing.TB, baseURL string) (string, string, driver.Conn) {
	t.Helper()
	db := fmt.Sprintf("chstore_%d_%04x", time.Now().UnixNano()%1e9, rand.N(1<<16))
	url := baseURL + "/" + db
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log, _ := testLogger(t)
	if err := chschema.Migrate(ctx, url, log); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	conn := chConn(t, strings.TrimPrefix(baseURL, "clickhouse://"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db)
	})
	return url, db, conn
}

// sharedURL is the shared test server (skip or fail when absent).
func sharedURL(t testing.TB) string {
	t.Helper()
	return testenv.ClickHouseURL(t)
}

// deadURL points at a loopback port nobody listens on: ClickHouse "down".
func deadURL(t testing.TB, db string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "clickhouse://" + addr + "/" + db
}

// counts returns count() FINAL, uniqExact(request_id) and the raw count()
// of db.requests, optionally restricted by a WHERE clause.
func counts(t testing.TB, conn driver.Conn, db, where string) (final, distinct, raw uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if where != "" {
		where = " WHERE " + where
	}
	q := func(sql string) uint64 {
		var n uint64
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	final = q("SELECT count() FROM " + db + ".requests FINAL" + where)
	distinct = q("SELECT uniqExact(request_id) FROM " + db + ".requests" + where)
	raw = q("SELECT count() FROM " + db + ".requests" + where)
	return
}

var testIDNamespace = uuid.MustParse("0f6f3c1e-2a57-4c4e-8d7a-1b2c3d4e5f60")

// testID is a deterministic request id, so a subprocess and the test agree.
func testID(tag string, i int) string {
	return uuid.NewSHA1(testIDNamespace, fmt.Appendf(nil, "%s-%d", tag, i)).String()
}

// realisticBodies are a ~1.5 KB chat request and a ~0.6 KB answer.
var realisticReq, realisticResp = func() (string, string) {
	var msgs []string
	for i := range 6 {
		msgs = append(msgs, fmt.Sprintf(`{"role":"user","content":"Message %d: please summarise the quarterly report for the board, focusing on revenue, churn, and the hiring plan; keep it under 200 words and use bullet points where it helps."}`, i))
	}
	req := `{"model":"gpt-4o-mini","temperature":0.2,"stream":false,"messages":[` + strings.Join(msgs, ",") + `]}`
	resp := `{"id":"chatcmpl-9zX","object":"chat.completion","created":1732550000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"- Revenue grew 12% quarter on quarter, driven by the enterprise tier.\n- Churn fell to 2.1%.\n- Hiring: 14 engineers, 3 sales, 2 support by Q3.\n- Risks: FX exposure and a delayed EU launch."},"finish_reason":"stop"}],"usage":{"prompt_tokens":412,"completion_tokens":58,"total_tokens":470,"prompt_tokens_details":{"cached_tokens":128}}}`
	return req, resp
}()

// testRecord is a plausible record; bodies=false keeps it small.
func testRecord(tag string, i int, bodies bool) *record.Record {
	r := &record.Record{
		RequestID:        testID(tag, i),
		CreatedAt:        time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
		Tenant:           "tenant-" + tag,
		UserID:           fmt.Sprintf("user-%d", i%17),
		SessionID:        fmt.Sprintf("sess-%d", i%5),
		SessionPath:      "/chat/turn",
		SessionName:      "support",
		RequestName:      "summarise",
		Properties:       []record.Property{{Key: "app", Value: "web"}, {Key: "env", Value: "test"}},
		Provider:         "openai",
		Model:            "gpt-4o-mini",
		ResponseModel:    "gpt-4o-mini-2024-07-18",
		Method:           "POST",
		Path:             "/v1/chat/completions",
		Status:           200,
		PromptTokens:     412,
		CompletionTokens: 58,
		CachedTokens:     128,
		CostUSD:          0.0000966,
		LatencyMs:        int64(300 + i%200),
		TTFTMs:           int64(120 + i%50),
	}
	if bodies {
		// Vary each row a little, as real traffic does (and so that
		// ClickHouse's compression is not flattered by identical rows).
		n := fmt.Sprintf("%d-%x", i, uint32(i)*2654435761)
		r.RequestBody = strings.Replace(realisticReq, "quarterly", "quarterly ("+n+")", 1)
		r.ResponseBody = strings.Replace(realisticResp, "chatcmpl-9zX", "chatcmpl-"+n, 1)
	} else {
		r.RequestBody, r.ResponseBody = `{"i":`+fmt.Sprint(i)+`}`, `{"ok":true}`
	}
	return r
}

// fakeSender is an in-memory ClickHouse for the writer's unit tests.
type fakeSender struct {
	mu      sync.Mutex
	down    bool
	delay   time.Duration
	stuck   chan struct{} // non-nil: insert blocks until closed, ignoring ctx (a driver stuck in a read)
	rows    []*record.Record
	batches [][]string // request ids per insert, in order
	inserts int
	pings   int
}

func (f *fakeSender) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *fakeSender) insert(ctx context.Context, recs []*record.Record) error {
	f.mu.Lock()
	down, delay, stuck := f.down, f.delay, f.stuck
	f.inserts++
	f.mu.Unlock()
	if down {
		return fmt.Errorf("fake: connection refused")
	}
	if stuck != nil {
		if err := ctx.Err(); err != nil {
			return err // like the driver: a dead context fails before dialing
		}
		<-stuck
		return fmt.Errorf("fake: connection reset")
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.RequestID
		cp := *r
		f.rows = append(f.rows, &cp)
	}
	f.batches = append(f.batches, ids)
	return nil
}

func (f *fakeSender) ping(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pings++
	if f.down {
		return fmt.Errorf("fake: connection refused")
	}
	return nil
}

func (f *fakeSender) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.rows))
	for i, r := range f.rows {
		out[i] = r.RequestID
	}
	return out
}

func (f *fakeSender) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.rows)
}

// spoolRecords decodes every spool file in dir (for polling and checks).
func spoolRecords(t testing.TB, dir string) (recs int, files int, torn int) {
	t.Helper()
	sp, err := scanSpoolDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sp {
		rd, err := readSpoolFile(f.path)
		if err != nil {
			continue // vanished while we looked
		}
		files++
		recs += len(rd.recs)
		if rd.torn != nil {
			torn++
		}
	}
	return
}
