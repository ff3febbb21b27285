package chstore

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/chschema"
)

func fullRecord() *record.Record {
	return &record.Record{
		RequestID: "0193a5e2-7c1d-7b3e-9f00-0123456789ab", CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 678_000_000, time.UTC),
		Tenant: "acme", UserID: "u-1", SessionID: "s-1", SessionPath: "/a/b", SessionName: "sess",
		RequestName: "name", Properties: []record.Property{{Key: "app", Value: "wéb"}, {Key: "empty", Value: ""}},
		Provider: "anthropic", Model: "claude-sonnet-4", ResponseModel: "claude-sonnet-4-20250514",
		Method: "POST", Path: "/v1/messages", TargetURL: "https://example.test",
		Status: record.StatusClientCancelled, Stream: true,
		PromptTokens: 1 << 40, CompletionTokens: 7, CachedTokens: 3, CacheWriteTokens: 2, ReasoningTokens: 1,
		CostUSD: 0.0123456789, LatencyMs: 1234, TTFTMs: 56,
		CacheHit: true, CacheReferenceID: "ref", RateLimited: true,
		PromptID: "p", PromptVersion: 3, FallbackIndex: -1,
		Attempts: 3, RetryPolicy: "num=5 factor=2 min_timeout_ms=1000 max_timeout_ms=10000",
		WorkloadNamespace: "team-a", WorkloadServiceAccount: "chatbot", WorkloadName: "chatbot-7d9f",
		PolicyRule: "openai-only", PolicyDecision: "deny: model gpt-4o not allowed",
		RequestBody: `{"messages":[{"role":"user","content":"hi \"there\" \u00e9"}]}`, ResponseBody: strings.Repeat("x", 70000),
		Error:         "upstream reset",
		ModelOverride: "claude-3-5-sonnet", Warnings: `Helicone-Request-Id "trace-42" is not a UUID; the call has a new id (Helicone-Id)`, ProxyKeyID: "checkout-openai",
		UsageSource: "estimated", CacheSimilarity: 0.9731,
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, r := range []*record.Record{fullRecord(), {CreatedAt: time.Unix(0, 0).UTC()}} {
		got, err := decodeRecord(appendRecord(nil, r))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
}

// TestCodecCoversRecord fails when record.Record gains a field that the
// spool codec (and so the ClickHouse insert) does not carry.
func TestCodecCoversRecord(t *testing.T) {
	typ := reflect.TypeFor[record.Record]()
	r := fullRecord()
	v := reflect.ValueOf(r).Elem()
	for i := range typ.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("fullRecord leaves %s zero: set it so the codec test covers it", typ.Field(i).Name)
		}
	}
}

func TestCodecNeverPanics(t *testing.T) {
	r := fullRecord()
	r.ResponseBody = "short" // every prefix is tried: keep it quick
	p := appendRecord(nil, r)
	for n := range len(p) {
		if _, err := decodeRecord(p[:n]); err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded without error", n, len(p))
		}
	}
	// Flip bytes: errors or a record, never a panic.
	for i := 0; i < len(p); i += 7 {
		q := append([]byte(nil), p...)
		q[i] ^= 0xff
		_, _ = decodeRecord(q)
	}
	if _, err := decodeRecord(append(p, 0)); err == nil {
		t.Error("trailing byte accepted")
	}
}

func writeTestSpool(t *testing.T, dir string, seq uint64, n int) (string, []*record.Record) {
	t.Helper()
	sp, err := openSpool(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	var recs []*record.Record
	for i := range n {
		recs = append(recs, testRecord("spool", i, i%2 == 0))
	}
	if _, err := sp.write(seq, recs); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, spoolName(seq)), recs
}

func TestSpoolIndexAndCap(t *testing.T) {
	dir := t.TempDir()
	writeTestSpool(t, dir, 5, 3)
	writeTestSpool(t, dir, 2, 3)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o600)
	sp, err := openSpool(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := sp.head(); f.seq != 2 {
		t.Errorf("head seq %d, want 2 (oldest first)", f.seq)
	}
	if sp.maxSeq() != 5 {
		t.Errorf("maxSeq %d", sp.maxSeq())
	}
	// A second process on the same directory is refused.
	if _, err := openSpool(dir, 1<<30); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second open: %v", err)
	}
	files, bytes := sp.stats()
	sp.max = bytes + 100 // no room for another batch
	if _, err := sp.write(9, []*record.Record{testRecord("cap", 1, true)}); !errors.Is(err, errSpoolFull) {
		t.Errorf("write beyond cap: %v", err)
	}
	if f2, b2 := sp.stats(); f2 != files || b2 != bytes {
		t.Errorf("failed write changed stats: %d %d -> %d %d", files, bytes, f2, b2)
	}
	sp.close()
}

// TestInsertValuesMatchColumns: the insert gives a value for every column
// it names (that the JSON names of record.Record are the columns is
// chschema's TestRecordJSONNamesAreColumns).
func TestInsertValuesMatchColumns(t *testing.T) {
	var buf requestColumnsBuf
	if n, m := len(chschema.InsertColumnNames()), len(buf.values()); n != m {
		t.Errorf("insert names %d columns, values() gives %d", n, m)
	}
	// The JSON form is what the proto/API engineer sees: keep it loadable.
	if _, err := json.Marshal(fullRecord()); err != nil {
		t.Fatal(err)
	}
}
