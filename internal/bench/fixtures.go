package main

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// The traffic every scenario sends: one realistic chat completion, shaped the
// way Envoy hands it to an ext_proc server (lowercase header keys, values in
// raw_value, pseudo-headers first). The messages are built once and shared by
// every call: gRPC only reads a message while marshalling it.

// chatRequestJSON is a ~2 KB chat-completion request as the OpenAI Python SDK
// sends it: a system prompt, a short history and a tool definition.
const chatRequestJSON = `{"model":"gpt-4o-mini","messages":[` +
	`{"role":"system","content":"You are Aria, the support assistant of Northwind Outfitters, an online retailer of outdoor gear. Answer in a friendly, concise tone. Only answer questions about orders, shipping, returns, sizing and products sold by Northwind. If the customer asks about something else, say politely that you can only help with Northwind topics. Never invent order data: use the lookup_order tool when the customer gives an order number. Prices are in EUR and include VAT. Returns are free within 30 days for unworn items with tags attached; sale items can be exchanged but not refunded."},` +
	`{"role":"user","content":"Hi! I ordered a pair of hiking boots last week (order NW-20931) and they feel a bit tight around the toes. Can I swap them for a half size larger?"},` +
	`{"role":"assistant","content":"Hi there! I'm sorry the boots feel tight. Let me check your order NW-20931 first so I can see which model and size you have and whether the half size up is in stock."},` +
	`{"role":"user","content":"Sure. They're the Ridgeline GTX in 42. I've only worn them indoors for an hour, the tags are still on. Also, would the exchange cost me anything for shipping, and how long does it usually take until the new pair arrives in Germany?%s"}` +
	`],"tools":[{"type":"function","function":{"name":"lookup_order","description":"Look up an order by its number and return its items, sizes, status and delivery address.","parameters":{"type":"object","properties":{"order_number":{"type":"string","description":"Order number such as NW-12345"}},"required":["order_number"]}}},` +
	`{"type":"function","function":{"name":"create_exchange","description":"Start an exchange of one order item for another size of the same product. Returns the exchange id and the return label URL.","parameters":{"type":"object","properties":{"order_number":{"type":"string"},"sku":{"type":"string","description":"SKU of the item to send back"},"new_size":{"type":"string","description":"EU size wanted, e.g. 42.5"}},"required":["order_number","sku","new_size"]}}}],` +
	`"temperature":0.3,"max_tokens":512,"top_p":1,"user":"user-4821"%s}`

func chatRequestBody(stream bool) []byte { return chatRequestBodyTagged(stream, "") }

// chatRequestBodyN is the same request with a call number in the last user
// message: a body no other call sends, so the cache never has it (a MISS).
// The number has a fixed width, so every such body has the same length.
func chatRequestBodyN(stream bool, n uint64) []byte {
	return chatRequestBodyTagged(stream, fmt.Sprintf(" (ticket #%010d)", n))
}

func chatRequestBodyTagged(stream bool, tag string) []byte {
	extra := ""
	if stream {
		// No stream_options, as the SDKs send it by default: the processor
		// adds include_usage and replaces the body, the realistic hard case.
		extra = `,"stream":true`
	}
	return fmt.Appendf(nil, chatRequestJSON, tag, extra)
}

// Rate-limit policies of the fixtures: one no call ever reaches (the common
// case: a limit is set, the call is under it) and one of a single call per
// 60 s window (every call after the first is answered 429).
const (
	policyHigh  = "1000000;w=60;s=user"
	policyOfOne = "1;w=60;s=user"
)

// requestHeaderPairs are the headers of a call from the OpenAI Python SDK
// through Envoy, with the Helicone headers a typical application adds: user,
// session, two properties, the cache on and a per-user rate-limit policy.
func requestHeaderPairs(bodyLen int, policy string) []string {
	return []string{
		":authority", "tollgate-envoy:10000",
		":path", "/v1/chat/completions",
		":method", "POST",
		":scheme", "http",
		"content-type", "application/json",
		"content-length", strconv.Itoa(bodyLen),
		"accept", "application/json",
		"authorization", "Bearer sk-proj-benchbenchbenchbenchbenchbenchbenchbench",
		"user-agent", "OpenAI/Python 1.82.0",
		"x-stainless-lang", "python",
		"x-stainless-package-version", "1.82.0",
		"x-stainless-os", "Linux",
		"x-stainless-arch", "x64",
		"x-stainless-runtime", "CPython",
		"x-stainless-runtime-version", "3.12.3",
		"x-stainless-retry-count", "0",
		"x-stainless-read-timeout", "600",
		"helicone-user-id", "user-4821",
		"helicone-session-id", "5b0f3c1e-8d3a-4f7e-9a61-2f4d8c9e7b10",
		"helicone-property-environment", "production",
		"helicone-property-feature", "support-chat",
		"helicone-cache-enabled", "true",
		"helicone-ratelimit-policy", policy,
		"x-forwarded-proto", "http",
		"x-request-id", "0c7d1f52-93e4-4a8b-b6c2-4e5f6a7b8c9d",
	}
}

// chatResponseJSON is a non-streamed answer with usage, as OpenAI sends it.
const chatResponseJSON = `{"id":"chatcmpl-BxQk2mN8vT4pLr7sYw1eZ0aHf9","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini-2024-07-18",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Good news: the Ridgeline GTX in 42.5 is in stock, and since the boots are unworn outdoors with tags attached, the exchange is free. I'll email you a prepaid return label; once the carrier scans your parcel we ship the new pair right away. Delivery to Germany usually takes 2 to 3 business days.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":412,"completion_tokens":71,"total_tokens":483,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},` +
	`"service_tier":"default","system_fingerprint":"fp_560af6e559"}`

func responseHeaderPairs(contentType string, bodyLen int) []string {
	h := []string{
		":status", "200",
		"date", "Thu, 01 Jan 2026 00:00:00 GMT",
		"content-type", contentType,
	}
	if bodyLen >= 0 {
		h = append(h, "content-length", strconv.Itoa(bodyLen))
	}
	return append(h,
		"openai-organization", "user-benchbench",
		"openai-processing-ms", "512",
		"openai-version", "2020-10-01",
		"x-ratelimit-limit-requests", "10000",
		"x-ratelimit-remaining-requests", "9999",
		"x-ratelimit-reset-requests", "6ms",
		"x-request-id", "req_5f0c2b7e9a1d4c3b8e6f",
		"x-envoy-upstream-service-time", "515",
	)
}

// sseChunks is an OpenAI chat stream split the way it arrives: one SSE event
// per chunk — the role, content deltas, the finish reason, the usage chunk
// that include_usage asks for, and [DONE]. n is the total number of chunks
// (at least 5).
func sseChunks(n int) [][]byte {
	const head = `data: {"id":"chatcmpl-BxQk2mN8vT4pLr7sYw1eZ0aHf9","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_560af6e559",`
	words := strings.Fields("Good news: the Ridgeline GTX in 42.5 is in stock, and since the boots are unworn outdoors with tags attached, the exchange is free. I'll email you a prepaid return label; delivery to Germany takes 2 to 3 business days.")
	deltas := n - 4 // role, finish, usage and [DONE] are the other four
	chunks := [][]byte{[]byte(head + `"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n")}
	for i := range deltas {
		lo, hi := i*len(words)/deltas, (i+1)*len(words)/deltas
		text := strconv.Quote(" " + strings.Join(words[lo:hi], " "))
		chunks = append(chunks, []byte(head+`"choices":[{"index":0,"delta":{"content":`+text+`},"logprobs":null,"finish_reason":null}],"usage":null}`+"\n\n"))
	}
	chunks = append(chunks,
		[]byte(head+`"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`+"\n\n"),
		[]byte(head+`"choices":[],"usage":{"prompt_tokens":412,"completion_tokens":43,"total_tokens":455,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`+"\n\n"),
		[]byte("data: [DONE]\n\n"),
	)
	return chunks
}

// sseChunkCount is the number of response_body messages of the SSE scenario.
const sseChunkCount = 20

// script is the sequence of messages one call sends, each waiting for its
// reply.
type script struct {
	name string
	msgs []*extprocv3.ProcessingRequest
	sse  bool // the response is an event stream (expect a STREAMED override)
	// bodies, when set, gives every call its own request body (msgs[1] is
	// then only the first call's): each call is a cache MISS.
	bodies *bodySeq
	// answer: Tollgate must answer the request body with an immediate
	// response of this status (200 a cache hit, 429 rate limited); 0: it
	// must continue. The floor always continues.
	answer int
	// prime is one call made on a fresh target before its warm-up: the fill
	// a hit needs, the call that empties a bucket of one.
	prime *script
}

// bodySeq numbers the request bodies of a script across all its runs, so
// no two calls of one benchmark send the same body.
type bodySeq struct {
	stream bool
	n      atomic.Uint64
}

func (b *bodySeq) next() *extprocv3.ProcessingRequest {
	return requestBodyMsg(chatRequestBodyN(b.stream, b.n.Add(1)))
}

// requestBody is the body message of the next call.
func (sc *script) requestBody() *extprocv3.ProcessingRequest {
	if sc.bodies != nil {
		return sc.bodies.next()
	}
	return sc.msgs[1]
}

// bufferedScript: the four round trips of a non-streamed chat completion,
// a new body each call (a cache MISS, filled after the response).
func bufferedScript() *script {
	sc := fixedBufferedScript(chatRequestBodyN(false, 0), policyHigh)
	sc.bodies = &bodySeq{}
	return sc
}

// fixedBufferedScript: the four round trips with the same body every call.
func fixedBufferedScript(body []byte, policy string) *script {
	return &script{name: "buffered", msgs: []*extprocv3.ProcessingRequest{
		requestHeadersMsg(requestHeaderPairs(len(body), policy)),
		requestBodyMsg(body),
		responseHeadersMsg(responseHeaderPairs("application/json", len(chatResponseJSON))),
		responseBodyMsg([]byte(chatResponseJSON), true),
	}}
}

// hitScript: the same body every call, filled once by its prime call, so
// Tollgate answers every call from the cache at the request-body phase: two
// round trips (the floor continues both and gets no response phase either).
func hitScript() *script {
	body := chatRequestBodyTagged(false, " (ticket #cachedhit0)")
	full := fixedBufferedScript(body, policyHigh)
	return &script{name: "hit", msgs: full.msgs[:2], answer: 200, prime: full}
}

// limitedScript: a new body each call under a policy of one call per
// window; the prime call takes the only token, every later call is a 429 at
// the request-body phase (two round trips).
func limitedScript() *script {
	body := chatRequestBodyN(false, 0)
	full := fixedBufferedScript(body, policyOfOne)
	full.bodies = &bodySeq{}
	return &script{name: "limited", msgs: full.msgs[:2], answer: 429, prime: full, bodies: full.bodies}
}

// sseScript: request headers and body (a new one each call), response
// headers of an event stream, then every chunk in its own response_body
// message.
func sseScript() *script {
	body := chatRequestBodyN(true, 0)
	s := &script{name: "sse", sse: true, bodies: &bodySeq{stream: true}, msgs: []*extprocv3.ProcessingRequest{
		requestHeadersMsg(requestHeaderPairs(len(body), policyHigh)),
		requestBodyMsg(body),
		responseHeadersMsg(responseHeaderPairs("text/event-stream; charset=utf-8", -1)),
	}}
	chunks := sseChunks(sseChunkCount)
	for i, c := range chunks {
		s.msgs = append(s.msgs, responseBodyMsg(c, i == len(chunks)-1))
	}
	return s
}

func headerMap(kv []string) *corev3.HeaderMap {
	m := &corev3.HeaderMap{Headers: make([]*corev3.HeaderValue, 0, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Headers = append(m.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return m
}

func requestHeadersMsg(kv []string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(kv)}}}
}

func requestBodyMsg(body []byte) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: true}}}
}

func responseHeadersMsg(kv []string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: headerMap(kv)}}}
}

func responseBodyMsg(body []byte, endOfStream bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: body, EndOfStream: endOfStream}}}
}
