// Package headers is the data plane's header map, held the way Envoy holds
// one (ordered, lowercase names, pseudo-headers first), and the rules of
// Envoy's ext_proc filter for changing it (mutation.go). It knows nothing of
// requests or streams, so the connection manager, both ext_proc filters and
// the router share it.
package headers

import (
	"net/http"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// Entry is one header line the way Envoy's header map holds it: a
// lowercase name and its value.
type Entry struct {
	Key   string
	Value string
}

// List is an ordered header map with the pseudo-headers first, like
// Envoy's. A slice beats a map for the twenty-odd headers of an API call, keeps
// repeated headers in order and gives the processor a stable order.
type List []Entry

// Of builds a list from name, value pairs, in that order.
func Of(kv ...string) List {
	h := make(List, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, Entry{kv[i], kv[i+1]})
	}
	return h
}

func (h List) Get(key string) (string, bool) {
	for _, e := range h {
		if e.Key == key {
			return e.Value, true
		}
	}
	return "", false
}

func (h List) Has(key string) bool {
	_, ok := h.Get(key)
	return ok
}

func (h *List) Del(key string) {
	*h = slices.DeleteFunc(*h, func(e Entry) bool { return e.Key == key })
}

func (h *List) Add(key, value string) {
	*h = append(*h, Entry{key, value})
}

// Set replaces the first occurrence in place (so a pseudo-header keeps its
// place at the front) and drops the others, or appends when absent.
func (h *List) Set(key, value string) {
	for i, e := range *h {
		if e.Key != key {
			continue
		}
		(*h)[i].Value = value
		rest := (*h)[i+1:]
		kept := slices.DeleteFunc(rest, func(e Entry) bool { return e.Key == key })
		*h = (*h)[:i+1+len(kept)]
		return
	}
	h.Add(key, value)
}

// Proto renders the list as the HeaderMap of an ext_proc message. Values go in
// raw_value, as Envoy does with its default send_header_raw_value runtime
// guard. The HeaderValues and the value bytes come from two slabs so a
// request costs two allocations here instead of two per header.
func (h List) Proto() *corev3.HeaderMap {
	n := 0
	for _, e := range h {
		n += len(e.Value)
	}
	raw := make([]byte, 0, n)
	slab := make([]corev3.HeaderValue, len(h))
	out := make([]*corev3.HeaderValue, len(h))
	for i, e := range h {
		start := len(raw)
		raw = append(raw, e.Value...)
		slab[i].Key = e.Key
		slab[i].RawValue = raw[start:len(raw):len(raw)]
		out[i] = &slab[i]
	}
	return &corev3.HeaderMap{Headers: out}
}

// AppendHTTPHeader adds the non-pseudo entries to a Go header map with
// canonical keys; Go's client and server look some headers up by canonical key
// (User-Agent, Content-Type, ...) and would otherwise add duplicates.
func (h List) AppendHTTPHeader(dst http.Header, skip func(key string) bool) {
	for _, e := range h {
		if IsPseudo(e.Key) || (skip != nil && skip(e.Key)) {
			continue
		}
		ck := CanonicalKey(e.Key)
		dst[ck] = append(dst[ck], e.Value)
	}
}

// AppendSorted appends the headers of a Go header map, lowercased and sorted
// by name. Go keeps headers in a map and loses the wire order, so a sorted
// order is the next best thing: it is deterministic for the processor and for
// tests. Hop-by-hop headers are dropped, as Envoy's connection manager and
// codecs do before any filter sees them.
func AppendSorted(dst List, src http.Header) List {
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
			dst = append(dst, Entry{lk, v})
		}
	}
	return dst
}

func IsPseudo(key string) bool { return len(key) > 0 && key[0] == ':' }

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

func CanonicalKey(l string) string {
	if c, ok := canonicalOf[l]; ok {
		return c
	}
	return http.CanonicalHeaderKey(l)
}

// validHeaderName mirrors Envoy's HeaderUtility::headerNameIsValid: an RFC 9110
// token, where a leading ':' marks a pseudo-header whose rest must be a token.
func validHeaderName(name string) bool {
	if IsPseudo(name) {
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

// Joined returns every value of key joined with commas, the way Envoy folds
// repeated inline headers such as x-envoy-retry-on.
func (h List) Joined(key string) string {
	var vals []string
	for _, e := range h {
		if e.Key == key {
			vals = append(vals, e.Value)
		}
	}
	return strings.Join(vals, ",")
}

// SetSorted sets key like Set, but a new entry goes where the name order puts
// it among the regular headers rather than at the end.
func (h *List) SetSorted(key, value string) {
	if h.Has(key) {
		h.Set(key, value)
		return
	}
	i := 0
	for i < len(*h) && (IsPseudo((*h)[i].Key) || (*h)[i].Key < key) {
		i++
	}
	*h = slices.Insert(*h, i, Entry{key, value})
}
