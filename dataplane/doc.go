// Package dataplane is Tollgate's local data plane: a plain Go HTTP reverse
// proxy that stands in for Envoy on machines where Envoy cannot run. It drives
// the ext_proc processor over a real gRPC ExternalProcessor.Process stream the
// way Envoy's envoy.filters.http.ext_proc filter and router do with the
// production filter config (request_header_mode SEND, request_body_mode
// BUFFERED, response_header_mode SEND, response_body_mode BUFFERED, trailers
// SKIP, allow_mode_override true). It knows the processor only through that
// stream and imports nothing else from the repository.
//
// # One request
//
//  1. Connection manager: x-request-id is generated when missing or empty,
//     x-forwarded-proto added when missing, hop-by-hop headers dropped, the
//     route picked (UpstreamHeader, else /v1/messages* to Anthropic, else
//     OpenAI).
//  2. request_headers: :method, :path, :authority, :scheme, then the headers
//     lowercased and sorted by name (Go loses the wire order), every value in
//     raw_value. end_of_stream when there is no body. The first message
//     carries protocol_config; every message an empty metadata_context.
//  3. request_body (BUFFERED): the whole body, at most MaxRequestBody
//     (else a 413 local reply), in one message with end_of_stream.
//  4. Router: the route is re-picked after any reply with clear_route_cache;
//     UpstreamHeader and hop-by-hop headers are removed; the Host header
//     becomes the upstream host. Connect failure gives 503, RouteTimeout
//     before response headers 504, StreamIdleTimeout before headers 408.
//  5. response_headers (:status first) and response_body (BUFFERED, at most
//     MaxResponseBody, else 500). A mode_override to STREAMED sends headers
//     downstream at once and then every upstream read as one message, each
//     reply's chunk written and flushed, and a last message with
//     end_of_stream.
//
// Local replies of the router and connection manager (400/404/408/413/503/
// 504) go through the response phases like an upstream response. Replies for
// ext_proc's own failures (500, or 504 for a message timeout) and the
// processor's immediate_response do not.
//
// # Where this follows Envoy, including its surprises
//
//   - Header mutations: removals, then sets. Only raw_value is read (a
//     HeaderValue with only value sets the header to ""); both value and
//     raw_value set fails the request with 500. Only the deprecated append
//     BoolValue counts and defaults to false, so a set overwrites;
//     append_action is ignored (a warning is logged). The default mutation
//     rules ignore changes to host, :authority, :method, :scheme and x-envoy-*
//     headers, removal of any ':' header, appending to a ':' header, and a
//     :status below 200. :path and :status can be set; :method too with
//     CONTINUE_AND_REPLACE. Invalid names or values fail the request with 500.
//   - A body mutation drops content-length (the length of the body sent is
//     used instead). A content-length that still disagrees with the body
//     actually sent fails the request with 500: Envoy would send a request
//     whose framing lies, here it is surfaced.
//   - mode_override counts only in replies to request_headers and
//     response_headers. The configured mode is its base: header modes count
//     when not DEFAULT, body modes always. An override that only names
//     response_body_mode therefore also turns the request body off when it is
//     sent in reply to request_headers.
//   - CONTINUE_AND_REPLACE: the header mutation applies, a body_mutation
//     replaces the body (the original one is discarded), and nothing more of
//     that direction goes to the processor.
//   - Processor failure (stream error, message timeout, reply of the wrong
//     kind, unsupported mode): with FailureModeAllow the request goes on
//     without the processor; otherwise a local reply "ext_proc error" with
//     500, or 504 for a message timeout (Envoy since 1.31). A processor that
//     ends the stream with OK status just stops processing. An
//     override_message_timeout message is dropped and the original timer
//     runs on (max_message_timeout is not configured).
//   - Stream end: after the last phase the stream is half-closed and reset,
//     as Envoy does by default, so the processor's next Recv returns io.EOF or
//     codes.Canceled. A client that goes away cancels the stream at once.
//   - A route timeout after the response started resets the client
//     connection and leaves the stream to run into its deadline, so the
//     processor's stream context reports DeadlineExceeded. The deadline sent
//     to the processor (grpc-timeout) is RouteTimeout plus two message
//     timeouts (plus 100 ms) after the request arrived, so that a 504 for a
//     route timeout can still go through the response phases. Envoy itself
//     sets no deadline on the ext_proc stream and resets it (Canceled);
//     this deadline is a data plane addition for the processor's accounting.
//     A grpc-go processor should classify by the deadline, not the status
//     code: grpc-go's server arms two timers for a deadline (the context's
//     and one that closes the stream) and the second often wins, so the
//     stream can end with codes.Canceled even then. "ctx.Err() != nil and
//     ctx.Deadline() has passed" is reliable.
//     An idle timeout or an upstream that breaks off mid-body resets the
//     client connection and cancels the stream (Canceled): a deadline cannot
//     be moved once the stream is open.
//
// # Simplified
//
//   - STREAMED and BUFFERED_PARTIAL request bodies are sent like BUFFERED:
//     one message with the whole body and end_of_stream (and the body limit
//     applies). BUFFERED_PARTIAL responses are BUFFERED too. STREAMED
//     responses read 32 KiB at a time. FULL_DUPLEX_STREAMED and GRPC modes
//     are refused as a processor error.
//   - Request processing is sequential: the body is read after the
//     request_headers reply (Envoy buffers it meanwhile).
//   - The route timeout counts from the request's arrival, not from the end
//     of the request phases.
//   - Trailers, upgrades (WebSocket, CONNECT), 100-continue forwarding,
//     header count/size limits, attributes, dynamic metadata, observability
//     mode and Envoy's x-envoy-* response headers are not modeled.
//   - Header order is by name, not the wire order.
//   - The upstream gets Content-Length where Envoy would send a body of
//     changed length chunked; the bytes are the same.
//   - A reset is a hijacked-and-closed HTTP/1 connection, or
//     panic(http.ErrAbortHandler) where hijacking is impossible.
//
// # Room for later
//
// upstreamCaller (upstream.go) is the router's only way to the upstream: it
// gets the finished request, whose buffered body can be replayed, and returns
// the response to send downstream. Two features plug in there without
// touching the filter code:
//
//   - Router retries: a caller that reads x-envoy-max-retries,
//     x-envoy-retry-on and x-envoy-retriable-status-codes from the request,
//     loops over attempts with jittered exponential backoff (Envoy: 25 ms
//     base, 250 ms cap) and returns the first response worth keeping. Note
//     that the default mutation rules keep the processor from setting
//     x-envoy-* headers, so in production these come from the client or the
//     route unless the filter's mutation_rules allow_envoy is set.
//   - An upstream ext_proc filter: a caller that, per attempt, sets
//     x-envoy-attempt-count, opens its own processor stream (openProcStream)
//     and runs the request and response phases around that attempt.
package dataplane
