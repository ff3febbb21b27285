// Package dataplane is Tollgate's local data plane: a plain Go HTTP reverse
// proxy that stands in for Envoy on machines where Envoy cannot run. It drives
// the ext_proc processor over a real gRPC ExternalProcessor.Process stream the
// way Envoy's envoy.filters.http.ext_proc filter and router do with the
// production filter config (request_header_mode SEND, request_body_mode
// BUFFERED, response_header_mode SEND, response_body_mode BUFFERED, trailers
// SKIP, allow_mode_override true). It also plays the part of Envoy's router
// that Tollgate's routes use: retries driven by request headers, and an
// upstream-level ext_proc filter once per attempt. It knows the processor
// only through those streams and imports nothing else from the repository.
//
// # One request
//
//  1. Connection manager: hop-by-hop headers dropped, EarlyRemoveHeaders
//     removed (Envoy's early_header_mutation_extensions), Envoy's internal
//     headers removed from an external request (below), x-request-id
//     generated when missing or empty, x-forwarded-proto set to the
//     connection's scheme (use_remote_address),
//     and then the route picked and cached (UpstreamHeader, else
//     /v1/messages* to Anthropic, else OpenAI), all before any filter runs.
//     A client's UpstreamHeader therefore picks the route unless the early
//     removal drops it, as in Envoy.
//  2. request_headers: :method, :path, :authority, :scheme, then the headers
//     lowercased and sorted by name (Go loses the wire order), every value in
//     raw_value. end_of_stream when there is no body. The first message
//     carries protocol_config; every message an empty metadata_context.
//  3. request_body (BUFFERED): the whole body, at most MaxRequestBody
//     (else a 413 local reply), in one message with end_of_stream.
//  4. Router: the route is re-picked after a reply with clear_route_cache
//     and a header mutation (Envoy ignores the flag without one);
//     UpstreamHeader and hop-by-hop headers are removed; the Host header
//     becomes the upstream host; the retry headers are consumed. Then one
//     attempt after another, each with x-envoy-attempt-count and its own run
//     of the upstream filter (see below). Connect failure gives 503,
//     RouteTimeout before response headers 504, StreamIdleTimeout before
//     headers 408.
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
//     :status below 200. AllowEnvoyHeaderMutation (mutation_rules
//     allow_envoy, which Tollgate's configs set) lets x-envoy-* through. :path and :status can be set; :method too with
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
//     Envoy closes the stream the same way in both cases (onDestroy; the
//     graceful half-close is opt-in): a processor cannot tell them apart by
//     the gRPC status, only by having seen end_of_stream (or trailers).
//   - Trailers (trailers.go): only from an HTTP/2 upstream, as Envoy's
//     HTTP/1 codec drops them (enable_trailers is off in envoy/). With them
//     the body's last message has no end_of_stream: a BUFFERED body goes in
//     one message with end_of_stream false (none when the body is empty), a
//     STREAMED body's last chunk too, and no empty end_of_stream message
//     follows. With trailer mode SKIP the processor hears nothing more; a
//     mode_override with response_trailer_mode SEND gets a response_trailers
//     message after the body's reply, whose header_mutation applies to the
//     trailers. They reach an HTTP/2 client, never an HTTP/1 one. A request
//     with trailers (HTTP/2 client) sends its buffered body with
//     end_of_stream false.
//   - The gRPC connection (DialOptions) sends HTTP/2 keepalive pings like
//     the tollgate cluster's connection_keepalive (KeepaliveInterval,
//     KeepaliveTimeout, streams or not), so a processor whose server
//     refuses them (grpc-go's default enforcement: GOAWAY too_many_pings)
//     fails here too. grpc-go pings only after an interval without frames
//     from the processor and at 10 s at the most often; Envoy pings on its
//     timer with up to 15 % jitter added.
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
// # Internal and external requests
//
// Envoy's router obeys x-envoy-* request headers (retries, timeouts). The
// connection manager, with use_remote_address as in Tollgate's configs, calls
// a request internal when the peer's address is in internal_address_config
// (Config.InternalAddresses; none by default, as in Envoy since 1.33). An
// external request loses x-envoy-retry-on, -retry-grpc-on, -max-retries,
// -retriable-status-codes, -retriable-header-names,
// -upstream-rq-timeout-ms, -upstream-rq-per-try-timeout-ms,
// -upstream-rq-timeout-alt-response, -expected-rq-timeout-ms,
// -hedge-on-per-try-timeout, -upstream-alt-stat-name, -force-trace,
// -ip-tags, -original-url, -decorator-operation and
// -downstream-service-cluster/-node before any filter
// (conn_manager_utility.cc, cleanInternalHeaders); an internal one keeps
// them all. A client's x-envoy-internal is always dropped. An external
// request from an IP peer also gets x-envoy-external-address, the peer's
// IP, in place of any the client sent (mutateRequestHeaders), so the
// processor sees what it sees behind Envoy; the router removes it before
// the upstream, as every route in envoy/ does (request_headers_to_remove;
// envoy TestProvidersDoNotSeeExternalAddress).
//
// # Retries
//
// The router (attempts.go, retry.go) is Envoy's with Tollgate's route: no
// retry_on of its own, retry_back_off RetryBaseInterval and
// RetryMaxInterval, rate_limited_retry_back_off on retry-after (format
// SECONDS, max_interval RateLimitedRetryMaxInterval),
// include_request_attempt_count true.
//
//   - The retry headers are read from the request as the router-level filter
//     left it, and removed together with the others Envoy's router consumes
//     (x-envoy-retry-grpc-on, x-envoy-hedge-on-per-try-timeout,
//     x-envoy-upstream-rq-per-try-timeout-ms), so they never reach the
//     upstream. The processor can set them only with
//     AllowEnvoyHeaderMutation.
//   - x-envoy-retry-on: 5xx (any 5xx), gateway-error (502, 503, 504),
//     retriable-4xx (409), retriable-status-codes (the codes in
//     x-envoy-retriable-status-codes), retriable-headers (the response has a
//     header named in x-envoy-retriable-header-names), envoy-ratelimited; for
//     a failure before response headers reset, connect-failure (dial errors
//     only), and 5xx and gateway-error too. refused-stream counts as reset:
//     Go cannot tell the two apart (and retries refused HTTP/2 streams
//     itself). A response with x-envoy-ratelimited is retried only under
//     envoy-ratelimited. Unknown tokens and bad values are ignored; repeated
//     headers are joined with commas, as Envoy does.
//   - x-envoy-max-retries counts only with some retry-on; without it there is
//     one retry (the route's num_retries default).
//   - Every attempt carries x-envoy-attempt-count (1, 2, ...), set in the
//     router's header map before the upstream filter runs, whether or not
//     there are retries.
//   - Before every retry the router waits: random in [0, interval) and at
//     most RetryMaxInterval, the interval starting at RetryBaseInterval and
//     doubling up to RetryMaxInterval (JitteredExponentialBackOffStrategy).
//     When the response being retried has retry-after in whole seconds, above
//     0 and not above RateLimitedRetryMaxInterval, the wait is random in
//     [s, 1.5 s) instead and the exponential interval stays where it was.
//     HTTP dates are not parsed (Envoy reads only the configured format).
//   - Only a buffered body is replayed. A body that reached the router
//     unbuffered (no processor, or request_body_mode NONE) is buffered by the
//     router while retries are on, up to MaxRequestBody; a larger one gives
//     up on retries and streams on, as Envoy's retry_or_shadow_abandoned.
//   - A retried response is read out (at most 64 KiB or 100 ms) and closed,
//     where Envoy resets the stream. Retries are decided before anything goes
//     downstream. When they run out, the last response goes downstream, or
//     for a failure a 503 "... retried and the latest reset reason: ...".
//   - The route timeout bounds all attempts and waits (504); a client that
//     goes away ends a wait at once.
//
// # The upstream filter
//
// With Config.UpstreamFilter, each attempt runs an ext_proc filter of its
// own, as Envoy does for one in a cluster's HttpProtocolOptions
// http_filters: a new stream on the same gRPC connection, with the
// configured initial metadata (Tollgate: UpstreamFilterMetadataKey:
// UpstreamFilterMetadataValue), message timeout and failure mode. Its
// processing mode is request_header_mode SEND, response_header_mode SKIP,
// both body modes NONE, trailers SKIP, allow_mode_override true.
//
//   - request_headers is the router's header map: :authority the upstream
//     host, :scheme the upstream scheme, :path with the upstream's path
//     prefix, retry headers gone, x-envoy-attempt-count in; end_of_stream
//     when there is no body; protocol_config names body modes NONE.
//   - All attempts share that map, as in Envoy, whose upstream filter chain
//     decodes the router's own header map: what the processor sets or
//     removes for one attempt is still so for the next unless it changes it
//     again. A :path it sets is the path of the attempt (and the next ones).
//     The mutation rules are the router-level filter's.
//   - The body is per attempt: each starts from the router's body (after the
//     router-level filter's changes). CONTINUE_AND_REPLACE with a
//     body_mutation replaces it for that attempt, and content-length goes
//     with the new length. A body_mutation in a CONTINUE reply to headers is
//     ignored.
//   - mode_override: a request_body_mode other than NONE sends the attempt's
//     body in one message, whose reply may change it for that attempt;
//     response_header_mode SEND sends the attempt's response headers, and
//     the reply's changes apply before the retry decision, so a header the
//     processor sets can make the attempt retriable (retriable-headers). A
//     response_body_mode other than NONE is refused as a processor error.
//   - The stream is half-closed and reset when the attempt's filter work is
//     done: after the response headers, after the request phases when those
//     are skipped, or when the attempt fails.
//   - A local reply of the upstream filter ends the request and is never
//     retried: an immediate_response, or "ext_proc error" 500 (504 for a
//     message timeout) for a processor failure without FailureModeAllow or
//     a rejected mutation. Envoy sends those through the downstream filter
//     chain, past the router, so they go through the router-level filter's
//     response phases like the router's own local replies. With
//     FailureModeAllow a failing processor is left out of that attempt.
//     clear_route_cache means nothing there and is ignored.
//
// # Where it still differs from Envoy
//
// Each difference below says why it cannot let a processor or configuration
// defect pass here and fail behind Envoy: the data plane is as strict or
// stricter there, or Tollgate's configurations do not use the feature (and a
// test in envoy/ pins that: TestConfigsStayInsideTheDataPlaneModel for the
// ext_proc, router and retry settings), or the processor must not depend on
// it (and a test varies it).
//
// Routing and timeouts
//
//   - The route table is code (pickRoute), not read from envoy/*.yaml, and
//     routes on the full origin in UpstreamHeader; Envoy's target_url routes
//     match x-tollgate-upstream-host plus the scheme prefix of
//     x-tollgate-upstream. The processor sets both headers in one mutation
//     (processor TestTargetURLSchemeSelectsRoute) and the yaml side is tested
//     on its own: no route matches a header a client can send
//     (envoy TestRoutesIgnoreClientHeaders), paths pick providers
//     (TestProviderRouting), the scheme picks TLS or plain HTTP
//     (TestPlainHTTPTargetOrigins).
//   - One RouteTimeout and one StreamIdleTimeout serve every route: no
//     per-route values, no connection-manager idle timeout before routing.
//     Every provider route in envoy/ has the same 600 s timeout and idle
//     timeout, equal to the defaults here (envoy
//     TestQuietCallsLastTheRouteTimeout); a route with other values fails
//     that test first.
//   - The route timeout counts from the request's arrival, where Envoy's
//     starts when the router gets the request: here calls time out sooner,
//     never later. The idle timer starts with the upstream call and counts
//     upstream reads only, so a client that stalls its upload is not timed
//     out; the processor sees a BUFFERED body only once it is whole, in both.
//   - Per-route filter configuration for ext_proc (ExtProcPerRoute, a filter
//     disabled on the listener) is not modelled: every request meets the
//     processor. Only the Istio example uses it (envoy TestIstioExample).
//   - Early header mutation is removals only (names and prefixes);
//     route_cache_action is its DEFAULT (clear_route_cache honoured with a
//     header mutation). Tollgate's configurations remove and set nothing
//     else and leave route_cache_action alone (envoy
//     TestClientsCannotForgeInternalHeaders).
//   - No DNS, forward-proxy DNS cache, load balancing, priorities, retry
//     host predicates, circuit breakers or retry budgets: one host per
//     upstream. The clusters' own settings (TLS names, circuit breakers,
//     buffer limits) are checked on the yaml (envoy tls_test.go,
//     upstream_test.go).
//
// Connection manager
//
//   - x-envoy-internal is never added, X-Forwarded-For is never appended,
//     and internal_only_headers, xff_num_trusted_hops and
//     original_ip_detection are not modelled: the peer address alone makes
//     a request internal. Tollgate's configurations skip the append, trust
//     no hops and call no peer internal (envoy
//     TestClientEnvoyHeadersIgnored), and the processor removes the
//     x-envoy-* headers the router obeys if it did not set them, so what
//     reaches the router is the same either way.
//   - Header count and size limits, 100-continue, upgrades (WebSocket,
//     CONNECT) and HTTP/3 are not modelled; Go's server limits apply. The
//     provider APIs use none of them, and what Envoy refuses it refuses
//     before the processor sees the request.
//   - Headers reach the processor sorted by name (Go loses the wire order);
//     the processor reads them by name.
//   - Request processing is sequential: the body is read after the
//     request_headers reply. Envoy buffers it meanwhile and, in BUFFERED
//     mode, also sends it only after that reply.
//
// The ext_proc stream
//
//   - STREAMED and BUFFERED_PARTIAL request bodies are sent like BUFFERED
//     (the body limit applies), BUFFERED_PARTIAL responses like BUFFERED;
//     FULL_DUPLEX_STREAMED and GRPC modes are refused as a processor error.
//     Tollgate configures BUFFERED and overrides only the response body to
//     STREAMED; a processor asking for anything else fails loudly here.
//   - A STREAMED response goes in upstream reads of at most 32 KiB; Envoy's
//     chunks follow its own buffers. Stream parsing must not depend on chunk
//     boundaries: provider FuzzStreamAccumulator checks that any split gives
//     the same usage.
//   - The stream carries a deadline (grpc-timeout), which Envoy does not set
//     (see above). It changes only how a route timeout after the response
//     began is classified (-2 here; behind Envoy the stream is reset, as for
//     a client that left), never whether the call is recorded.
//   - A client that goes away cancels the stream at once, without Envoy's
//     half-close first; Envoy closes a finished stream the same way as a
//     cancelled one, so a processor must decide by end_of_stream and
//     trailers, not by the gRPC status (processor
//     TestStreamCancelThroughDataPlane, TestStreamedResponseEndsAtItsTrailers).
//     Envoy's newer early close (as soon as the last reply arrives) is not
//     modelled: here the stream lives to the end of the request, so a
//     processor must already expect io.EOF after its last reply.
//   - Attributes, dynamic metadata, observability mode and
//     metadata_context contents are not modelled; Tollgate's configurations
//     ask for none.
//   - Request trailers do not reach the upstream and request_trailer_mode
//     SEND is ignored: providers take none and the processor asks for none.
//     Trailers are known only at the end of the body (Go), so an empty body
//     followed by trailers sends no body message, as Envoy does. A rejected
//     trailers mutation resets the client: the response has begun.
//   - Keepalive: grpc-go pings after KeepaliveInterval without frames from
//     the processor and at most every 10 s; Envoy pings on its timer with up
//     to 15 % jitter added. A quiet connection, the one at risk, sees the
//     same pings, and the processor's policy is tied to the yaml's interval
//     (internal/app TestProcessorKeepaliveAcceptsEnvoyPings) and tested with
//     pings faster than Envoy's (TestQuietStreamSurvivesKeepalivePings).
//
// The router and the upstream filter
//
//   - Not modelled: per-try timeouts and hedging, gRPC retry-on,
//     reset-before-request and http3-post-connect-failure, the HTTP-date and
//     Unix-time forms of retry-after. The processor asks only for the
//     retry-on kinds modelled here (processor attempts tests), and the
//     routes read retry-after in SECONDS (envoy routing tests).
//   - A retried response is read out and closed where Envoy resets the
//     stream; neither shows it to the processor or the client.
//   - The upstream gets Content-Length where Envoy may send a changed body
//     chunked; the bytes are the same.
//   - The upstream filter takes no response bodies and there are no other
//     upstream filters: Tollgate's upstream filter has body modes NONE and
//     the codec only (envoy upstream_test.go).
//   - Envoy's x-envoy-* response headers are not added; Tollgate's routers
//     set suppress_envoy_headers, so Envoy adds none either.
//   - A reset is a hijacked-and-closed HTTP/1 connection, or
//     panic(http.ErrAbortHandler) where hijacking is impossible.
package dataplane
