package app

import (
	"strings"
	"testing"
	"time"
)

func TestParseDurationDays(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "0d": 0, "36h": 36 * time.Hour, "1.5s": 1500 * time.Millisecond} {
		if got, err := parseDuration(in); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"d", "1.5d", "-3d", "90 days", "x"} {
		if _, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) accepted", in)
		}
	}
}

// TestBodyRetention: the flag, or the URL's body_ttl_days alone; both set
// must agree, and bodies cannot outlive their rows.
func TestBodyRetention(t *testing.T) {
	day := 24 * time.Hour
	for _, c := range []struct {
		url             string
		flag, retention time.Duration
		want            time.Duration
		err             string
	}{
		{url: "clickhouse://h:9000/db", want: 0},
		{url: "clickhouse://h:9000/db?body_ttl_days=7", want: 7 * day},
		{url: "clickhouse://h:9000/db", flag: 30 * day, want: 30 * day},
		{url: "clickhouse://h:9000/db?body_ttl_days=30", flag: 30 * day, want: 30 * day},
		{url: "clickhouse://h:9000/db?body_ttl_days=7", flag: 30 * day, err: "disagree"},
		{url: "clickhouse://h:9000/db", flag: 30 * day, retention: 7 * day, err: "longer than retention"},
	} {
		cfg := &Config{ClickHouse: c.url, BodyRetention: Duration{c.flag}, Retention: Duration{c.retention}}
		got, err := bodyRetention(cfg)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s, flag %v: err %v, want %q", c.url, c.flag, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s, flag %v: %v, %v; want %v", c.url, c.flag, got, err, c.want)
		}
	}
}

// TestRetentionAtLeastADay: --retention and --body-retention under 24h
// (1m is a minute, not a month) are refused with the flag's name.
func TestRetentionAtLeastADay(t *testing.T) {
	for _, flag := range []string{"--retention", "--body-retention"} {
		for _, v := range []string{"1m", "23h", "0d"} {
			_, _, err := loadConfig("serve", []string{flag, v}, env(nil), false)
			if v == "0d" {
				if err != nil {
					t.Errorf("%s %s (off): %v", flag, v, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(flag, "--")) || !strings.Contains(err.Error(), "less than a day") {
				t.Errorf("%s %s: err %v, want a refusal naming the flag", flag, v, err)
			}
		}
		if _, _, err := loadConfig("serve", []string{flag, "1d"}, env(nil), false); err != nil {
			t.Errorf("%s 1d: %v", flag, err)
		}
	}
}
