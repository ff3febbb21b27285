package attempts

import (
	"strings"
	"testing"

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

func TestParseRetryPolicy(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		want    *RetryPolicy
		wantErr string
	}{
		{name: "absent", want: nil},
		{name: "disabled", headers: []string{helicone.RetryEnabled, "false", helicone.RetryNum, "junk"}, want: nil},
		{name: "Helicone defaults", headers: []string{helicone.RetryEnabled, "true"},
			want: &RetryPolicy{Num: 5, Factor: 2, MinTimeoutMs: 1000, MaxTimeoutMs: 10000}},
		{name: "all set", headers: []string{helicone.RetryEnabled, "1", helicone.RetryNum, "3", helicone.RetryFactor, "1.5",
			helicone.RetryMinTimeout, "200", helicone.RetryMaxTimeout, "800"},
			want: &RetryPolicy{Num: 3, Factor: 1.5, MinTimeoutMs: 200, MaxTimeoutMs: 800}},
		{name: "bad switch", headers: []string{helicone.RetryEnabled, "yes"}, wantErr: "Helicone-Retry-Enabled must be true or false"},
		{name: "too many", headers: []string{helicone.RetryEnabled, "true", helicone.RetryNum, "11"}, wantErr: "Helicone-Retry-Num must be an integer from 0 to 10"},
		{name: "bad factor", headers: []string{helicone.RetryEnabled, "true", helicone.RetryFactor, "0.5"}, wantErr: "Helicone-Retry-Factor must be a number from 1 to 10"},
		{name: "max below min", headers: []string{helicone.RetryEnabled, "true", helicone.RetryMinTimeout, "5000", helicone.RetryMaxTimeout, "100"},
			wantErr: "Helicone-Retry-Max-Timeout (100 ms) must not be below Helicone-Retry-Min-Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRetryPolicy(retryHeaders(tt.headers...))
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
		})
	}
}

func TestRetryPolicyString(t *testing.T) {
	p := RetryPolicy{Num: 5, Factor: 2, MinTimeoutMs: 1000, MaxTimeoutMs: 10000}
	if got, want := p.String(), "num=5 factor=2 min_timeout_ms=1000 max_timeout_ms=10000"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestEnvoyRetryHeaders(t *testing.T) {
	got := EnvoyRetry{MaxRetries: 5, OnStatusCodes: RetriableStatusCodes, OnConnectError: true}.Headers()
	want := [][2]string{
		{"x-envoy-retriable-status-codes", "429,500,502,503,504"},
		{"x-envoy-retry-on", "retriable-status-codes,reset,connect-failure"},
		{"x-envoy-max-retries", "5"},
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
