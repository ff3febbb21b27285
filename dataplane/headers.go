package dataplane

import (
	"net/http"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// headerEntry is one header line the way Envoy's header map holds it: a
// lowercase name and its value.
type headerEntry struct {
	key   string
	value string
}

// headerList is an ordered header map with the pseudo-headers first, like
// Envoy's. A slice beats a map for the twenty-odd headers of an API call, keeps
// repeated headers in order and gives the processor a stable order.
type headerList []headerEntry

func (h headerList) get(key string) (string, bool) {
	for _, e := range h {
		if e.key == key {
			return e.value, true
		}
	}
	return "", false
}

func (h headerList) has(key string) bool {
	_, ok := h.get(key)
	return ok
}

func (h *headerList) del(key string) {
	*h = slices.DeleteFunc(*h, func(e headerEntry) bool { return e.key == key })
}

func (h *headerList) add(key, value string) {
	*h = append(*h, headerEntry{key, value})
}

// set replaces the first occurrence in place (so a pseudo-header keeps its
// place at the front) and drops the others, or appends when absent.
func (h *headerList) set(key, value string) {
	for i, e := range *h {
		if e.key != key {
			continue
		}
		(*h)[i].value = value
		rest := (*h)[i+1:]
		kept := slices.DeleteFunc(rest, func(e headerEntry) bool { return e.key == key })
		*h = (*h)[:i+1+len(kept)]
		return
	}
	h.add(key, value)
}

// proto renders the list as the HeaderMap of an ext_proc message. Values go in
// raw_value, as Envoy does with its default send_header_raw_value runtime
// guard. The HeaderValues and the value bytes come from two slabs so a
// request costs two allocations here instead of two per header.
func (h headerList) proto() *corev3.HeaderMap {
	n := 0
	for _, e := range h {
		n += len(e.value)
	}
	raw := make([]byte, 0, n)
	slab := make([]corev3.HeaderValue, len(h))
	out := make([]*corev3.HeaderValue, len(h))
	for i, e := range h {
		start := len(raw)
		raw = append(raw, e.value...)
		slab[i].Key = e.key
		slab[i].RawValue = raw[start:len(raw):len(raw)]
		out[i] = &slab[i]
	}
	return &corev3.HeaderMap{Headers: out}
}

// appendHTTPHeader adds the non-pseudo entries to a Go header map with
// canonical keys; Go's client and server look some headers up by canonical key
// (User-Agent, Content-Type, ...) and would otherwise add duplicates.
func (h headerList) appendHTTPHeader(dst http.Header, skip func(key string) bool) {
	for _, e := range h {
		if isPseudo(e.key) || (skip != nil && skip(e.key)) {
			continue
		}
		ck := canonicalKey(e.key)
		dst[ck] = append(dst[ck], e.value)
	}
}

// appendSorted appends the headers of a Go header map, lowercased and sorted
// by name. Go keeps headers in a map and loses the wire order, so a sorted
// order is the next best thing: it is deterministic for the processor and for
// tests. Hop-by-hop headers are dropped, as Envoy's connection manager and
// codecs do before any filter sees them.
func appendSorted(dst headerList, src http.Header) headerList {
	keys := make([]string, 0, len(src))
	for k := range src {
		keys = append(keys, k)
	}
	lower := make([]string, len(keys))
	for i, k := range keys {
		lower[i] = lowerKey(k)
	}
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(lower[a], lower[b]) })
	hop := connectionNominated(src)
	for _, i := range idx {
		lk := lower[i]
		if isHopByHop(lk) || (hop != nil && slices.Contains(hop, lk)) {
			continue
		}
		vals := src[keys[i]]
		if lk == "te" || lk == "expect" {
			vals = filterNonHop(lk, vals)
		}
		for _, v := range vals {
			dst = append(dst, headerEntry{lk, v})
		}
	}
	return dst
}

func isPseudo(key string) bool { return len(key) > 0 && key[0] == ':' }

// isHopByHop lists the connection-specific headers Envoy strips for HTTP/1
// (connection, keep-alive, proxy-connection, transfer-encoding, upgrade) plus
// the ones Go's own proxy drops; te and expect are handled per value.
func isHopByHop(lk string) bool {
	switch lk {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
		"http2-settings", "trailer":
		return true
	}
	return false
}

// filterNonHop keeps "te: trailers" (the only te value that survives Envoy)
// and drops "expect: 100-continue", which Envoy answers itself instead of
// forwarding.
func filterNonHop(lk string, vals []string) []string {
	var out []string
	for _, v := range vals {
		switch {
		case lk == "te" && strings.EqualFold(strings.TrimSpace(v), "trailers"):
			out = append(out, v)
		case lk == "expect" && !strings.EqualFold(strings.TrimSpace(v), "100-continue"):
			out = append(out, v)
		}
	}
	return out
}

// connectionNominated returns the lowercased header names listed in
// Connection, which are hop-by-hop too (RFC 9110 section 7.6.1).
func connectionNominated(h http.Header) []string {
	var out []string
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				out = append(out, strings.ToLower(tok))
			}
		}
	}
	return out
}

// commonHeaders seeds the two key caches below; converting these names is on
// every request's path and would otherwise allocate each time.
var commonHeaders = []string{
	"Accept", "Accept-Encoding", "Accept-Language", "Anthropic-Beta", "Anthropic-Version",
	"Authorization", "Cache-Control", "Cf-Ray", "Connection", "Content-Encoding",
	"Content-Length", "Content-Type", "Date", "Etag", "Helicone-Auth", "Helicone-Target-Url",
	"Keep-Alive", "Openai-Organization", "Openai-Processing-Ms", "Openai-Project",
	"Openai-Version", "Request-Id", "Retry-After", "Server", "Set-Cookie",
	"Strict-Transport-Security", "Transfer-Encoding", "User-Agent", "Vary", "Via",
	"X-Api-Key", "X-Envoy-Attempt-Count", "X-Envoy-Max-Retries", "X-Envoy-Retry-On",
	"X-Envoy-Retriable-Status-Codes", "X-Forwarded-For", "X-Forwarded-Proto",
	"X-Ratelimit-Limit-Requests", "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Requests",
	"X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens",
	"X-Request-Id", "X-Stainless-Arch", "X-Stainless-Lang", "X-Stainless-Os",
	"X-Stainless-Package-Version", "X-Stainless-Retry-Count", "X-Stainless-Runtime",
	"X-Stainless-Runtime-Version", "X-Tollgate-Upstream",
}

var (
	lowerOf     = map[string]string{}
	canonicalOf = map[string]string{}
)

func init() {
	for _, c := range commonHeaders {
		l := strings.ToLower(c)
		lowerOf[c] = l
		canonicalOf[l] = c
	}
}

func lowerKey(k string) string {
	if l, ok := lowerOf[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

func canonicalKey(l string) string {
	if c, ok := canonicalOf[l]; ok {
		return c
	}
	return http.CanonicalHeaderKey(l)
}

// validHeaderName mirrors Envoy's HeaderUtility::headerNameIsValid: an RFC 9110
// token, where a leading ':' marks a pseudo-header whose rest must be a token.
func validHeaderName(name string) bool {
	if isPseudo(name) {
		name = name[1:]
	}
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validHeaderValue mirrors Envoy's HeaderUtility::headerValueIsValid: no NUL,
// CR or LF.
func validHeaderValue(v string) bool {
	return !strings.ContainsAny(v, "\x00\r\n")
}

// joined returns every value of key joined with commas, the way Envoy folds
// repeated inline headers such as x-envoy-retry-on.
func (h headerList) joined(key string) string {
	var vals []string
	for _, e := range h {
		if e.key == key {
			vals = append(vals, e.value)
		}
	}
	return strings.Join(vals, ",")
}

// setSorted sets key like set, but a new entry goes where the name order puts
// it among the regular headers rather than at the end.
func (h *headerList) setSorted(key, value string) {
	if h.has(key) {
		h.set(key, value)
		return
	}
	i := 0
	for i < len(*h) && (isPseudo((*h)[i].key) || (*h)[i].key < key) {
		i++
	}
	*h = slices.Insert(*h, i, headerEntry{key, value})
}
