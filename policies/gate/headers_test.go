package gate

import "github.com/tollgate-dev/tollgate/helicone"

// cacheHeaders is the Helicone-Cache-* part of helicone.Headers for a
// header lookup.
func cacheHeaders(h func(string) string) *helicone.CacheHeaders {
	var hh helicone.Headers
	for _, name := range []string{helicone.CacheEnabled, helicone.CacheSave, helicone.CacheRead,
		helicone.CacheSeed, helicone.CacheBucketMaxSize, helicone.CacheIgnoreKeys} {
		if v := h(name); v != "" {
			_ = hh.Add(name, v)
		}
	}
	return &hh.Cache
}
