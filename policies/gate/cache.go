package gate

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/cachecontrol"
	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
)

const hdrCacheControl = "cache-control"

// DefaultCacheTTL is how long a response is cached when its request's
// Cache-Control gives no lifetime (DESIGN §4); Options.DefaultTTL.
const DefaultCacheTTL = 7 * 24 * time.Hour

// Cache bucket bounds (DESIGN §4).
const (
	MinCacheSlots = 1
	MaxCacheSlots = 20
	// maxIgnoreKeys bounds the work one header can ask of the body rewrite.
	maxIgnoreKeys = 64
)

// cacheOptions is what the Helicone-Cache-* headers ask for.
type cacheOptions struct {
	enabled    bool
	save, read bool // Helicone-Cache-Save / -Read; both default true
	seed       string
	slots      int
	ignoreKeys []string // sorted, unique
	ttl        time.Duration
	ttlDefault bool // ttl came from the default, not Cache-Control
}

// parseCacheOptions reads the cache headers, and the request's
// Cache-Control through header (for the TTL; only when the cache is on). A header the user set to something
// meaningless is a *helicone.BadHeaderError rather than silently ignored: a
// typo would otherwise turn the cache off (or on) unnoticed. An egress
// policy that turns the cache on (defaults.Enabled) also supplies the
// bucket size and TTL a request does not send.
func parseCacheOptions(h *helicone.CacheHeaders, header func(string) string, defaultTTL time.Duration, defaults egress.Cache) (cacheOptions, error) {
	o := cacheOptions{save: true, read: true, slots: 1}
	if defaults.Enabled && defaults.BucketMaxSize > 0 {
		o.slots = defaults.BucketMaxSize
	}
	var err error
	if o.enabled, err = boolHeader(h.Enabled, helicone.CacheEnabled, defaults.Enabled); err != nil || !o.enabled {
		return o, err
	}
	if o.save, err = boolHeader(h.Save, helicone.CacheSave, true); err != nil {
		return o, err
	}
	if o.read, err = boolHeader(h.Read, helicone.CacheRead, true); err != nil {
		return o, err
	}
	o.seed = h.Seed
	if v := strings.TrimSpace(h.BucketMaxSize); v != "" {
		n, ok := ratelimit.ParseDecimal(v)
		if !ok || n < MinCacheSlots || n > MaxCacheSlots {
			return o, &helicone.BadHeaderError{Header: helicone.Canonical(helicone.CacheBucketMaxSize),
				Reason: fmt.Sprintf("must be an integer from %d to %d, got %q", MinCacheSlots, MaxCacheSlots, clip(v))}
		}
		o.slots = int(n)
	}
	if v := h.IgnoreKeys; v != "" {
		keys, err := ParseIgnoreKeys(v)
		if err != nil {
			return o, &helicone.BadHeaderError{Header: helicone.Canonical(helicone.CacheIgnoreKeys), Reason: err.Error()}
		}
		o.ignoreKeys = keys
	}
	cacheControl := header(hdrCacheControl)
	if ttl, ok := cachecontrol.Parse(cacheControl); ok {
		o.ttl = ttl
	} else if defaults.Enabled && defaults.TTL > 0 && cacheControl == "" {
		o.ttl = min(defaults.TTL.Truncate(time.Second), cachecontrol.MaxTTL)
	} else {
		o.ttl, o.ttlDefault = defaultTTL, true
	}
	return o, nil
}

// boolHeader reads v, the value of a true/false header (name, lowercase);
// absent or empty gives def.
func boolHeader(v, name string, def bool) (bool, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return def, nil
	}
	if b, ok := helicone.ParseBool(v); ok {
		return b, nil
	}
	return def, &helicone.BadHeaderError{Header: helicone.Canonical(name), Reason: fmt.Sprintf("must be true or false, got %q", clip(v))}
}

// ParseIgnoreKeys reads Helicone-Cache-Ignore-Keys: a comma list of
// top-level body fields, bare (user, metadata) or quoted ("user",
// "metadata"), optionally wrapped in [ ] like a JSON array. The result is
// sorted and free of duplicates, so the order the client wrote does not
// change the cache key.
func ParseIgnoreKeys(v string) ([]string, error) {
	s := strings.TrimSpace(v)
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	var keys []string
	for i := 0; i < len(s); {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
			i++
		}
		if i == len(s) {
			break
		}
		var key string
		if q := s[i]; q == '"' || q == '\'' {
			var b strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != q; j++ {
				if s[j] == '\\' && q == '"' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j == len(s) {
				return nil, errors.New("unterminated quoted key")
			}
			key = b.String()
			j++
			for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
				j++
			}
			if j < len(s) && s[j] != ',' {
				return nil, fmt.Errorf("want a comma after key %q", clip(key))
			}
			i = j
		} else {
			j := strings.IndexByte(s[i:], ',')
			if j < 0 {
				j = len(s) - i
			}
			key = strings.TrimSpace(s[i : i+j])
			i += j
		}
		if key == "" {
			continue
		}
		keys = append(keys, key)
		if len(keys) > maxIgnoreKeys {
			return nil, fmt.Errorf("at most %d keys", maxIgnoreKeys)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// RemoveIgnoredKeys returns body without the named top-level fields (every
// occurrence, should the JSON repeat a key). A body that is not a JSON
// object is returned unchanged: there are no top-level fields to drop.
func RemoveIgnoredKeys(body []byte, keys []string) []byte {
	if len(keys) == 0 || !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return body
	}
	for _, k := range keys {
		path := escapePathKey(k)
		for range 16 {
			out, err := sjson.DeleteBytes(body, path)
			if err != nil || len(out) == len(body) {
				break
			}
			body = out
		}
	}
	return body
}

// escapePathKey makes a key a literal sjson path component: every ASCII
// byte other than letters, digits, '_' and '-' is backslash-escaped, so
// '.', '*', '?', '|', '#', '@' and a leading ':' lose their path meaning.
func escapePathKey(k string) string {
	var b strings.Builder
	b.Grow(len(k) + 4)
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < 0x80 && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// slotsString is a slot count as text, for the key hash.
func slotsString(n int) string { return strconv.Itoa(n) }

// clip shortens a client's value for an error message.
func clip(s string) string { return helicone.Truncate(s, 64) }
