package gate

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies/egress"
	"github.com/tollgate-dev/tollgate/provider"
)

func TestParseIgnoreKeys(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "user", want: []string{"user"}},
		{in: "user, metadata", want: []string{"metadata", "user"}},
		{in: `"user","metadata"`, want: []string{"metadata", "user"}},
		{in: `"user, metadata"`, want: []string{"user, metadata"}},
		{in: `["user", "metadata", "user"]`, want: []string{"metadata", "user"}},
		{in: `'temperature' , seed`, want: []string{"seed", "temperature"}},
		{in: `"a\"b", c.d`, want: []string{`a"b`, "c.d"}},
		{in: " , ,", want: nil},
		{in: `"user`, wantErr: true},
		{in: `"user" x`, wantErr: true},
		{in: strings.Repeat("k,", 64) + "last", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseIgnoreKeys(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseIgnoreKeys(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseIgnoreKeys(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRemoveIgnoredKeys(t *testing.T) {
	tests := []struct {
		body string
		keys []string
		want string
	}{
		{`{"model":"m","user":"u","n":1}`, []string{"user"}, `{"model":"m","n":1}`},
		{`{"user":"u","model":"m"}`, []string{"user", "model"}, `{}`},
		{`{"a.b":1,"a":{"b":2}}`, []string{"a.b"}, `{"a":{"b":2}}`},
		{`{"*":1,"x?":2,":k":3,"#":4,"@this":5,"k":6}`, []string{"*", "x?", ":k", "#", "@this"}, `{"k":6}`},
		{`{"user":1,"user":2,"m":3}`, []string{"user"}, `{"m":3}`},
		{`{"m":{"user":1}}`, []string{"user"}, `{"m":{"user":1}}`}, // top level only
		{`[1,2]`, []string{"0"}, `[1,2]`},
		{`not json`, []string{"x"}, `not json`},
		{``, []string{"x"}, ``},
	}
	for _, tt := range tests {
		got := string(RemoveIgnoredKeys([]byte(tt.body), tt.keys))
		if got != tt.want {
			t.Errorf("RemoveIgnoredKeys(%s, %q) = %s, want %s", tt.body, tt.keys, got, tt.want)
		}
	}
}

// FuzzCacheIgnoreKeys: for any header and any JSON object body, removing
// the ignored keys never panics, keeps the body valid JSON, removes every
// listed key that is written literally, and keeps every other top-level
// field byte for byte.
func FuzzCacheIgnoreKeys(f *testing.F) {
	f.Add("user, metadata", `{"model":"gpt-4o","user":"u1","metadata":{"a":1},"messages":[]}`)
	f.Add(`"a.b","*"`, `{"a.b":1,"*":2,"c":3}`)
	f.Add(`[":k", "#"]`, `{":k":1,"#":[1,2],"z":null}`)
	f.Add("user", `{"user":1,"user":2}`)
	f.Add("x", `[1,2,3]`)
	f.Add(`"\u00e9"`, `{"é":1,"e":2}`)
	f.Fuzz(func(t *testing.T, header, body string) {
		keys, err := ParseIgnoreKeys(header)
		if err != nil {
			return
		}
		out := RemoveIgnoredKeys([]byte(body), keys)
		var before map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &before) != nil || !json.Valid([]byte(body)) {
			return // not a JSON object: returned as is, nothing to check
		}
		if !json.Valid(out) {
			t.Fatalf("keys %q turned %s into invalid JSON %s", keys, body, out)
		}
		var after map[string]json.RawMessage
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("keys %q: %s -> %s is not an object: %v", keys, body, out, err)
		}
		ignored := make(map[string]bool)
		for _, k := range keys {
			ignored[k] = true
			if _, ok := after[k]; ok && literalKey(body, k) {
				t.Fatalf("key %q still in %s (from %s)", k, out, body)
			}
		}
		for k, v := range before {
			if ignored[k] {
				continue
			}
			if w, ok := after[k]; !ok || !bytes.Equal(v, w) && !duplicated(body, k) {
				t.Fatalf("field %q lost or changed: %s -> %s (keys %q)", k, body, out, keys)
			}
		}
	})
}

// literalKey reports whether k appears in body in its plain JSON spelling.
// A key spelled with escapes (\u0061 for a) is matched by sjson byte for
// byte, so it may survive: harmless, the request only misses the cache.
func literalKey(body, k string) bool {
	return strings.Contains(body, string(jsonString(k)))
}

// duplicated reports a key written more than once: encoding/json keeps the
// last value, sjson may delete in a different order.
func duplicated(body, k string) bool {
	return strings.Count(body, string(jsonString(k))) > 1
}

func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func TestCacheKeyInputs(t *testing.T) {
	hdr := map[string]string{}
	base := func() RequestInfo {
		return RequestInfo{Tenant: "acme", Method: "POST", URL: "/v1/chat/completions",
			Header: func(n string) string { return hdr[n] },
			Body:   []byte(`{"model":"gpt-4o","user":"u1","messages":[{"role":"user","content":"hi"}]}`)}
	}
	key := func(r RequestInfo, o cacheOptions) string {
		if o.slots == 0 {
			o.slots = 1
		}
		return cacheKey(r.Tenant, &r, &o)
	}
	k0 := key(base(), cacheOptions{})
	if !strings.HasPrefix(k0, "tg:{acme}:c:") {
		t.Fatalf("key %q lacks the tenant hash tag", k0)
	}
	differ := map[string]func() (RequestInfo, cacheOptions){
		"tenant": func() (RequestInfo, cacheOptions) { r := base(); r.Tenant = "other"; return r, cacheOptions{} },
		"url":    func() (RequestInfo, cacheOptions) { r := base(); r.URL += "?x=1"; return r, cacheOptions{} },
		"origin": func() (RequestInfo, cacheOptions) {
			r := base()
			r.TargetOrigin = "https://x.ai"
			return r, cacheOptions{}
		},
		"body": func() (RequestInfo, cacheOptions) { r := base(); r.Body = []byte(`{}`); return r, cacheOptions{} },
		"fallback list": func() (RequestInfo, cacheOptions) {
			r := base()
			r.KeyExtra = `fallback` + "\x00" + `[{"model":"gpt-4o-mini"}]`
			return r, cacheOptions{}
		},
		"seed":    func() (RequestInfo, cacheOptions) { return base(), cacheOptions{seed: "s"} },
		"slots":   func() (RequestInfo, cacheOptions) { return base(), cacheOptions{slots: 2} },
		"ignored": func() (RequestInfo, cacheOptions) { return base(), cacheOptions{ignoreKeys: []string{"nothere"}} },
		"authorization": func() (RequestInfo, cacheOptions) {
			r := base()
			r.Header = func(n string) string { return map[string]string{"authorization": "Bearer sk-2"}[n] }
			return r, cacheOptions{}
		},
		"x-api-key": func() (RequestInfo, cacheOptions) {
			r := base()
			r.Header = func(n string) string { return map[string]string{"x-api-key": "sk-ant"}[n] }
			return r, cacheOptions{}
		},
	}
	for name, mk := range differ {
		if k := key(mk()); k == k0 {
			t.Errorf("changing %s did not change the key", name)
		}
	}
	// Ignored fields do not count; the on/off switches and TTL do not either.
	r := base()
	r.Body = []byte(`{"model":"gpt-4o","user":"u2","messages":[{"role":"user","content":"hi"}]}`)
	if key(r, cacheOptions{ignoreKeys: []string{"user"}}) != key(base(), cacheOptions{ignoreKeys: []string{"user"}}) {
		t.Error("an ignored field changed the key")
	}
	if key(base(), cacheOptions{save: false, read: false, ttl: time.Hour}) != k0 {
		t.Error("Save / Read / TTL changed the key")
	}
	// A tenant that is not a plain word is hashed, never spliced raw.
	if k := key(RequestInfo{Tenant: "a}b:{c"}, cacheOptions{}); !strings.HasPrefix(k, "tg:{~") {
		t.Errorf("odd tenant key %q", k)
	}
}

func TestCacheEntryRoundTrip(t *testing.T) {
	e := cacheEntry{RequestID: "r1", Status: 200, ContentType: "text/event-stream", Model: "gpt-4o",
		Usage:     provider.Usage{PromptTokens: 10, CompletionTokens: 5, CachedTokens: 2, CacheWriteTokens: 1, ReasoningTokens: 3},
		LatencyMs: 345, CreatedUnixMs: 1, Headers: [][2]string{{"x-request-id", "req_1"}, {"openai-version", ""}},
		Body: []byte("data: {}\n\ndata: [DONE]\n\n")}
	got, err := decodeEntry(e.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, e) {
		t.Fatalf("got %+v, want %+v", *got, e)
	}
	for _, bad := range [][]byte{nil, []byte("tgc1"), []byte("tgc1\xff"), []byte("xxxx\x02{}"), []byte("tgc1\x02{}")} {
		if _, err := decodeEntry(bad); err == nil {
			t.Errorf("decodeEntry(%q) accepted", bad)
		}
	}
}

// Entries written before headers were kept ("tgc1") still read, without
// headers: a deployment does not lose its cache to the upgrade.
func TestCacheEntryV1(t *testing.T) {
	e := cacheEntry{RequestID: "r1", Status: 200, ContentType: "application/json", Model: "gpt-4o",
		Usage: provider.Usage{PromptTokens: 10}, LatencyMs: 3, CreatedUnixMs: 1, Body: []byte(`{"a":1}`)}
	v2 := e.encode()
	// v1 is v2 without the header count (0, one byte) and with the old magic.
	bodyAt := len(v2) - len(e.Body)
	v1 := append(append([]byte("tgc1"), v2[4:bodyAt-1]...), e.Body...)
	got, err := decodeEntry(v1)
	if err != nil || !reflect.DeepEqual(*got, e) {
		t.Fatalf("v1 entry: %+v, %v", got, err)
	}
}

// The headers kept with an entry are bounded in number and size.
func TestReplayHeadersBounded(t *testing.T) {
	var h [][2]string
	for i := range 100 {
		h = append(h, [2]string{"x-ratelimit-" + strconv.Itoa(i), strings.Repeat("v", 100)})
	}
	h = append(h, [2]string{"x-request-id", strings.Repeat("v", 300)})
	got := replayHeaders(h)
	size := 0
	for _, kv := range got {
		size += len(kv[0]) + len(kv[1])
		if len(kv[1]) > maxReplayValueBytes {
			t.Fatalf("value of %d bytes kept", len(kv[1]))
		}
	}
	if len(got) > maxReplayHeaders || size > maxReplayHeaderBytes {
		t.Fatalf("%d headers, %d bytes kept", len(got), size)
	}
}

// An egress policy's cache settings apply where the request says nothing.
func TestCacheOptionsPolicyDefaults(t *testing.T) {
	on := egress.Cache{Enabled: true, TTL: time.Hour, BucketMaxSize: 3}
	hdr := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(n string) string { return m[n] }
	}
	tests := []struct {
		name     string
		h        func(string) string
		defaults egress.Cache
		enabled  bool
		slots    int
		ttl      time.Duration
	}{
		{"policy on, request silent", hdr(), on, true, 3, time.Hour},
		{"request turns it off", hdr("helicone-cache-enabled", "false"), on, false, 3, 0},
		{"request's own bucket and lifetime", hdr("helicone-cache-bucket-max-size", "2", "cache-control", "max-age=60"), on, true, 2, time.Minute},
		{"policy off, request on", hdr("helicone-cache-enabled", "true"), egress.Cache{TTL: time.Hour, BucketMaxSize: 3}, true, 1, 7 * 24 * time.Hour},
		{"no policy", hdr(), egress.Cache{}, false, 1, 0},
	}
	for _, tt := range tests {
		o, err := parseCacheOptions(cacheHeaders(tt.h), tt.h, 7*24*time.Hour, tt.defaults, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if o.enabled != tt.enabled || o.slots != tt.slots || o.ttl != tt.ttl {
			t.Errorf("%s: enabled %v slots %d ttl %v, want %v %d %v", tt.name, o.enabled, o.slots, o.ttl, tt.enabled, tt.slots, tt.ttl)
		}
	}
}
