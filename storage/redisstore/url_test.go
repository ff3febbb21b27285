package redisstore

import (
	"slices"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url     string
		mode    Mode
		addrs   []string // single: the one address; cluster: seeds; sentinel: sentinels
		db      int
		user    string
		pass    string
		master  string
		sentPw  string
		tls     bool
		wantErr string
	}{
		{url: "redis://127.0.0.1:6380", mode: ModeSingle, addrs: []string{"127.0.0.1:6380"}},
		{url: "redis://localhost", mode: ModeSingle, addrs: []string{"localhost:6379"}},
		{url: "rediss://u:p%40ss@cache.example:6380/3?dial_timeout=2s", mode: ModeSingle, addrs: []string{"cache.example:6380"},
			db: 3, user: "u", pass: "p@ss", tls: true},
		{url: "redis+cluster://a:7000,b:7001,c", mode: ModeCluster, addrs: []string{"a:7000", "b:7001", "c:6379"}},
		{url: "redis://a:7000,b:7001", mode: ModeCluster, addrs: []string{"a:7000", "b:7001"}},
		{url: "redis://:secret@a:7000?cluster=true", mode: ModeCluster, addrs: []string{"a:7000"}, pass: "secret"},
		{url: "rediss+cluster://a:7000/0?cluster=true&pool_size=5", mode: ModeCluster, addrs: []string{"a:7000"}, tls: true},
		{url: "redis+sentinel://u:pw@s1,s2:26380/2?master=mymaster&sentinel_password=spw", mode: ModeSentinel,
			addrs: []string{"s1:26379", "s2:26380"}, db: 2, user: "u", pass: "pw", master: "mymaster", sentPw: "spw"},
		{url: "redis://s1:26379?master_name=m", mode: ModeSentinel, addrs: []string{"s1:26379"}, master: "m"},
		{url: "unix:///run/redis.sock?db=2", mode: ModeSingle, addrs: []string{"/run/redis.sock"}, db: 2},
		{url: "http://x", wantErr: "unknown scheme"},
		{url: "redis+ring://x", wantErr: "unknown scheme"},
		{url: "localhost:6379", wantErr: "want a redis://"},
		{url: "redis+sentinel://s1", wantErr: "needs ?master"},
		{url: "redis+cluster://a/3", wantErr: "only database 0"},
		{url: "redis+cluster://a?master=m", wantErr: "not a Cluster option"},
		{url: "redis://a?cluster=perhaps", wantErr: "cluster="},
		{url: "redis://a?bogus=1", wantErr: "bogus"},
		{url: "redis://", wantErr: "no host"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			cfg, err := ParseURL(tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Mode != tt.mode {
				t.Fatalf("mode %s, want %s", cfg.Mode, tt.mode)
			}
			var addrs []string
			var db, dialRetries, retries int
			var user, pass string
			var tls, ctxTimeout bool
			switch cfg.Mode {
			case ModeSingle:
				o := cfg.Single
				addrs, db, user, pass, tls = []string{o.Addr}, o.DB, o.Username, o.Password, o.TLSConfig != nil
				dialRetries, retries, ctxTimeout = o.DialerRetries, o.MaxRetries, o.ContextTimeoutEnabled
			case ModeCluster:
				o := cfg.Cluster
				addrs, user, pass, tls = o.Addrs, o.Username, o.Password, o.TLSConfig != nil
				dialRetries, retries, ctxTimeout = o.DialerRetries, o.MaxRetries, o.ContextTimeoutEnabled
			case ModeSentinel:
				o := cfg.Sentinel
				addrs, db, user, pass, tls = o.SentinelAddrs, o.DB, o.Username, o.Password, o.TLSConfig != nil
				dialRetries, retries, ctxTimeout = o.DialerRetries, o.MaxRetries, o.ContextTimeoutEnabled
				if o.MasterName != tt.master || o.SentinelPassword != tt.sentPw {
					t.Fatalf("master %q sentinel password %q", o.MasterName, o.SentinelPassword)
				}
			}
			if !slices.Equal(addrs, tt.addrs) || db != tt.db || user != tt.user || pass != tt.pass || tls != tt.tls {
				t.Fatalf("addrs %v db %d user %q pass %q tls %v", addrs, db, user, pass, tls)
			}
			if !ctxTimeout || dialRetries != 1 || retries != -1 {
				t.Fatalf("request-path defaults not applied: ctx timeout %v, dialer retries %d, retries %d", ctxTimeout, dialRetries, retries)
			}
		})
	}
	// Explicit settings win over the request-path defaults.
	cfg, err := ParseURL("redis://h?max_retries=4")
	if err != nil || cfg.Single.MaxRetries != 4 {
		t.Fatalf("max_retries=4: %+v, %v", cfg, err)
	}
}

func TestPrefixMustNotMoveTheHashTag(t *testing.T) {
	c, err := NewClient("redis://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := New(c, Options{Prefix: "a{b}:"}); err == nil {
		t.Fatal("a prefix with braces was accepted")
	}
}

// TestMaxInFlightURL: max_in_flight reaches the Store's coalescer in every
// URL form, go-redis never sees it, and a bad value is refused.
func TestMaxInFlightURL(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want int
	}{
		{"redis://h", 0},
		{"redis://h/2?max_in_flight=8&pool_size=5", 8},
		{"redis://h?max_in_flight=off", -1},
		{"redis+cluster://a:7000,b:7001?max_in_flight=2", 2},
		{"redis+sentinel://s1?master=m&max_in_flight=-1", -1},
		{"unix:///run/redis.sock?db=2&max_in_flight=16", 16},
	} {
		cfg, err := ParseURL(tt.url)
		if err != nil || cfg.MaxInFlight != tt.want {
			t.Errorf("%s: max in flight %v (%v), want %d", tt.url, cfg, err, tt.want)
		}
	}
	for _, bad := range []string{"redis://h?max_in_flight=0", "redis://h?max_in_flight=many", "unix:///s?max_in_flight=2000"} {
		if _, err := ParseURL(bad); err == nil || !strings.Contains(err.Error(), "max_in_flight") {
			t.Errorf("%s: err %v", bad, err)
		}
	}
	s, err := Open("redis://127.0.0.1:1?max_in_flight=off", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.q != nil {
		t.Error("max_in_flight=off left the coalescer on")
	}
	s2, err := Open("redis://127.0.0.1:1?max_in_flight=3", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.q == nil || s2.q.maxBusy != 3 {
		t.Errorf("max_in_flight=3: coalescer %+v", s2.q)
	}
}
