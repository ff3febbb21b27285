package gate_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/cachecontrol"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/policies/ratelimit"
	"github.com/tollgate-dev/tollgate/provider"
)

// Gate semantics (DESIGN §4) as scenarios: each is a sequence of calls on a
// fresh store, each call checked, then (when reply is set) completed with a
// provider answer. Run against every backend.

type step struct {
	c      call
	pick   int    // what the Gate's random source returns
	want   string // cacheState of the decision
	hdr    map[string]string
	reply  string // provider body; "" = the call is not completed
	status int    // default 200
	ct     string // default application/json
	cost   float64
}

type scenario struct {
	name  string
	opts  func(*gate.Options)
	steps []step
}

var (
	cacheOn = call{headers: map[string]string{"Helicone-Cache-Enabled": "true"}}
	sse     = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n"
)

func body(content string) string {
	return `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + content + `"}]}`
}

func limit(policy string) call {
	return call{headers: map[string]string{"Helicone-RateLimit-Policy": policy}}
}

func scenarios() []scenario {
	cacheUser := func(user string) call {
		c := cacheOn.with("Helicone-Cache-Ignore-Keys", "user")
		c.body = `{"model":"gpt-4o-mini","user":"` + user + `","messages":[]}`
		return c
	}
	rl := func(remaining string) map[string]string {
		return map[string]string{"helicone-ratelimit-remaining": remaining}
	}
	return []scenario{
		{name: "no cache or policy header: nothing to do", steps: []step{
			{c: call{}, want: "-", hdr: map[string]string{"helicone-cache": "", "helicone-ratelimit-limit": ""}},
		}},
		{name: "miss, fill, hit", steps: []step{
			{c: cacheOn, want: "MISS", reply: "A", hdr: map[string]string{"helicone-cache": "MISS", "helicone-cache-bucket-idx": ""}},
			{c: cacheOn, want: "HIT:0:A", hdr: map[string]string{"helicone-cache": "HIT", "helicone-cache-bucket-idx": "0",
				"helicone-cache-latency": "123", "content-type": "application/json"}},
		}},
		{name: "cache off ignores the stored entry", steps: []step{
			{c: cacheOn, want: "MISS", reply: "A"},
			{c: call{}, want: "-"},
			{c: cacheOn.with("Helicone-Cache-Enabled", "false"), want: "-"},
		}},
		{name: "seed separates", steps: []step{
			{c: cacheOn.with("Helicone-Cache-Seed", "s1"), want: "MISS", reply: "A"},
			{c: cacheOn.with("Helicone-Cache-Seed", "s2"), want: "MISS"},
			{c: cacheOn, want: "MISS"},
			{c: cacheOn.with("Helicone-Cache-Seed", "s1"), want: "HIT:0:A"},
		}},
		{name: "tenant isolation", steps: []step{
			{c: call{tenant: "acme", headers: cacheOn.headers}, want: "MISS", reply: "A"},
			{c: call{tenant: "globex", headers: cacheOn.headers}, want: "MISS"},
			{c: call{headers: cacheOn.headers}, want: "MISS"},
			{c: call{tenant: "acme", headers: cacheOn.headers}, want: "HIT:0:A"},
		}},
		{name: "provider key isolation", steps: []step{
			{c: cacheOn.with("Authorization", "Bearer sk-one"), want: "MISS", reply: "A"},
			{c: cacheOn.with("Authorization", "Bearer sk-two"), want: "MISS"},
			{c: cacheOn.with("x-api-key", "sk-ant-one"), want: "MISS"},
			{c: cacheOn, want: "MISS"},
			{c: cacheOn.with("Authorization", "Bearer sk-one"), want: "HIT:0:A"},
		}},
		{name: "url query and target origin are part of the key", steps: []step{
			{c: cacheOn, want: "MISS", reply: "A"},
			{c: call{url: "/v1/chat/completions?api-version=2", headers: cacheOn.headers}, want: "MISS"},
			{c: call{origin: "https://api.together.xyz", headers: cacheOn.headers}, want: "MISS"},
			{c: cacheOn, want: "HIT:0:A"},
		}},
		{name: "ignored body keys do not split the key", steps: []step{
			{c: cacheUser("u1"), want: "MISS", reply: "A"},
			{c: cacheUser("u2"), want: "HIT:0:A"},
			{c: call{headers: cacheOn.headers, body: `{"model":"gpt-4o-mini","user":"u1","messages":[]}`}, want: "MISS"},
		}},
		{name: "switches do not shape the key", steps: []step{
			{c: cacheOn, want: "MISS", reply: "A"},
			{c: cacheOn.with("Helicone-Cache-Save", "false"), want: "HIT:0:A"},
			{c: cacheOn.with("Cache-Control", "max-age=60"), want: "HIT:0:A"},
		}},
		{name: "save false reads only", steps: []step{
			{c: cacheOn.with("Helicone-Cache-Save", "false"), want: "MISS", reply: "A"},
			{c: cacheOn.with("Helicone-Cache-Save", "false"), want: "MISS"},
			{c: cacheOn, want: "MISS", reply: "B"},
			{c: cacheOn.with("Helicone-Cache-Save", "FALSE"), want: "HIT:0:B"},
		}},
		{name: "read false refreshes", steps: []step{
			{c: cacheOn, want: "MISS", reply: "A"},
			{c: cacheOn.with("Helicone-Cache-Read", "false"), want: "MISS", reply: "B"},
			{c: cacheOn, want: "HIT:0:B"},
		}},
		{name: "bucket slots: miss until all full, then the picked slot", steps: []step{
			{c: cacheOn.with("Helicone-Cache-Bucket-Max-Size", "3"), want: "MISS", reply: "A"},
			{c: cacheOn.with("Helicone-Cache-Bucket-Max-Size", "3"), want: "MISS", reply: "B"},
			{c: cacheOn.with("Helicone-Cache-Bucket-Max-Size", "3"), want: "MISS", reply: "C"},
			{c: cacheOn.with("Helicone-Cache-Bucket-Max-Size", "3"), pick: 1, want: "HIT:1:B"},
			{c: cacheOn.with("Helicone-Cache-Bucket-Max-Size", "3"), pick: 2, want: "HIT:2:C", hdr: map[string]string{"helicone-cache-bucket-idx": "2"}},
			{c: cacheOn.with("Helicone-Cache-Bucket-Max-Size", "3"), pick: 0, want: "HIT:0:A"},
			{c: cacheOn, want: "MISS"}, // another bucket size is another key
		}},
		{name: "read false on a full bucket replaces a random slot", steps: []step{
			{c: cacheOn.with("Helicone-Cache-Bucket-Max-Size", "2"), want: "MISS", reply: "A"},
			{c: cacheOn.with("Helicone-Cache-Bucket-Max-Size", "2"), want: "MISS", reply: "B"},
			{c: cacheOn.with("Helicone-Cache-Bucket-Max-Size", "2", "Helicone-Cache-Read", "false"), pick: 1, want: "MISS", reply: "C"},
			{c: cacheOn.with("Helicone-Cache-Bucket-Max-Size", "2"), pick: 1, want: "HIT:1:C"},
			{c: cacheOn.with("Helicone-Cache-Bucket-Max-Size", "2"), pick: 0, want: "HIT:0:A"},
		}},
		{name: "only 2xx responses are stored", steps: []step{
			{c: cacheOn, want: "MISS", reply: "E", status: 500},
			{c: cacheOn, want: "MISS", reply: "R", status: 429},
			{c: cacheOn, want: "MISS", reply: "A", status: 201},
			{c: cacheOn, want: "HIT:0:A"},
		}},
		{name: "streams are replayed as the same SSE", steps: []step{
			{c: cacheOn, want: "MISS", reply: sse, ct: "text/event-stream"},
			{c: cacheOn, want: "HIT:0:" + sse, hdr: map[string]string{"content-type": "text/event-stream"}},
		}},
		{name: "max-age=0 stores nothing", steps: []step{
			{c: cacheOn.with("Cache-Control", "max-age=0"), want: "MISS", reply: "A"},
			{c: cacheOn, want: "MISS"},
		}},
		// Helicone: worker/src/lib/rate-limit/bucketClient.ts (createSuccessResult)
		// and worker/src/lib/durable-objects/BucketRateLimiterDO.ts (resetSeconds:
		// until the bucket is full again).
		{name: "request limit: headers, then 429", steps: []step{
			{c: limit("3;w=60"), want: "-", hdr: map[string]string{"helicone-ratelimit-limit": "3", "helicone-ratelimit-remaining": "2",
				"helicone-ratelimit-policy": "3;w=60", "helicone-ratelimit-reset": "20"}},
			{c: limit("3;W=60"), want: "-", hdr: rl("1")},
			{c: limit("3;w=60"), want: "-", hdr: map[string]string{"helicone-ratelimit-remaining": "0", "helicone-ratelimit-reset": "60"}},
			{c: limit("3;w=60"), want: "429", hdr: map[string]string{"helicone-ratelimit-remaining": "0", "helicone-ratelimit-reset": "60",
				"x-helicone-error": "rate_limited", "retry-after": "20", "helicone-ratelimit-policy": "3;w=60"}},
		}},
		{name: "cache hits take no tokens", steps: []step{
			{c: cacheOn.with("Helicone-RateLimit-Policy", "2;w=3600"), want: "MISS", reply: "A", hdr: rl("1")},
			{c: cacheOn.with("Helicone-RateLimit-Policy", "2;w=3600"), want: "HIT:0:A", hdr: rl("1")},
			{c: cacheOn.with("Helicone-RateLimit-Policy", "2;w=3600"), want: "HIT:0:A", hdr: rl("1")},
			{c: limit("2;w=3600"), want: "-", hdr: rl("0")},
			{c: limit("2;w=3600"), want: "429"},
			{c: cacheOn.with("Helicone-RateLimit-Policy", "2;w=3600"), want: "HIT:0:A", hdr: rl("0")}, // hits pass even when limited
		}},
		{name: "user segment", steps: []step{
			{c: call{user: "u1", headers: limit("1;w=60;s=user").headers}, want: "-", hdr: map[string]string{"helicone-ratelimit-policy": "1;w=60;s=user"}},
			{c: call{user: "u1", headers: limit("1;w=60;s=user").headers}, want: "429"},
			{c: call{user: "u2", headers: limit("1;w=60;s=user").headers}, want: "-"},
			{c: call{user: "u2", headers: limit("1;w=60;s=user").headers}, want: "429"},
		}},
		{name: "property segment", steps: []step{
			{c: limit("1;w=60;s=Team").with("Helicone-Property-Team", "a"), want: "-"},
			{c: limit("1;w=60;s=team").with("Helicone-Property-Team", "a"), want: "429"},
			{c: limit("1;w=60;s=team").with("Helicone-Property-Team", "b"), want: "-"},
			{c: limit("1;w=60"), want: "-"}, // organization-wide is its own bucket
		}},
		{name: "tenants have their own buckets", steps: []step{
			{c: call{tenant: "acme", headers: limit("1;w=60").headers}, want: "-"},
			{c: call{tenant: "acme", headers: limit("1;w=60").headers}, want: "429"},
			{c: call{tenant: "globex", headers: limit("1;w=60").headers}, want: "-"},
		}},
		{name: "cents: checked before, charged after", steps: []step{
			{c: limit("10;w=3600;u=cents"), want: "-", hdr: rl("10"), reply: "A", cost: 0.04},
			{c: limit("10;w=3600;u=cents"), want: "-", hdr: rl("6"), reply: "B", cost: 0.15},
			{c: limit("10;w=3600;u=cents"), want: "429", hdr: map[string]string{"helicone-ratelimit-remaining": "0", "helicone-ratelimit-policy": "10;w=3600;u=cents",
				// -9 cents: 19 cents short of full at 10 cents an hour.
				"helicone-ratelimit-reset": "6840"}},
		}},
		{name: "a 429 is not completed into the cache", steps: []step{
			{c: cacheOn.with("Helicone-RateLimit-Policy", "1;w=60"), want: "MISS"},
			{c: cacheOn.with("Helicone-RateLimit-Policy", "1;w=60"), want: "429", reply: "X"},
			{c: cacheOn, want: "MISS"},
		}},
		{name: "entries over the size limit are not stored",
			opts: func(o *gate.Options) { o.MaxEntryBytes = 200 },
			steps: []step{
				{c: cacheOn, want: "MISS", reply: strings.Repeat("x", 300)},
				{c: cacheOn, want: "MISS", reply: "small"},
				{c: cacheOn, want: "HIT:0:small"},
			}},
	}
}

func TestGateSemantics(t *testing.T) {
	forEachBackend(t, runGateSemantics)
}

func runGateSemantics(t *testing.T, be backend) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			var tweak []func(*gate.Options)
			if sc.opts != nil {
				tweak = append(tweak, sc.opts)
			}
			g := newRig(t, be.open(t), tweak...)
			for i, st := range sc.steps {
				g.setPick(st.pick)
				d := g.check(t, st.c)
				if got := cacheState(d); got != st.want {
					t.Fatalf("step %d: got %s, want %s", i, got, st.want)
				}
				hs := d.ResponseHeaders
				if d.Answer != nil {
					hs = d.Answer.Headers
				}
				for name, want := range st.hdr {
					if got := header(hs, name); got != want {
						t.Fatalf("step %d: header %s = %q, want %q (all: %v)", i, name, got, want, hs)
					}
				}
				if st.reply != "" {
					status, ct := st.status, st.ct
					if status == 0 {
						status = 200
					}
					if ct == "" {
						ct = "application/json"
					}
					g.Complete(context.Background(), d, gate.ResponseInfo{
						RequestID: "req-" + st.reply, Status: status, ContentType: ct, Body: []byte(st.reply),
						Model: "gpt-4o-mini", Usage: provider.Usage{PromptTokens: 11, CompletionTokens: 7}, LatencyMs: 123, CostUSD: st.cost,
					})
				}
			}
		})
	}
}

func TestGateHitRecordsTheOriginal(t *testing.T) {
	g := newRig(t, memBackend().open(t))
	d := g.check(t, cacheOn)
	if d.CacheBodyLimit() != 2<<20 {
		t.Fatalf("CacheBodyLimit = %d", d.CacheBodyLimit())
	}
	g.Complete(context.Background(), d, gate.ResponseInfo{RequestID: "orig-1", Status: 200, Body: []byte(`{"ok":1}`),
		Model: "gpt-4o-mini-2024-07-18", Usage: provider.Usage{PromptTokens: 100, CompletionTokens: 50, CachedTokens: 20, CacheWriteTokens: 5,
			ReasoningTokens: 9}, CostUSD: 0.01, LatencyMs: 812})
	d = g.check(t, cacheOn)
	want := gate.CachedCall{ReferenceID: "orig-1", Model: "gpt-4o-mini-2024-07-18", Usage: provider.Usage{PromptTokens: 100,
		CompletionTokens: 50, CachedTokens: 20, CacheWriteTokens: 5, ReasoningTokens: 9}, LatencyMs: 812}
	if d.Hit == nil || *d.Hit != want {
		t.Fatalf("hit %+v, want %+v", d.Hit, want)
	}
	if d.Answer.Status != 200 || string(d.Answer.Body) != `{"ok":1}` || d.CacheBodyLimit() != 0 {
		t.Fatalf("answer %+v", d.Answer)
	}
	if got := g.metric(t, "tollgate_cache_lookups_total", "result", "hit"); got != 1 {
		t.Fatalf("hit metric %v", got)
	}
}

func TestGateRateLimitedBody(t *testing.T) {
	g := newRig(t, memBackend().open(t))
	c := call{user: "u1", headers: limit("1;w=60;s=user").headers}
	g.check(t, c)
	d := g.check(t, c)
	if !d.RateLimited || d.Answer.Status != 429 {
		t.Fatalf("decision %+v", d)
	}
	// Helicone: worker/src/lib/ResponseBuilder.ts (buildRateLimitedResponse):
	// one "message" and nothing else.
	var b map[string]string
	if err := json.Unmarshal(d.Answer.Body, &b); err != nil {
		t.Fatal(err)
	}
	if len(b) != 1 || !strings.Contains(b["message"], "Helicone-RateLimit-Policy 1;w=60;s=user") || !strings.Contains(b["message"], "for each user") {
		t.Fatalf("body %s", d.Answer.Body)
	}
	if got := header(d.Answer.Headers, "content-type"); got != "application/json;charset=UTF-8" {
		t.Fatalf("content-type %q", got)
	}
	if g.metric(t, "tollgate_ratelimit_checks_total", "result", "limited") != 1 ||
		g.metric(t, "tollgate_ratelimit_checks_total", "result", "allowed") != 1 {
		t.Fatal("limit metrics")
	}
}

func TestGateBadHeaders(t *testing.T) {
	tests := []struct {
		c      call
		header string
		reason string
	}{
		// The values Helicone tolerates are tolerated (helicone_compat_test.go);
		// these say nothing usable.
		{cacheOn.with("Helicone-Cache-Bucket-Max-Size", "21"), "Helicone-Cache-Bucket-Max-Size", "1 to 20"},
		{cacheOn.with("Helicone-Cache-Ignore-Keys", `"user`), "Helicone-Cache-Ignore-Keys", "unterminated"},
	}
	g := newRig(t, memBackend().open(t))
	for _, tt := range tests {
		_, err := g.Check(context.Background(), tt.c.info())
		var bad *helicone.BadHeaderError
		if !errors.As(err, &bad) || bad.Status() != 400 || bad.Header != tt.header ||
			!strings.HasPrefix(err.Error(), tt.header+" ") || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("%v: err = %v, want a 400 naming %s (%s)", tt.c.headers, err, tt.header, tt.reason)
		}
	}
	// Cache headers are only read when the cache is on.
	if _, err := g.Check(context.Background(), call{headers: map[string]string{"Helicone-Cache-Bucket-Max-Size": "99"}}.info()); err != nil {
		t.Errorf("bucket size without the cache: %v", err)
	}
}

func TestGateUnreadableEntry(t *testing.T) {
	s := memBackend().open(t)
	g := newRig(t, s)
	c := cacheOn.with("Helicone-RateLimit-Policy", "5;w=3600")
	d := g.check(t, c)
	g.respond(d, 200, "good", 0)
	// Corrupt the slot behind the Gate's back.
	key := cacheKeyOf(t, g, c)
	if err := s.Put(context.Background(), key, 0, []byte("garbage"), time.Hour); err != nil {
		t.Fatal(err)
	}
	d = g.check(t, c)
	if cacheState(d) != "MISS" || header(d.ResponseHeaders, "helicone-ratelimit-remaining") != "3" {
		t.Fatalf("corrupt entry: %s %v (want a miss that still takes a token)", cacheState(d), d.ResponseHeaders)
	}
	g.respond(d, 200, "fresh", 0)
	if d = g.check(t, c); cacheState(d) != "HIT:0:fresh" {
		t.Fatalf("after overwrite: %s", cacheState(d))
	}
	if g.metric(t, "tollgate_store_errors_total", "op", "corrupt_entry") != 1 {
		t.Fatal("corrupt entry not counted")
	}
}

// cacheKeyOf finds the store key of a call by filling through a recording
// store.
func cacheKeyOf(t *testing.T, g *gateRig, c call) string {
	t.Helper()
	rec := &recordingStore{}
	r := newRig(t, rec)
	d := r.check(t, c)
	r.respond(d, 200, "x", 0)
	if rec.key == "" {
		t.Fatal("no key recorded")
	}
	return rec.key
}

type recordingStore struct {
	gate.Store
	key string
}

func (r *recordingStore) Admit(_ context.Context, req gate.StoreAdmit) (gate.StoreAdmitResult, error) {
	res := gate.StoreAdmitResult{Slot: -1, Buckets: make([]ratelimit.BucketOutcome, len(req.Buckets))}
	for i := range res.Buckets {
		res.Buckets[i] = ratelimit.BucketOutcome{Allowed: true, Remaining: 1}
	}
	return res, nil
}

func (r *recordingStore) Fill(_ context.Context, key string, _ int, _ []byte, _ time.Duration) (int, error) {
	r.key = key
	return 0, nil
}

func TestGateStoreDown(t *testing.T) {
	for _, failClosed := range []bool{false, true} {
		g := newRig(t, nil, func(o *gate.Options) { o.FailClosed = failClosed })
		d := g.check(t, limit("5;w=60"))
		if failClosed {
			if !d.FailedClosed || d.Answer == nil || d.Answer.Status != 503 || header(d.Answer.Headers, "x-helicone-error") != "rate_limit_unavailable" {
				t.Fatalf("fail closed: %+v", d)
			}
		} else if d.Answer != nil || header(d.ResponseHeaders, "helicone-ratelimit-limit") != "" {
			t.Fatalf("fail open: %+v", d)
		}
		// The cache alone never rejects: a miss.
		if d := g.check(t, cacheOn); cacheState(d) != "MISS" || d.Answer != nil {
			t.Fatalf("cache with the store down: %s", cacheState(d))
		}
		result := "fail_open"
		if failClosed {
			result = "fail_closed"
		}
		if g.metric(t, "tollgate_ratelimit_checks_total", "result", result) != 1 ||
			g.metric(t, "tollgate_cache_lookups_total", "result", "error") != 1 ||
			g.metric(t, "tollgate_store_errors_total", "op", "admit") != 2 {
			t.Fatalf("failClosed=%v: metrics not counted", failClosed)
		}
	}
}

func TestGateDefaultTTL(t *testing.T) {
	rec := &ttlStore{}
	g := newRig(t, rec, func(o *gate.Options) { o.Rand = func(n int) int { return n - 1 } })
	for _, tt := range []struct {
		cc       string
		min, max time.Duration
	}{
		{"", gate.DefaultCacheTTL * 99 / 100, gate.DefaultCacheTTL}, // jittered down by < 1%
		{"max-age=60", time.Minute, time.Minute},
		{"s-maxage=5, max-age=60", 5 * time.Second, 5 * time.Second},
		{"max-age=999999999", cachecontrol.MaxTTL, cachecontrol.MaxTTL},
	} {
		c := cacheOn
		if tt.cc != "" {
			c = cacheOn.with("Cache-Control", tt.cc)
		}
		d := g.check(t, c)
		g.respond(d, 200, "x", 0)
		if rec.ttl < tt.min || rec.ttl > tt.max {
			t.Errorf("Cache-Control %q: ttl %v, want %v..%v", tt.cc, rec.ttl, tt.min, tt.max)
		}
	}
}

type ttlStore struct {
	recordingStore
	ttl time.Duration
}

func (s *ttlStore) Fill(_ context.Context, _ string, _ int, _ []byte, ttl time.Duration) (int, error) {
	s.ttl = ttl
	return 0, nil
}
