package gate_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/helicone"
	"github.com/tollgate-dev/tollgate/policies/gate"
	"github.com/tollgate-dev/tollgate/provider"
)

// Helicone drop-in: the same request sequences an application sends to
// Helicone, with the status, headers and body shape Helicone's worker
// answers them with. Each expectation names the Helicone source it comes
// from; where Tollgate adds something (a Helicone-Warning), the test says
// so.

// checkWarned runs Check and returns the decision with the warnings the
// call collected (what the processor sends in Helicone-Warning).
func (r *gateRig) checkWarned(t testing.TB, c call) (*gate.Decision, []helicone.Warning) {
	t.Helper()
	info := c.info()
	d, err := r.Check(context.Background(), info)
	if err != nil {
		t.Fatalf("Check(%v): %v", c.headers, err)
	}
	return d, info.Helicone.Warnings.List
}

// A policy Helicone cannot parse is not applied: the call goes through
// with no rate-limit header, however often it is sent.
// Helicone: worker/src/lib/rate-limit/bucketClient.ts (checkBucketRateLimit:
// an invalid policy is createErrorResult with failureMode "fail-open" and no
// policy, so allowed and no headers) and policyParser.ts (the grammar: u= is
// request or cents only, so u=user is not a policy).
func TestHeliconeMalformedPolicyGoesThrough(t *testing.T) {
	for _, policy := range []string{"100", "100;w=10", "abc;w=60", "0;w=60", "10;w=60;u=tokens", "10;w=60;u=user", "10;w=60;u=org", "10;w=60;x=1"} {
		g := newRig(t, memBackend().open(t))
		for i := range 3 {
			d, warns := g.checkWarned(t, limit(policy))
			if d.Answer != nil || len(d.ResponseHeaders) != 0 {
				t.Fatalf("%q call %d: answer %+v headers %v, want the call to go through untouched", policy, i, d.Answer, d.ResponseHeaders)
			}
			// Tollgate's own: the reason is reported in Helicone-Warning.
			if len(warns) != 1 || warns[0].Header != "Helicone-RateLimit-Policy" || !strings.Contains(warns[0].Reason, "is ignored") {
				t.Fatalf("%q: warnings %v", policy, warns)
			}
		}
		if got := g.metric(t, "tollgate_ratelimit_checks_total", "result", "ignored"); got != 3 {
			t.Fatalf("%q: ignored metric %v", policy, got)
		}
	}
}

// A policy segmented by user or property, on a call without that user or
// property, is not applied, and no bucket is shared between such calls;
// the response carries only Helicone-RateLimit-Policy.
// Helicone: worker/src/lib/rate-limit/segmentExtractor.ts
// (extractSegmentIdentifier: MISSING_USER_ID / MISSING_PROPERTY) and
// bucketClient.ts (createErrorResult, fail-open: allowed, headers
// {"Helicone-RateLimit-Policy": buildPolicyString(policy)}).
func TestHeliconeMissingSegmentGoesThrough(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		for _, tc := range []struct {
			policy, echo, with string
			anon, named        call
		}{
			{policy: "2;w=60;s=user", echo: "2;w=60;s=user", with: "Helicone-User-Id",
				anon: limit("2;w=60;s=user"), named: call{user: "u1", headers: limit("2;w=60;s=user").headers}},
			{policy: "2;w=60;u=cents;s=Team", echo: "2;w=60;u=cents;s=team", with: "Helicone-Property-Team",
				anon: limit("2;w=60;u=cents;s=Team"), named: limit("2;w=60;u=cents;s=Team").with("Helicone-Property-Team", "a")},
		} {
			g := newRig(t, be.open(t))
			for i := range 4 {
				d, warns := g.checkWarned(t, tc.anon)
				if d.Answer != nil {
					t.Fatalf("%s call %d without the segment: answered %d", tc.policy, i, d.Answer.Status)
				}
				if want := [][2]string{{"helicone-ratelimit-policy", tc.echo}}; len(d.ResponseHeaders) != 1 || d.ResponseHeaders[0] != want[0] {
					t.Fatalf("%s: headers %v, want %v", tc.policy, d.ResponseHeaders, want)
				}
				g.respond(d, 200, "A", 0.05)
				if len(warns) != 1 || !strings.Contains(warns[0].Reason, "no "+tc.with) {
					t.Fatalf("%s: warnings %v", tc.policy, warns)
				}
			}
			// The calls without the segment took nothing from any bucket.
			d, warns := g.checkWarned(t, tc.named)
			if d.Answer != nil || header(d.ResponseHeaders, "helicone-ratelimit-remaining") == "" || len(warns) != 0 {
				t.Fatalf("%s with the segment: %+v %v", tc.policy, d, warns)
			}
			if got, want := header(d.ResponseHeaders, "helicone-ratelimit-remaining"), map[bool]string{true: "1", false: "2"}[tc.named.user != ""]; got != want {
				t.Fatalf("%s with the segment: remaining %s, want %s", tc.policy, got, want)
			}
		}
	})
}

// The cache switches as Helicone reads them.
// Helicone: worker/src/lib/util/cache/cacheSettings.ts (getCacheState: a
// switch is on only when its value lowercased is "true"; getCacheSettings:
// shouldSaveToCache = enabled || save, shouldReadFromCache = enabled ||
// read) and worker/src/lib/HeliconeProxyRequest/ProxyForwarder.ts
// (Helicone-Cache: MISS only when the cache was read).
func TestHeliconeCacheSwitches(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		saveOnly := call{headers: map[string]string{"Helicone-Cache-Save": "true"}}
		readOnly := call{headers: map[string]string{"Helicone-Cache-Read": "TRUE"}}
		steps := []struct {
			name  string
			c     call
			want  string // cacheState
			reply string
		}{
			{"read only, nothing stored: a miss", readOnly, "MISS", "X"},
			{"read only does not save", readOnly, "MISS", ""},
			{"save only: no lookup, no Helicone-Cache header", saveOnly, "-", "A"},
			{"save only never reads, even when stored", saveOnly, "-", ""},
			{"read only finds what save only stored", readOnly, "HIT:0:A", ""},
			{"enabled in any case", cacheOn.with("Helicone-Cache-Enabled", "True"), "HIT:0:A", ""},
			{"a value other than true is off", call{headers: map[string]string{"Helicone-Cache-Enabled": "yes"}}, "-", ""},
			{"save false alone changes nothing", call{headers: map[string]string{"Helicone-Cache-Save": "false"}}, "-", ""},
		}
		g := newRig(t, be.open(t))
		for _, st := range steps {
			d, _ := g.checkWarned(t, st.c)
			if got := cacheState(d); got != st.want {
				t.Fatalf("%s: got %s, want %s", st.name, got, st.want)
			}
			if st.reply != "" {
				g.respond(d, 200, st.reply, 0)
			}
		}
	})
}

// Values Helicone reads as "off" are not a 400: the call goes on without
// the cache (or without that switch), and Tollgate says why.
// Helicone: cacheSettings.ts (a switch other than "true" is false; the
// bucket size is parseInt of the header, and a size below 1 or NaN leaves
// no slot to read or fill — cacheFunctions.ts getMaxCachedResponses — so
// the cache does nothing).
func TestHeliconeCacheValuesTolerated(t *testing.T) {
	tests := []struct {
		c     call
		want  string // cacheState
		warn  string // header of the one warning
		slots string // Helicone-Cache-Bucket-Max-Size in effect, checked by a full bucket
	}{
		{call{headers: map[string]string{"Helicone-Cache-Enabled": "yes"}}, "-", "Helicone-Cache-Enabled", ""},
		{call{headers: map[string]string{"Helicone-Cache-Enabled": "1"}}, "-", "Helicone-Cache-Enabled", ""},
		{cacheOn.with("Helicone-Cache-Save", "nope"), "MISS", "Helicone-Cache-Save", ""},
		{cacheOn.with("Helicone-Cache-Read", "maybe"), "MISS", "Helicone-Cache-Read", ""},
		{cacheOn.with("Helicone-Cache-Bucket-Max-Size", "0"), "-", "Helicone-Cache-Bucket-Max-Size", ""},
		{cacheOn.with("Helicone-Cache-Bucket-Max-Size", "two"), "-", "Helicone-Cache-Bucket-Max-Size", ""},
		{cacheOn.with("Helicone-Cache-Bucket-Max-Size", "-1"), "-", "Helicone-Cache-Bucket-Max-Size", ""},
		{cacheOn.with("Helicone-Cache-Bucket-Max-Size", "2.5"), "MISS", "Helicone-Cache-Bucket-Max-Size", "2"},
	}
	for _, tt := range tests {
		g := newRig(t, memBackend().open(t))
		d, warns := g.checkWarned(t, tt.c)
		if got := cacheState(d); got != tt.want {
			t.Errorf("%v: got %s, want %s", tt.c.headers, got, tt.want)
		}
		if len(warns) != 1 || warns[0].Header != tt.warn {
			t.Errorf("%v: warnings %v, want one on %s", tt.c.headers, warns, tt.warn)
		}
		if tt.slots != "" {
			// "2.5" is parseInt'd to 2: the key fills after two answers.
			g.respond(d, 200, "A", 0)
			g.respond(g.check(t, tt.c), 200, "B", 0)
			if got := cacheState(g.check(t, tt.c.with("Helicone-Cache-Bucket-Max-Size", tt.slots))); got != "HIT:0:A" {
				t.Errorf("%v: %s slots: %s", tt.c.headers, tt.slots, got)
			}
		}
	}
}

// A hit replays the provider's response headers a client reads — request
// ids and rate limits — and never a cookie or a credential.
// Helicone: worker/src/lib/util/cache/cacheFunctions.ts (saveToCache stores
// Object.fromEntries(response.headers); getCachedResponse replays them with
// Helicone-Cache, -Bucket-Idx and -Latency).
func TestHeliconeHitReplaysProviderHeaders(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		g := newRig(t, be.open(t))
		d := g.check(t, cacheOn)
		// As the processor offers them, when the response headers arrive.
		for _, h := range [][2]string{
			{"x-request-id", "req_abc"}, {"openai-processing-ms", "412"}, {"openai-organization", "org-x"},
			{"x-ratelimit-remaining-requests", "9999"}, {"x-ratelimit-remaining-tokens", "149000"},
			{"set-cookie", "__cf_bm=secret"}, {"authorization", "Bearer sk-leak"}, {"cf-ray", "1"}, {"server", "cloudflare"},
		} {
			d.NoteResponseHeader(h[0], h[1])
		}
		g.Complete(context.Background(), d, gate.ResponseInfo{RequestID: "orig", Status: 200, ContentType: "application/json",
			Body: []byte(`{"id":"chatcmpl-1"}`), Usage: provider.Usage{PromptTokens: 1}, LatencyMs: 10,
			// Anthropic's, handed over at the end instead.
			Headers: [][2]string{{"Request-Id", "req_ant"}, {"anthropic-ratelimit-requests-remaining", "49"}, {"x-api-key", "sk-ant"}}})
		hit := g.check(t, cacheOn)
		if hit.Hit == nil {
			t.Fatalf("not a hit: %+v", hit)
		}
		h := hit.Answer.Headers
		for name, want := range map[string]string{
			"x-request-id": "req_abc", "openai-processing-ms": "412", "openai-organization": "org-x",
			"x-ratelimit-remaining-requests": "9999", "x-ratelimit-remaining-tokens": "149000",
			"request-id": "req_ant", "anthropic-ratelimit-requests-remaining": "49",
			"helicone-cache": "HIT", "helicone-cache-latency": "10", "content-type": "application/json",
			"set-cookie": "", "authorization": "", "x-api-key": "", "cf-ray": "", "server": "",
		} {
			if got := header(h, name); got != want {
				t.Errorf("hit header %s = %q, want %q (all %v)", name, got, want, h)
			}
		}
	})
}

// A response that will not be cached keeps no headers for it.
func TestNoteResponseHeaderOnlyWhenCaching(t *testing.T) {
	g := newRig(t, memBackend().open(t))
	d := g.check(t, limit("10;w=60"))
	d.NoteResponseHeader("x-request-id", "r") // must not panic or keep anything
	var nilDecision *gate.Decision
	nilDecision.NoteResponseHeader("x-request-id", "r")
}
