package attempts

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/helicone"
)

// retryHeaders parses name, value pairs as the processor does.
func retryHeaders(kv ...string) helicone.RetryHeaders {
	var h helicone.Headers
	for i := 0; i+1 < len(kv); i += 2 {
		_ = h.Add(kv[i], kv[i+1])
	}
	return h.Retry
}

// The expectations follow Helicone's worker: HeliconeHeaders.ts
// (worker/src/lib/models/HeliconeHeaders.ts, getRetryHeaders: enabled is
// `value === "true"`, retries parseInt(num ?? "5"), factor parseFloat(?? "2"),
// minTimeout parseInt(?? "1000"), maxTimeout parseInt(?? "10000")) and
// callProviderWithRetry (worker/src/lib/clients/ProviderClient.ts: the
// callback bails once attempt >= retries, so Retry-Num counts attempts).
func TestParseRetryPolicy(t *testing.T) {
	defaults := func(num int) *RetryPolicy {
		return &RetryPolicy{Num: num, Factor: 2, MinTimeoutMs: 1000, MaxTimeoutMs: 10000}
	}
	tests := []struct {
		name     string
		headers  []string
		want     *RetryPolicy
		warnings []string
		wantErr  string
	}{
		{name: "absent", want: nil},
		{name: "disabled", headers: []string{helicone.RetryEnabled, "false", helicone.RetryNum, "junk"}, want: nil},
		{name: "Helicone defaults: five attempts", headers: []string{helicone.RetryEnabled, "true"}, want: defaults(5)},
		{name: "all set", headers: []string{helicone.RetryEnabled, "true", helicone.RetryNum, "3", helicone.RetryFactor, "1.5",
			helicone.RetryMinTimeout, "200", helicone.RetryMaxTimeout, "800"},
			want: &RetryPolicy{Num: 3, Factor: 1.5, MinTimeoutMs: 200, MaxTimeoutMs: 800}},
		// Helicone turns retries on for "true" only
		// (worker/src/lib/models/HeliconeHeaders.ts, getRetryHeaders);
		// Tollgate reads it as every switch: "true" in any case.
		{name: "yes is off", headers: []string{helicone.RetryEnabled, "yes"}, want: nil,
			warnings: []string{`Helicone-Retry-Enabled "yes" is not true or false; retries are off`}},
		{name: "1 is off", headers: []string{helicone.RetryEnabled, "1"}, want: nil,
			warnings: []string{`Helicone-Retry-Enabled "1" is not true or false; retries are off`}},
		{name: "TRUE is on", headers: []string{helicone.RetryEnabled, "TRUE"}, want: defaults(5)},
		{name: "FALSE is off, silently", headers: []string{helicone.RetryEnabled, "FALSE"}, want: nil},
		// Helicone takes any number of attempts; Tollgate caps them.
		{name: "over the cap", headers: []string{helicone.RetryEnabled, "true", helicone.RetryNum, "11"}, want: defaults(10),
			warnings: []string{`Helicone-Retry-Num "11" is capped at 10 attempts`}},
		{name: "zero is one attempt", headers: []string{helicone.RetryEnabled, "true", helicone.RetryNum, "0"}, want: defaults(1)},
		{name: "negative is one attempt", headers: []string{helicone.RetryEnabled, "true", helicone.RetryNum, "-3"}, want: defaults(1),
			warnings: []string{`Helicone-Retry-Num "-3" is below 1; one attempt, no retries`}},
		// parseInt("abc") is NaN: async-retry makes one attempt.
		{name: "NaN is one attempt", headers: []string{helicone.RetryEnabled, "true", helicone.RetryNum, "abc"}, want: defaults(1),
			warnings: []string{`Helicone-Retry-Num "abc" is not a number; one attempt, no retries`}},
		{name: "parseInt prefix", headers: []string{helicone.RetryEnabled, "true", helicone.RetryNum, "3.9"}, want: defaults(3),
			warnings: []string{`Helicone-Retry-Num "3.9" read as 3`}},
		{name: "factor below 1", headers: []string{helicone.RetryEnabled, "true", helicone.RetryFactor, "0.5"},
			want: &RetryPolicy{Num: 5, Factor: 0.5, MinTimeoutMs: 1000, MaxTimeoutMs: 10000}},
		{name: "factor not a number", headers: []string{helicone.RetryEnabled, "true", helicone.RetryFactor, "fast"}, want: defaults(5),
			warnings: []string{`Helicone-Retry-Factor "fast" is not a number; the default 2 applies`}},
		{name: "factor prefix", headers: []string{helicone.RetryEnabled, "true", helicone.RetryFactor, "1.5x"},
			want:     &RetryPolicy{Num: 5, Factor: 1.5, MinTimeoutMs: 1000, MaxTimeoutMs: 10000},
			warnings: []string{`Helicone-Retry-Factor "1.5x" read as 1.5`}},
		{name: "min not a number", headers: []string{helicone.RetryEnabled, "true", helicone.RetryMinTimeout, "soon"}, want: defaults(5),
			warnings: []string{`Helicone-Retry-Min-Timeout "soon" is not a number; the default 1000 ms applies`}},
		{name: "max over Envoy's", headers: []string{helicone.RetryEnabled, "true", helicone.RetryMaxTimeout, "120000"},
			want:     &RetryPolicy{Num: 5, Factor: 2, MinTimeoutMs: 1000, MaxTimeoutMs: 120000},
			warnings: []string{`Helicone-Retry-Max-Timeout "120000" is capped at 60000 ms, Envoy's longest rate-limited back-off`}},
		// node-retry throws "minTimeout is greater than maxTimeout": the
		// call fails before reaching the provider.
		{name: "max below min", headers: []string{helicone.RetryEnabled, "true", helicone.RetryMinTimeout, "5000", helicone.RetryMaxTimeout, "100"},
			wantErr: "Helicone-Retry-Max-Timeout (100 ms) must not be below Helicone-Retry-Min-Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w helicone.Warnings
			got, err := ParseRetryPolicy(retryHeaders(tt.headers...), &w)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if _, ok := err.(*helicone.BadHeaderError); !ok {
					t.Errorf("err is %T, want *helicone.BadHeaderError (a 400)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("policy (-want +got):\n%s", diff)
			}
			var warnings []string
			for _, x := range w.List {
				warnings = append(warnings, x.String())
			}
			if diff := cmp.Diff(tt.warnings, warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRetryPolicyString(t *testing.T) {
	p := RetryPolicy{Num: 5, Factor: 2, MinTimeoutMs: 1000, MaxTimeoutMs: 10000}
	if got, want := p.String(), "num=5 factor=2 min_timeout_ms=1000 max_timeout_ms=10000"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// Helicone's waits are node-retry's timeouts (async-retry passes the
// options through; retry/lib/retry.js, createTimeout and timeouts):
// round(rand[1,2) × max(minTimeout, 1) × factor^k), capped at maxTimeout,
// one per retry, sorted ascending. Waits are their lower bounds (rand = 1).
func TestRetryPolicyWaits(t *testing.T) {
	s := time.Second
	tests := []struct {
		name string
		p    RetryPolicy
		want []time.Duration
	}{
		{"defaults: four retries", RetryPolicy{Num: 5, Factor: 2, MinTimeoutMs: 1000, MaxTimeoutMs: 10000}, []time.Duration{s, 2 * s, 4 * s, 8 * s}},
		{"capped at max", RetryPolicy{Num: 7, Factor: 2, MinTimeoutMs: 1000, MaxTimeoutMs: 10000}, []time.Duration{s, 2 * s, 4 * s, 8 * s, 10 * s, 10 * s}},
		{"factor 3", RetryPolicy{Num: 4, Factor: 3, MinTimeoutMs: 500, MaxTimeoutMs: 60000}, []time.Duration{s / 2, 3 * s / 2, 9 * s / 2}},
		// Sorted: a factor below 1 gives the same waits, growing.
		{"factor below 1", RetryPolicy{Num: 4, Factor: 0.5, MinTimeoutMs: 4000, MaxTimeoutMs: 10000}, []time.Duration{s, 2 * s, 4 * s}},
		{"factor 0", RetryPolicy{Num: 4, Factor: 0, MinTimeoutMs: 1000, MaxTimeoutMs: 10000}, []time.Duration{0, 0, s}},
		{"min 0 is 1 ms", RetryPolicy{Num: 2, Factor: 2, MinTimeoutMs: 0, MaxTimeoutMs: 10000}, []time.Duration{time.Millisecond}},
		{"one attempt", RetryPolicy{Num: 1, Factor: 2, MinTimeoutMs: 1000, MaxTimeoutMs: 10000}, []time.Duration{}},
	}
	for _, tt := range tests {
		if got := tt.p.Waits(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: waits %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBackOffSeconds(t *testing.T) {
	p := RetryPolicy{Num: 5, Factor: 2, MinTimeoutMs: 1500, MaxTimeoutMs: 120000}
	var got []int
	for n := 1; ; n++ {
		secs, ok := p.BackOffSeconds(n)
		if !ok {
			break
		}
		got = append(got, secs)
	}
	// 1.5, 3, 6, 12 s: rounded up to whole seconds (never sooner than Helicone).
	if want := []int{2, 3, 6, 12}; !slices.Equal(got, want) {
		t.Errorf("back-off %v, want %v", got, want)
	}
	if secs, _ := (RetryPolicy{Num: 2, Factor: 2, MinTimeoutMs: 100, MaxTimeoutMs: 300}).BackOffSeconds(1); secs != 1 {
		t.Errorf("a sub-second wait gave %d s, want 1 (Envoy ignores 0)", secs)
	}
	if secs, _ := (RetryPolicy{Num: 3, Factor: 10, MinTimeoutMs: 50000, MaxTimeoutMs: 500000}).BackOffSeconds(2); secs != 60 {
		t.Errorf("a long wait gave %d s, want MaxBackOff", secs)
	}
	if _, ok := p.BackOffSeconds(0); ok {
		t.Error("attempt 0 has a back-off")
	}
}

// JavaScript's parseInt(v, 10) and parseFloat(v).
func TestParseIntAndFloatAsJavaScript(t *testing.T) {
	for _, tc := range []struct {
		in        string
		n         int64
		ok, whole bool
	}{
		{"5", 5, true, true}, {"+5", 5, true, true}, {"-2", -2, true, true}, {"3abc", 3, true, false},
		{"3.9", 3, true, false}, {"0x10", 0, true, false}, {"abc", 0, false, false}, {"-", 0, false, false},
		{"99999999999999999999", 1 << 40, true, true},
	} {
		n, ok, whole := parseInt(tc.in)
		if ok != tc.ok || whole != tc.whole || (ok && n < tc.n) || (ok && tc.n < 1<<40 && n != tc.n) {
			t.Errorf("parseInt(%q) = %d %v %v, want %d %v %v", tc.in, n, ok, whole, tc.n, tc.ok, tc.whole)
		}
	}
	for _, tc := range []struct {
		in        string
		f         float64
		ok, whole bool
	}{
		{"2", 2, true, true}, {"1.5", 1.5, true, true}, {".5", 0.5, true, true}, {"5.", 5, true, true},
		{"1e1", 10, true, true}, {"1e", 1, true, false}, {"1.5x", 1.5, true, false}, {"-0.5", -0.5, true, true},
		{"Infinity", 0, true, true}, {"x", 0, false, false}, {".", 0, false, false},
	} {
		f, ok, whole := parseFloat(tc.in)
		if ok != tc.ok || whole != tc.whole || (ok && tc.in != "Infinity" && f != tc.f) {
			t.Errorf("parseFloat(%q) = %v %v %v, want %v %v %v", tc.in, f, ok, whole, tc.f, tc.ok, tc.whole)
		}
	}
}

func TestEnvoyRetryHeaders(t *testing.T) {
	got := EnvoyRetry{MaxRetries: 4, OnStatusCodes: RetryStatusCodes, OnConnectError: true}.Headers()
	want := [][2]string{
		{"x-envoy-retriable-status-codes", "429,500,522"},
		{"x-envoy-retry-on", "retriable-status-codes,reset,connect-failure"},
		{"x-envoy-max-retries", "4"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	got = EnvoyRetry{MaxRetries: 2, OnHeader: "x-tollgate-fallback-next", OnConnectError: true}.Headers()
	want = [][2]string{
		{"x-envoy-retriable-header-names", "x-tollgate-fallback-next"},
		{"x-envoy-retry-on", "retriable-headers,reset,connect-failure"},
		{"x-envoy-max-retries", "2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}

// Whatever a client sends, a policy stays within the caps: one to
// MaxAttempts attempts, waits Envoy honours.
func FuzzParseRetryPolicy(f *testing.F) {
	f.Add("true", "5", "2", "1000", "10000")
	f.Add("true", "3abc", "0.5", "-1", "1e9")
	f.Add("true", "99999999999999999999", "Infinity", "NaN", "")
	f.Add("TRUE", "", "", "", "")
	f.Fuzz(func(t *testing.T, enabled, num, factor, minT, maxT string) {
		var w helicone.Warnings
		p, err := ParseRetryPolicy(helicone.RetryHeaders{Enabled: enabled, Num: num, Factor: factor, MinTimeout: minT, MaxTimeout: maxT}, &w)
		if err != nil || p == nil {
			return
		}
		if p.Num < 1 || p.Num > MaxAttempts {
			t.Fatalf("%d attempts", p.Num)
		}
		for n := 1; n <= p.Retries(); n++ {
			secs, ok := p.BackOffSeconds(n)
			if !ok || secs < 1 || time.Duration(secs)*time.Second > MaxBackOff {
				t.Fatalf("back-off after attempt %d: %d s (%v)", n, secs, ok)
			}
		}
		if _, ok := p.BackOffSeconds(p.Num); ok {
			t.Fatal("a back-off after the last attempt")
		}
	})
}
