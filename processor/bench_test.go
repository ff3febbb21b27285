package processor

import (
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"

	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/memstore"
)

// BenchmarkCall measures the processor's own CPU and heap per call over the
// four phases of one call, without gRPC (the transport's share is measured
// by internal/bench), with everything a production call has on: the cache
// lookup and a rate-limit take in one gate check, the cache fill after the
// response, and the record handed to a sink:
//
//	go test -run '^$' -bench BenchmarkCall -benchmem ./processor/
//
// The gate's store is the in-process memstore (its cache fills dropped, so
// the map does not grow over b.N calls) and the sink discards records: the
// figure is the processor's, not Redis's client or ClickHouse's encoder.
// Every call sends a request body no other call sent (a cache MISS), as
// most production calls are.
func BenchmarkCall(b *testing.B) {
	b.Run("buffered", func(b *testing.B) { benchmarkCall(b, newBenchCall(false)) })
	b.Run("sse", func(b *testing.B) { benchmarkCall(b, newBenchCall(true)) })
}

func benchmarkCall(b *testing.B, bc *benchCall) {
	srv := benchServer()
	stream := &benchStream{ctx: context.Background(), msgs: bc.msgs}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		bc.number(n)
		stream.next = 0
		if err := srv.Process(stream); err != nil {
			b.Fatal(err)
		}
	}
	if stream.immediate != 0 {
		b.Fatalf("%d calls answered by Tollgate; every call must reach the provider", stream.immediate)
	}
}

// BenchmarkCodec marshals the replies of one call (four for a buffered
// call, 23 for the SSE one) with gRPC's own codec and with the registered
// one, which takes the vtproto path when built with -tags vtprotobuf
// (codec.go):
//
//	go test -tags vtprotobuf -run '^$' -bench BenchmarkCodec -benchmem ./processor/
func BenchmarkCodec(b *testing.B) {
	registered := encoding.GetCodecV2("proto")
	codecs := []struct {
		name  string
		codec encoding.CodecV2
	}{{"grpc", registered.(vtCodec).fallback}, {"registered", registered}}
	for _, sse := range []bool{false, true} {
		f := &fakeStream{ctx: context.Background(), script: newBenchCall(sse).msgs}
		if err := benchServer().Process(f); err != nil {
			b.Fatal(err)
		}
		name := map[bool]string{false: "buffered", true: "sse"}[sse]
		for _, c := range codecs {
			b.Run(name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					for _, r := range f.replies {
						data, err := c.codec.Marshal(r)
						if err != nil {
							b.Fatal(err)
						}
						data.Free()
					}
				}
			})
		}
	}
}

// benchServer is a processor with the gate on (memstore) and a discarding
// sink.
func benchServer() *Server {
	g := gate.New(gate.Options{Store: noFillStore{memstore.New(memstore.Options{})}})
	return New(Options{Gate: g, Sink: record.Discard{}})
}

// noFillStore is the memstore without its cache writes: the benchmark makes
// millions of distinct calls, and keeping each one's entry would measure
// the map's growth.
type noFillStore struct{ *memstore.Store }

func (noFillStore) Fill(context.Context, string, int, []byte, time.Duration) (int, error) {
	return 0, nil
}

// benchStream feeds a script into Process and counts the immediate
// responses (a cache hit or a 429 would make the figure meaningless).
type benchStream struct {
	grpc.ServerStream
	ctx       context.Context
	msgs      []*extprocv3.ProcessingRequest
	next      int
	immediate int
}

func (s *benchStream) Context() context.Context { return s.ctx }
func (s *benchStream) Send(r *extprocv3.ProcessingResponse) error {
	if r.GetImmediateResponse() != nil {
		s.immediate++
	}
	return nil
}
func (s *benchStream) Recv() (*extprocv3.ProcessingRequest, error) {
	if s.next == len(s.msgs) {
		return nil, io.EOF
	}
	s.next++
	return s.msgs[s.next-1], nil
}

// benchCall is one call's script, its request body numbered per call.
type benchCall struct {
	msgs []*extprocv3.ProcessingRequest
	body []byte
	tag  int // offset of the call number in body
}

// number writes n into the body's ticket number in place: a new cache key
// per call, the same length, no allocation.
func (bc *benchCall) number(n int) {
	var digits [10]byte
	s := strconv.AppendInt(digits[:0], int64(n), 10)
	copy(bc.body[bc.tag:bc.tag+10], "0000000000")
	copy(bc.body[bc.tag+10-len(s):], s)
}

// benchHistory is a support conversation long enough to make the request
// about 3 KB, as a chat completion with a system prompt, a few turns and two
// tools is.
var benchHistory = []string{
	`{"role":"system","content":"You are Aria, the support assistant of Northwind Outfitters, an online retailer of outdoor gear. Answer in a friendly, concise tone. Only answer questions about orders, shipping, returns, sizing and products sold by Northwind. If the customer asks about something else, say politely that you can only help with Northwind topics. Never invent order data: use the lookup_order tool when the customer gives an order number. Prices are in EUR and include VAT. Returns are free within 30 days for unworn items with tags attached; sale items can be exchanged but not refunded."}`,
	`{"role":"user","content":"Hi! I ordered a pair of hiking boots last week (order NW-20931) and they feel a bit tight around the toes. Can I swap them for a half size larger?"}`,
	`{"role":"assistant","content":"Hi there! I'm sorry the boots feel tight. Let me check your order NW-20931 first so I can see which model and size you have and whether the half size up is in stock."}`,
	`{"role":"user","content":"Sure. They're the Ridgeline GTX in 42. I've only worn them indoors for an hour, the tags are still on."}`,
	`{"role":"assistant","content":"Thanks! I can see the Ridgeline GTX in EU 42 on order NW-20931, delivered on Tuesday. The 42.5 is in stock in the same colour. Since they are unworn outdoors with the tags attached, the exchange is free of charge."}`,
	`{"role":"user","content":"Perfect. Do I need to print anything, or can I just drop the parcel at a DHL shop? I don't have a printer at home and the nearest copy shop closes early on Saturdays."}`,
	`{"role":"assistant","content":"No printer needed: I'll send you a QR code by email, and any DHL Packstation or shop scans it and prints the label for you. Please pack the boots in their original box with the tags attached, and keep the receipt the shop gives you until the exchange is complete."}`,
	`{"role":"user","content":"Great. Would the exchange cost me anything for shipping, and how long does it usually take until the new pair arrives in Germany? I'm leaving for a trip in ten days (ticket #0000000000)."}`,
}

const benchTools = `"tools":[{"type":"function","function":{"name":"lookup_order","description":"Look up an order by its number and return its items, sizes, status and delivery address.","parameters":{"type":"object","properties":{"order_number":{"type":"string","description":"Order number such as NW-12345"}},"required":["order_number"]}}},` +
	`{"type":"function","function":{"name":"create_exchange","description":"Start an exchange of one order item for another size of the same product. Returns the exchange id and the return label URL.","parameters":{"type":"object","properties":{"order_number":{"type":"string"},"sku":{"type":"string","description":"SKU of the item to send back"},"new_size":{"type":"string","description":"EU size wanted, e.g. 42.5"}},"required":["order_number","sku","new_size"]}}}]`

const benchResponse = `{"id":"chatcmpl-BxQk2mN8vT4pLr7sYw1eZ0aHf9","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini-2024-07-18",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Good news: the Ridgeline GTX in 42.5 is in stock, and since the boots are unworn outdoors with tags attached, the exchange is free. I'll email you a prepaid return label; once the carrier scans your parcel we ship the new pair right away. Delivery to Germany usually takes 2 to 3 business days.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":612,"completion_tokens":71,"total_tokens":683,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},` +
	`"service_tier":"default","system_fingerprint":"fp_560af6e559"}`

func newBenchCall(sse bool) *benchCall {
	stream := ""
	if sse {
		stream = `,"stream":true` // no stream_options: the processor adds include_usage
	}
	body := []byte(`{"model":"gpt-4o-mini","messages":[` + strings.Join(benchHistory, ",") + `],` + benchTools +
		`,"temperature":0.3,"max_tokens":512,"user":"user-4821"` + stream + `}`)
	bc := &benchCall{body: body, tag: strings.Index(string(body), "#0000000000") + 1}
	reqHeaders := benchHeaders(
		":authority", "tollgate-envoy:10000", ":path", "/v1/chat/completions", ":method", "POST", ":scheme", "http",
		"content-type", "application/json", "content-length", strconv.Itoa(len(body)), "accept", "application/json",
		"authorization", "Bearer sk-proj-benchbenchbenchbenchbenchbenchbenchbench",
		"user-agent", "OpenAI/Python 1.82.0", "x-stainless-lang", "python", "x-stainless-package-version", "1.82.0",
		"x-stainless-os", "Linux", "x-stainless-arch", "x64", "x-stainless-runtime", "CPython",
		"x-stainless-runtime-version", "3.12.3", "x-stainless-retry-count", "0", "x-stainless-read-timeout", "600",
		"helicone-user-id", "user-4821", "helicone-session-id", "5b0f3c1e-8d3a-4f7e-9a61-2f4d8c9e7b10",
		"helicone-property-environment", "production", "helicone-property-feature", "support-chat",
		"helicone-cache-enabled", "true", "helicone-ratelimit-policy", "1000000;w=60;s=user",
		"x-forwarded-proto", "http", "x-request-id", "0c7d1f52-93e4-4a8b-b6c2-4e5f6a7b8c9d")
	contentType, contentLength := "application/json", strconv.Itoa(len(benchResponse))
	if sse {
		contentType, contentLength = "text/event-stream; charset=utf-8", ""
	}
	respHeaders := benchHeaders(":status", "200", "date", "Thu, 01 Jan 2026 00:00:00 GMT", "content-type", contentType,
		"openai-organization", "user-benchbench", "openai-processing-ms", "512", "openai-version", "2020-10-01",
		"x-ratelimit-limit-requests", "10000", "x-ratelimit-remaining-requests", "9999",
		"x-request-id", "req_5f0c2b7e9a1d4c3b8e6f", "x-envoy-upstream-service-time", "515")
	if contentLength != "" {
		respHeaders.Headers = append(respHeaders.Headers, &corev3.HeaderValue{Key: "content-length", RawValue: []byte(contentLength)})
	}
	bc.msgs = []*extprocv3.ProcessingRequest{
		{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: reqHeaders}}},
		{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: true}}},
		{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: respHeaders}}},
	}
	chunks := [][]byte{[]byte(benchResponse)}
	if sse {
		chunks = benchSSEChunks(20)
	}
	for i, chunk := range chunks {
		bc.msgs = append(bc.msgs, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
			ResponseBody: &extprocv3.HttpBody{Body: chunk, EndOfStream: i == len(chunks)-1}}})
	}
	return bc
}

func benchHeaders(kv ...string) *corev3.HeaderMap {
	m := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return m
}

// benchSSEChunks is an OpenAI chat stream of n events, one per message: the
// role, content deltas, the finish reason, the usage chunk include_usage
// asks for, and [DONE].
func benchSSEChunks(n int) [][]byte {
	const head = `data: {"id":"chatcmpl-BxQk2mN8vT4pLr7sYw1eZ0aHf9","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_560af6e559",`
	words := strings.Fields("Good news: the Ridgeline GTX in 42.5 is in stock, and since the boots are unworn outdoors with tags attached, the exchange is free. I'll email you a prepaid return label; delivery to Germany takes 2 to 3 business days.")
	chunks := [][]byte{[]byte(head + `"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n")}
	deltas := n - 4
	for i := range deltas {
		lo, hi := i*len(words)/deltas, (i+1)*len(words)/deltas
		text := strconv.Quote(" " + strings.Join(words[lo:hi], " "))
		chunks = append(chunks, []byte(head+`"choices":[{"index":0,"delta":{"content":`+text+`},"logprobs":null,"finish_reason":null}],"usage":null}`+"\n\n"))
	}
	return append(chunks,
		[]byte(head+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`+"\n\n"),
		[]byte(head+`"choices":[],"usage":{"prompt_tokens":612,"completion_tokens":43,"total_tokens":655}}`+"\n\n"),
		[]byte("data: [DONE]\n\n"),
	)
}
