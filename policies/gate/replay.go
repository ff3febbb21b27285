package gate

import "strings"

// Bounds of the provider headers a cache entry keeps: a provider that sends
// hundreds of headers must not grow every entry by kilobytes.
const (
	maxReplayHeaders     = 24
	maxReplayValueBytes  = 256
	maxReplayHeaderBytes = 4 << 10
)

// ReplayHeader reports whether a provider response header is stored with a
// cache entry and replayed on a hit. Helicone stores every response header
// with the entry and replays them all (saveToCache / getCachedResponse in
// worker/src/lib/util/cache/cacheFunctions.ts), so clients that read the
// provider's request id or rate-limit headers find them on a hit too.
// Tollgate keeps the ones clients read — the request ids, openai-* and
// anthropic-* (which include anthropic-ratelimit-*), x-ratelimit-* — and
// never a cookie or anything named like a credential. name is lowercase.
func ReplayHeader(name string) bool {
	if strings.Contains(name, "cookie") || strings.Contains(name, "authorization") ||
		strings.Contains(name, "api-key") || strings.Contains(name, "secret") {
		return false
	}
	switch {
	case name == "x-request-id", name == "request-id":
		return true
	case strings.HasPrefix(name, "openai-"), strings.HasPrefix(name, "anthropic-"),
		strings.HasPrefix(name, "x-ratelimit-"):
		return true
	}
	return false
}

// replayHeaders keeps the replayable headers of h within the entry bounds,
// in order; a header past the bounds is dropped, not truncated.
func replayHeaders(h [][2]string) [][2]string {
	var out [][2]string
	size := 0
	for _, kv := range h {
		name := strings.ToLower(kv[0])
		if !ReplayHeader(name) || len(kv[1]) > maxReplayValueBytes || len(out) == maxReplayHeaders ||
			size+len(name)+len(kv[1]) > maxReplayHeaderBytes {
			continue
		}
		size += len(name) + len(kv[1])
		out = append(out, [2]string{name, kv[1]})
	}
	return out
}
