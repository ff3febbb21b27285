// Package cachecontrol reads the lifetime a request's Cache-Control header
// asks the cache to keep its response (RFC 9111 s-maxage / max-age), and
// holds the longest the cache keeps anything, which the egress policy's
// cache defaults are checked against too.
package cachecontrol

import (
	"strings"
	"time"
)

// MaxTTL is the longest a response is cached (DESIGN §4).
const MaxTTL = 365 * 24 * time.Hour

// Parse returns the lifetime a request's Cache-Control asks the cache to
// keep its response: s-maxage, else max-age, in whole seconds, capped at
// MaxTTL. ok is false when neither directive has a valid value; the caller
// then uses its default. Directive names are matched
// case-insensitively, values may be quoted, commas inside quoted strings do
// not split directives, and when a directive repeats the first one counts.
func Parse(v string) (ttl time.Duration, ok bool) {
	var sMax, max time.Duration
	var haveS, haveMax bool
	for len(v) > 0 {
		var name, val string
		name, val, v = nextDirective(v)
		switch {
		case strings.EqualFold(name, "s-maxage") && !haveS:
			sMax, haveS = parseDeltaSeconds(val)
		case strings.EqualFold(name, "max-age") && !haveMax:
			max, haveMax = parseDeltaSeconds(val)
		}
	}
	switch {
	case haveS:
		return sMax, true
	case haveMax:
		return max, true
	}
	return 0, false
}

// nextDirective splits the first directive off a Cache-Control value.
func nextDirective(v string) (name, val, rest string) {
	i := 0
	for i < len(v) && v[i] != ',' && v[i] != '=' {
		i++
	}
	name = strings.TrimSpace(v[:i])
	if i == len(v) {
		return name, "", ""
	}
	if v[i] == ',' {
		return name, "", v[i+1:]
	}
	i++ // '='
	for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	if i < len(v) && v[i] == '"' {
		var b strings.Builder
		j := i + 1
		for ; j < len(v) && v[j] != '"'; j++ {
			if v[j] == '\\' && j+1 < len(v) {
				j++
			}
			b.WriteByte(v[j])
		}
		val = b.String()
		// Skip to the next comma after the closing quote.
		for j < len(v) && v[j] != ',' {
			j++
		}
		if j < len(v) {
			j++
		}
		return name, val, v[j:]
	}
	j := i
	for j < len(v) && v[j] != ',' {
		j++
	}
	val = strings.TrimSpace(v[i:j])
	if j < len(v) {
		j++
	}
	return name, val, v[j:]
}

// parseDeltaSeconds reads RFC 9111 delta-seconds; values too large for the
// cache are capped rather than rejected, as the RFC asks.
func parseDeltaSeconds(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	const maxSeconds = int64(MaxTTL / time.Second)
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n <= maxSeconds {
			n = n*10 + int64(c-'0')
		}
	}
	if n > maxSeconds {
		n = maxSeconds
	}
	return time.Duration(n) * time.Second, true
}
