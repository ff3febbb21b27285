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
	enabled    bool // the cache is used at all: read, save or both
	save, read bool
	refresh    bool // Helicone-Cache-Enabled with Helicone-Cache-Read: false: overwrite a full key
	seed       string
	slots      int
	ignoreKeys []string // sorted, unique
	ttl        time.Duration
	ttlDefault bool // ttl came from the default, not Cache-Control
}

// parseCacheOptions reads the cache headers, and the request's
// Cache-Control through header (for the TTL; only when the cache is on).
//
// The switches follow Helicone (getCacheSettings in
// worker/src/lib/util/cache/cacheSettings.ts): only "true", in any case,
// turns one on; Helicone-Cache-Save: true or Helicone-Cache-Read: true sent
// without Helicone-Cache-Enabled means save only or read only; a bucket
// size that is not a positive number leaves the cache off. Where Helicone
// is silent Tollgate tolerates the value too and records why in warn
// (Helicone-Warning). Two things are Tollgate's own: with the cache
// enabled, an explicit "false" turns saving or reading off (Helicone ORs
// the switches), and the values that still say nothing usable — a bucket
// size above 20 (a 500 at Helicone) or an unparsable ignore list — are a
// *helicone.BadHeaderError. An egress policy that turns the cache on
// (defaults.Enabled) also supplies the bucket size and TTL a request does
// not send.
func parseCacheOptions(h *helicone.CacheHeaders, header func(string) string, defaultTTL time.Duration,
	defaults egress.Cache, warn *helicone.Warnings) (cacheOptions, error) {
	o := cacheOptions{slots: 1}
	if defaults.Enabled && defaults.BucketMaxSize > 0 {
		o.slots = defaults.BucketMaxSize
	}
	enabled := switchHeader(h.Enabled, helicone.CacheEnabled, warn)
	save := switchHeader(h.Save, helicone.CacheSave, warn)
	read := switchHeader(h.Read, helicone.CacheRead, warn)
	on := enabled == switchOn || enabled == switchAbsent && defaults.Enabled
	if on {
		o.save, o.read = save != switchOff, read != switchOff
		o.refresh = read == switchOff
	} else {
		o.save, o.read = save == switchOn, read == switchOn
	}
	if o.enabled = o.save || o.read; !o.enabled {
		return o, nil
	}
	o.seed = h.Seed
	if v := strings.TrimSpace(h.BucketMaxSize); v != "" {
		n, rest, ok := leadingInt(v)
		switch {
		case ok && n > MaxCacheSlots:
			return o, &helicone.BadHeaderError{Header: helicone.Canonical(helicone.CacheBucketMaxSize),
				Reason: fmt.Sprintf("must be an integer from %d to %d, got %q", MinCacheSlots, MaxCacheSlots, clip(v))}
		case !ok || n < MinCacheSlots:
			// Helicone reads it with parseInt and then finds no slot to
			// read or fill: the cache is off for this call.
			warn.Add(helicone.CacheBucketMaxSize, fmt.Sprintf("%q is not a number from %d to %d; the cache is off", clip(v), MinCacheSlots, MaxCacheSlots))
			return cacheOptions{slots: o.slots}, nil
		case rest != "":
			warn.Add(helicone.CacheBucketMaxSize, fmt.Sprintf("%q is read as %d", clip(v), n))
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

// switchState is what a true/false header says.
type switchState int8

const (
	switchAbsent switchState = iota // not sent, empty, or neither true nor false
	switchOn
	switchOff
)

// switchHeader reads v, the value of a cache switch (name, lowercase), as
// every switch is read (helicone.ReadSwitch); a value that is neither true
// nor false counts as not sent and is reported in warn.
func switchHeader(v, name string, warn *helicone.Warnings) switchState {
	s, ok := helicone.ReadSwitch(v)
	if !ok {
		warn.Add(name, fmt.Sprintf("%q is neither true nor false; read as not sent", clip(strings.TrimSpace(v))))
	}
	switch s {
	case helicone.SwitchOn:
		return switchOn
	case helicone.SwitchOff:
		return switchOff
	}
	return switchAbsent
}

// leadingInt reads an optional sign and the digits that start s, the way
// JavaScript's parseInt does ("2.5" is 2, "3abc" is 3); rest is what
// follows them, ok false when there are none.
func leadingInt(s string) (n int64, rest string, ok bool) {
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg, s = s[0] == '-', s[1:]
	}
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if n < 1<<40 { // far above any bucket size; stops overflow
			n = n*10 + int64(s[i]-'0')
		}
	}
	if i == 0 {
		return 0, s, false
	}
	if neg {
		n = -n
	}
	return n, s[i:], true
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
