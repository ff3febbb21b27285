package cachecontrol

import (
	"testing"
	"time"
)

func TestParseCacheControl(t *testing.T) {
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"no-cache", 0, false},
		{"max-age=60", 60 * time.Second, true},
		{"Max-Age = 60", 60 * time.Second, true}, // lenient about spaces around '='
		{"MAX-AGE=60", 60 * time.Second, true},
		{"max-age=60, s-maxage=5", 5 * time.Second, true},
		{"s-maxage=5,max-age=60", 5 * time.Second, true},
		{"s-maxage=abc, max-age=7", 7 * time.Second, true},
		{`max-age="30"`, 30 * time.Second, true},
		{"max-age=0", 0, true},
		{"max-age=-1", 0, false},
		{"max-age=", 0, false},
		{"max-age=1.5", 0, false},
		{"max-age=10, max-age=20", 10 * time.Second, true},
		{"max-age=99999999999999999999999", MaxTTL, true},
		{"max-age=31536001", MaxTTL, true},
		{"max-age=31536000", MaxTTL, true},
		{`private="a, max-age=9", max-age=5`, 5 * time.Second, true},
		{`foo=", s-maxage=9 ,", max-age=5`, 5 * time.Second, true},
		{`public, max-age=3600`, time.Hour, true},
		{`max-age=60 , no-store`, 60 * time.Second, true},
		{`max-age="unterminated`, 0, false},
	}
	for _, tt := range tests {
		got, ok := Parse(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseCacheControl(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// FuzzParseCacheControl: never panics, stays within [0, MaxTTL] in
// whole seconds, reports nothing for a value without either directive, and
// adding an unrelated directive in front changes nothing.
func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60", "s-maxage=5, max-age=60", `max-age="30"`, "no-store",
		"max-age=99999999999999999999", `private="x, max-age=1", max-age=2`, "max-age=,", `"`, "=,="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ttl, ok := Parse(s)
		if ttl < 0 || ttl > MaxTTL || ttl%time.Second != 0 {
			t.Fatalf("%q -> %v", s, ttl)
		}
		if !ok && ttl != 0 {
			t.Fatalf("%q -> %v without ok", s, ttl)
		}
		if ttl2, ok2 := Parse("no-cache, " + s); ttl2 != ttl || ok2 != ok {
			t.Fatalf("prefixing no-cache changed %q: %v,%v -> %v,%v", s, ttl, ok, ttl2, ok2)
		}
	})
}
