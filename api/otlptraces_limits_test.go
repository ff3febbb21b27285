package api

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tollgate-dev/tollgate/record"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

// wrapSpan puts one encoded Span into resourceSpans[0].scopeSpans[0]:
// the bytes a decoder sees, built by hand so that a bomb costs the test
// nothing to make.
func wrapSpans(spans ...[]byte) []byte {
	var ss []byte
	for _, sp := range spans {
		ss = protowire.AppendTag(ss, 2, protowire.BytesType)
		ss = protowire.AppendBytes(ss, sp)
	}
	rs := protowire.AppendTag(nil, 2, protowire.BytesType)
	rs = protowire.AppendBytes(rs, ss)
	req := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(req, rs)
}

// allocatedBy is what f allocates, in bytes (all goroutines: a generous
// bound is a functional guard, not a measure).
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func otlpMessage(t *testing.T, contentType string, body []byte) string {
	t.Helper()
	var st status.Status
	var err error
	if contentType == "application/json" {
		err = protojson.Unmarshal(body, &st)
	} else {
		err = proto.Unmarshal(body, &st)
	}
	if err != nil {
		return string(body) // a plain API error
	}
	return st.GetMessage()
}

// A gzip body of a few kilobytes that inflates into two million empty
// attributes would take gigabytes once decoded: it is refused before
// decoding, naming the field, within a few megabytes.
func TestTracesRefusesAnAttributeBombWithBoundedMemory(t *testing.T) {
	h := New(Options{Sink: record.NewMemory(), Now: fixedClock(t0)})
	emptyAttr := protowire.AppendBytes(protowire.AppendTag(nil, 9, protowire.BytesType), nil)
	bomb := gzipped(t, wrapSpans(bytes.Repeat(emptyAttr, 2_000_000)))
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb of %d bytes gzipped", len(bomb))
	}
	var code int
	var msg string
	alloc := allocatedBy(func() {
		rr := postTraces(t, h, "application/x-protobuf", bomb, map[string]string{"Content-Encoding": "gzip"})
		code, msg = rr.Code, otlpMessage(t, "application/x-protobuf", rr.Body.Bytes())
	})
	if code != http.StatusBadRequest || !strings.Contains(msg, "resourceSpans[0].scopeSpans[0].spans[0].attributes: more than 128 attributes") {
		t.Errorf("status %d %q; want 400 naming the span's attributes", code, msg)
	}
	if alloc > 64<<20 {
		t.Errorf("refusing the bomb allocated %d MiB", alloc>>20)
	}

	// The same in JSON: a million empty objects are refused before protojson.
	js := `{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[` + strings.Repeat("{},", 1_300_000) + `{}]}]}]}]}`
	alloc = allocatedBy(func() {
		rr := postTraces(t, h, "application/json", gzipped(t, []byte(js)), map[string]string{"Content-Encoding": "gzip"})
		code, msg = rr.Code, otlpMessage(t, "application/json", rr.Body.Bytes())
	})
	if code != http.StatusBadRequest || !strings.Contains(msg, "more than 200000 objects") {
		t.Errorf("JSON: status %d %q; want 400 naming the objects' bound", code, msg)
	}
	if alloc > 64<<20 {
		t.Errorf("JSON: refusing the bomb allocated %d MiB", alloc>>20)
	}
}

func TestTracesRefusesBodiesOverItsLimit(t *testing.T) {
	h := New(Options{Sink: record.NewMemory(), Now: fixedClock(t0)})
	limit := strconv.Itoa(maxTraceBodyBytes)
	big := make([]byte, maxTraceBodyBytes+1)
	var code int
	var msg string
	alloc := allocatedBy(func() {
		rr := postTraces(t, h, "application/x-protobuf", gzipped(t, big), map[string]string{"Content-Encoding": "gzip"})
		code, msg = rr.Code, rr.Body.String()
	})
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, limit) || !strings.Contains(msg, "inflated") {
		t.Errorf("inflated over the limit: status %d %s", code, msg)
	}
	if alloc > 64<<20 {
		t.Errorf("refusing an inflated body allocated %d MiB", alloc>>20)
	}
	if rr := postTraces(t, h, "application/x-protobuf", big, nil); rr.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rr.Body.String(), limit) {
		t.Errorf("raw over the limit: status %d %s", rr.Code, rr.Body)
	}
}

func TestTracesBoundsSpansEventsAndValues(t *testing.T) {
	h := New(Options{Sink: record.NewMemory(), Now: fixedClock(t0)})
	spans := make([][]byte, maxTraceSpans+1)
	for i := range spans {
		spans[i] = []byte{}
	}
	manyAttrs := make([]*commonpb.KeyValue, maxTraceAttributes+1)
	for i := range manyAttrs {
		manyAttrs[i] = kvInt("k"+strconv.Itoa(i), 1)
	}
	spanWith := func(sp *tracepb.Span) []byte {
		b, _ := proto.Marshal(traceRequest(sp))
		return b
	}
	events := chatSpan()
	for range maxTraceEvents + 1 {
		events.Events = append(events.Events, &tracepb.Span_Event{Name: "e"})
	}
	// An attribute whose value is an array nested deeper than the bound.
	v := &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 1}}
	for range maxTraceDepth + 1 {
		v = &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{v}}}}
	}
	deep := chatSpan(&commonpb.KeyValue{Key: "deep", Value: v})
	jsonAttrs, _ := protojson.Marshal(traceRequest(chatSpan(manyAttrs...)))

	for _, tc := range []struct {
		name, contentType string
		body              []byte
		want              string
	}{
		{"too many spans", "application/x-protobuf", wrapSpans(spans...), "resourceSpans[0].scopeSpans[0].spans[10000]: more than 10000 spans"},
		{"too many attributes", "application/x-protobuf", spanWith(chatSpan(manyAttrs...)), "resourceSpans[0].scopeSpans[0].spans[0].attributes: more than 128 attributes"},
		{"too many attributes in JSON", "application/json", jsonAttrs, "resourceSpans[0].scopeSpans[0].spans[0].attributes: more than 128 attributes"},
		{"too many events", "application/x-protobuf", spanWith(events), "spans[0].events: more than 128 events"},
		{"values nested too deep", "application/x-protobuf", spanWith(deep), "values nested more than 8 deep"},
	} {
		rr := postTraces(t, h, tc.contentType, tc.body, nil)
		if msg := otlpMessage(t, tc.contentType, rr.Body.Bytes()); rr.Code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: status %d %q; want 400 with %q", tc.name, rr.Code, msg, tc.want)
		}
	}
}

// When every decode slot is taken, a request waits a little then gets a
// 503 with Retry-After, which OTLP exporters retry.
func TestTracesBusyDecodersAnswer503(t *testing.T) {
	h := New(Options{Sink: record.NewMemory(), Now: fixedClock(t0)})
	wait := traceDecodeWait
	traceDecodeWait = time.Millisecond
	for range maxTraceDecodes {
		traceDecodes <- struct{}{}
	}
	t.Cleanup(func() {
		for range maxTraceDecodes {
			<-traceDecodes
		}
		traceDecodeWait = wait
	})
	pb, _ := proto.Marshal(traceRequest(chatSpan()))
	rr := postTraces(t, h, "application/x-protobuf", pb, nil)
	if rr.Code != http.StatusServiceUnavailable || rr.Header().Get("Retry-After") == "" {
		t.Errorf("all slots taken: status %d, Retry-After %q; want 503 with Retry-After", rr.Code, rr.Header().Get("Retry-After"))
	}
}
