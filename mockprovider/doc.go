// Package mockprovider is a fake OpenAI and Anthropic API for tests,
// benchmarks and demos. It answers like the real services — same paths, JSON
// shapes, SSE framing, headers and error bodies — but instantly (unless told
// otherwise), offline and deterministically, so a test can compute the exact
// usage the processor must record.
//
// Endpoints are matched on the path suffix, so the mock also works mounted
// under a prefix (e.g. "/openai/v1/chat/completions"):
//
//	POST /v1/chat/completions        OpenAI chat (JSON or SSE)
//	POST /v1/completions             OpenAI legacy completions (JSON or SSE)
//	POST /v1/embeddings              OpenAI embeddings (float or base64)
//	POST /v1/moderations             OpenAI moderation: flagged (violence) when
//	                                 an input contains [FlagMarker]
//	POST /v1/responses               OpenAI Responses API (JSON or SSE)
//	GET  /v1/models                  OpenAI model list
//	POST /v1/messages                Anthropic messages (JSON or SSE)
//	POST /v1/messages/count_tokens   Anthropic token counting
//
// and Azure OpenAI's /openai/deployments/{deployment}/chat/completions,
// …/completions, …/embeddings and /openai/responses (api-version
// required), answered like OpenAI's with the deployment as the model when
// the body names none; Google Gemini's /v1beta/models/{model}:generateContent
// and :streamGenerateContent (SSE with alt=sse, else a JSON array) with
// usageMetadata, :countTokens, :embedContent and :batchEmbedContents, the
// same under the stable /v1/models/, and its OpenAI-compatible
// /v1beta/openai/… (gemini.go).
// OpenAI-compatible providers (Together's /v1/…, Groq's /openai/v1/…)
// are answered by the OpenAI paths, matched by their ending.
//
// # Usage rule
//
// The reply text is always [CompletionText]. Prompt (input) tokens are
// [PromptTokens] of the request body. Completion (output) tokens are
// [CompletionTokens], the number of words of [CompletionText], unless
// x-mock-completion-tokens says otherwise. The detail headers below only set
// their own field; they never change the totals. That matches how the
// providers count: OpenAI's cached_tokens is part of prompt_tokens and
// reasoning_tokens part of completion_tokens, while Anthropic's
// cache_read_input_tokens and cache_creation_input_tokens come on top of
// input_tokens.
//
// # Steering headers
//
// A test steers one request with these request headers (all optional; a
// malformed value is answered with a 400 naming the header):
//
//	x-mock-latency-ms: N           wait N ms before the response headers
//	                               (overrides Options.Latency)
//	x-mock-chunk-delay-ms: N       wait N ms between SSE events
//	                               (overrides Options.ChunkDelay)
//	x-mock-status: S               answer with HTTP status S (400–599) and the
//	                               provider's error body instead of a result
//	x-mock-retry-after: N          value of the retry-after header (default 1);
//	                               sent with every 429, and with any error
//	                               when given explicitly
//	x-mock-fail-first: N           the first N requests carrying the same
//	x-mock-fail-key: K             x-mock-fail-key (default "") fail with
//	                               x-mock-status, or 503; later ones succeed
//	x-mock-fail-models: a,b        requests whose body names one of these
//	                               models fail with x-mock-status, or 503
//	x-mock-disconnect-after: N     streaming: send the headers and N SSE
//	                               events, then reset the TCP connection;
//	                               a stream shorter than N ends normally.
//	                               Non-streaming: reset without answering
//	x-mock-end-after: N            streaming: send the headers and N SSE
//	                               events, then end the response cleanly,
//	                               without the stream's terminal event
//	                               ([DONE], message_stop)
//	x-mock-stall-after: N          streaming: send the headers and N SSE
//	                               events, then send nothing more until the
//	                               client leaves (at most Options.MaxStall,
//	                               then the stream goes on): a client that
//	                               hangs up after N events always cuts it
//	x-mock-trailer: name=value     send this response trailer after the
//	                               body (HTTP/2, or a chunked HTTP/1.1 body)
//	x-mock-completion-tokens: N    completion / output tokens reported
//	x-mock-cached-tokens: N        OpenAI cached_tokens, Anthropic
//	                               cache_read_input_tokens
//	x-mock-cache-write-tokens: N   Anthropic cache_creation_input_tokens
//	x-mock-reasoning-tokens: N     OpenAI reasoning_tokens
//	x-mock-split-events: N         streaming: write each SSE event longer
//	                               than N bytes in two parts, N bytes then
//	                               the rest, with a pause between, so the
//	                               proxy reads it as two chunks
//
// Every request, failed or not, is kept in a ring of the last 1000 (see
// [Server.Received]) so a test can check what reached the provider.
package mockprovider
