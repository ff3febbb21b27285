package ratelimit

import (
	"strings"
	"testing"
	"time"
)

func TestParseRateLimitPolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    Policy
		norm    string
		wantErr string // substring of the error; "" = must parse
	}{
		{in: "100;w=60", want: Policy{100, 60, UnitRequest, ""}, norm: "100;w=60;u=request"},
		{in: " 1000 ; W=3600 ; U=Cents ; S=User ", want: Policy{1000, 3600, UnitCents, SegmentUser}, norm: "1000;w=3600;u=cents;s=user"},
		{in: "5;w=86400;s=Organization-Id", want: Policy{5, 86400, UnitRequest, "organization-id"}, norm: "5;w=86400;u=request;s=organization-id"},
		{in: "10;w=60;u=user", want: Policy{10, 60, UnitRequest, SegmentUser}, norm: "10;w=60;u=request;s=user"},
		{in: "10;w=60;u=org", want: Policy{10, 60, UnitRequest, SegmentOrg}, norm: "10;w=60;u=request"},
		{in: "10;w=60;u=requests;", want: Policy{10, 60, UnitRequest, ""}, norm: "10;w=60;u=request"},
		{in: "1;w=31536000", want: Policy{1, 31536000, UnitRequest, ""}, norm: "1;w=31536000;u=request"},
		{in: "", wantErr: "missing quota"},
		{in: "w=60", wantErr: "quota must be"},
		{in: "0;w=60", wantErr: "quota must be"},
		{in: "-1;w=60", wantErr: "quota must be"},
		{in: "1.5;w=60", wantErr: "quota must be"},
		{in: "1e3;w=60", wantErr: "quota must be"},
		{in: "10", wantErr: "missing window"},
		{in: "10;w=59", wantErr: "window w= must be"},
		{in: "10;w=31536001", wantErr: "window w= must be"},
		{in: "10;w=1m", wantErr: "window w= must be"},
		{in: "10;w=60;w=120", wantErr: "w= given twice"},
		{in: "10;w=60;u=tokens", wantErr: "unit u= must be"},
		{in: "10;w=60;u=user;s=user", wantErr: "segment given twice"},
		{in: "10;w=60;s=user;u=org", wantErr: "conflicts"},
		{in: "10;w=60;s=a b", wantErr: "segment s= must be"},
		{in: "10;w=60;x=1", wantErr: "unknown parameter"},
		{in: "10;w=60;u", wantErr: "want key=value"},
		{in: "10;w=60, 20;w=60", wantErr: "window w= must be"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.norm {
				t.Fatalf("String() = %q, want %q", s, tt.norm)
			}
		})
	}
}

// Helicone's grammar has no u=user / u=org: such a policy is not applied.
// Helicone: worker/src/lib/rate-limit/policyParser.ts (u=(request|cents)).
func TestParseHeaderRejectsSegmentAsUnit(t *testing.T) {
	for _, v := range []string{"10;w=60;u=user", "10;w=60; U = Org ", "10;w=60;s=team;u=user"} {
		if p, err := ParseHeader(v); err == nil || !strings.Contains(err.Error(), "not a unit") {
			t.Errorf("ParseHeader(%q) = %+v, %v; want an error", v, p, err)
		}
	}
	if p, err := ParseHeader("10;w=60;u=cents;s=user"); err != nil || p.HeaderValue() != "10;w=60;u=cents;s=user" {
		t.Errorf("cents per user: %+v, %v", p, err)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	p := Policy{Quota: 10, Window: 60, Unit: UnitRequest}
	h := p.Headers(BucketOutcome{Allowed: true, Remaining: 3.7})
	want := [][2]string{
		{"helicone-ratelimit-limit", "10"},
		{"helicone-ratelimit-remaining", "3"},
		{"helicone-ratelimit-policy", "10;w=60"},
		// Helicone: BucketRateLimiterDO.ts, resetSeconds = until full.
		{"helicone-ratelimit-reset", "38"},
	}
	if len(h) != len(want) {
		t.Fatalf("headers %v", h)
	}
	for i := range want {
		if h[i] != want[i] {
			t.Fatalf("header %d = %v, want %v", i, h[i], want[i])
		}
	}
	// A full bucket has no Reset.
	if h = p.Headers(BucketOutcome{Allowed: true, Remaining: 10}); len(h) != 3 {
		t.Fatalf("full bucket headers %v", h)
	}
	// A negative cents balance reports 0 remaining; Reset counts the debt.
	h = Policy{Quota: 10, Window: 60, Unit: UnitCents}.Headers(BucketOutcome{Remaining: -4, Wait: time.Millisecond})
	if h[1][1] != "0" || h[2][1] != "10;w=60;u=cents" || h[3] != [2]string{"helicone-ratelimit-reset", "84"} {
		t.Fatalf("cents headers %v", h)
	}
}

// FuzzParseRateLimitPolicy: the parser never panics, accepts only policies
// inside the bounds, and its normalized form parses back to the same
// policy, also upper-cased (the grammar is case-insensitive).
func FuzzParseRateLimitPolicy(f *testing.F) {
	for _, s := range []string{"100;w=60", "1000;w=3600;u=cents;s=user", "5;w=86400;s=org-id", "10;w=60;u=user",
		"10;w=60;u=org", "0;w=60", "10;w=59", "10;w=60;;", "10;w=60;s=", ";;;", "10;w=60;u=cents;s=a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		if p.Quota < 1 || p.Quota > MaxQuota || p.Window < MinWindow || p.Window > MaxWindow {
			t.Fatalf("%q parsed out of bounds: %+v", s, p)
		}
		if p.Unit != UnitRequest && p.Unit != UnitCents {
			t.Fatalf("%q: unit %q", s, p.Unit)
		}
		// The header's parser is Parse without u=user / u=org.
		if h, err := ParseHeader(s); err == nil && h != p {
			t.Fatalf("ParseHeader(%q) = %+v, Parse = %+v", s, h, p)
		}
		if hv, err := Parse(p.HeaderValue()); err != nil || hv != p {
			t.Fatalf("%q -> HeaderValue %q -> %+v, %v", s, p.HeaderValue(), hv, err)
		}
		q, err := Parse(p.String())
		if err != nil || q != p {
			t.Fatalf("%q -> %q -> %+v, %v; want %+v", s, p.String(), q, err, p)
		}
		if isASCII(s) {
			u, err := Parse(strings.ToUpper(s))
			if err != nil || u != p {
				t.Fatalf("upper-case %q -> %+v, %v; want %+v", s, u, err, p)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
