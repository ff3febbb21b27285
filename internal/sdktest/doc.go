// Package sdktest holds end-to-end tests that call `tollgate dev`'s data
// plane with the official OpenAI and Anthropic Node SDKs (npm packages
// openai and @anthropic-ai/sdk, pinned by testdata/node/package-lock.json)
// against the mock provider: OpenAI and Anthropic chats with tool calls,
// streamed and not, Azure OpenAI, Gemini's OpenAI-compatible endpoint, an
// OpenAI-compatible provider (Together), cross-provider fallback (OpenAI ⇄
// Anthropic, translated) and the semantic cache across two
// instances sharing one Redis. Each scenario is a small script in
// testdata/node that prints one JSON line; the Go tests assert it and the
// records Tollgate wrote.
//
// The tests need node and npm (Debian's nodejs and npm packages, which
// scripts/testenv.sh installs). The SDKs are installed once per lock file
// with `npm ci` into the user cache directory.
package sdktest
