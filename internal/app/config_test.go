package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestConfigPrecedenceFlagEnvFileDefault(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tollgate.yaml")
	os.WriteFile(file, []byte(`
grpc-listen: "127.0.0.1:6000"
http-listen: "127.0.0.1:6001"
log-level: warn
drain-delay: 7s
allowed-target-origins: ["https://api.together.xyz"]
prices:
  openai:
    my-model: {input: 1, output: 2}
`), 0o644)
	cfg, _, err := loadConfig("serve", []string{"--config", file, "--http-listen", "127.0.0.1:7001"},
		env(map[string]string{"TOLLGATE_GRPC_LISTEN": "127.0.0.1:8000", "TOLLGATE_HTTP_LISTEN": "127.0.0.1:8001"}), false)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"flag beats env", cfg.HTTPListen, "127.0.0.1:7001"},
		{"env beats file", cfg.GRPCListen, "127.0.0.1:8000"},
		{"file beats default", cfg.LogLevel, "warn"},
		{"default", cfg.Listen, ":10000"},
		{"file duration", cfg.DrainDelay.String(), "7s"},
		{"file list", strings.Join(cfg.AllowedTargets, ","), "https://api.together.xyz"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q want %q", c.name, c.got, c.want)
		}
	}
	if cfg.Prices["openai"]["my-model"].Output != 2 {
		t.Errorf("prices from file: %+v", cfg.Prices)
	}
}

func TestConfigDevDefaultsDoNotWaitToDrain(t *testing.T) {
	cfg, _, err := loadConfig("dev", nil, env(nil), true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DrainDelay.Duration != 0 || cfg.RouteTimeout.Duration != 600*time.Second {
		t.Fatalf("dev defaults %+v", cfg)
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{[]string{"--upstream-openai", "api.openai.com", "--log-level", "loud"}, nil, []string{"upstream-openai", "log-level"}},
		{[]string{"--redis", "http://x"}, nil, []string{"redis"}},
		{[]string{"--clickhouse", "localhost:9000"}, nil, []string{"clickhouse"}},
		{nil, map[string]string{"TOLLGATE_DRAIN_DELAY": "soon"}, []string{"TOLLGATE_DRAIN_DELAY"}},
		{[]string{"--max-request-body", "0"}, nil, []string{"max-request-body"}},
		{[]string{"--prompt-seen-max-ids", "-1", "--prompt-seen-max-versions", "0", "--prompt-seen-ttl", "30s"}, nil,
			[]string{"prompt-seen-max-ids", "prompt-seen-max-versions", "prompt-seen-ttl"}},
		{[]string{"extra"}, nil, []string{"extra"}},
	}
	for _, tt := range tests {
		_, _, err := loadConfig("serve", tt.args, env(tt.env), false)
		if err == nil {
			t.Errorf("%v %v: want an error", tt.args, tt.env)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not name %s", tt.args, err, w)
			}
		}
	}
}

func TestConfigFileUnknownKeyIsAnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(file, []byte("grpc-listne: x\n"), 0o644)
	_, _, err := loadConfig("serve", []string{"--config=" + file}, env(nil), false)
	if err == nil || !strings.Contains(err.Error(), "grpc-listne") || !strings.Contains(err.Error(), file) {
		t.Fatalf("got %v", err)
	}
}

// The seen-prompt settings reach the prompt library; 0 ids turns seen
// versioning off (the library's own 0 would be its default).
func TestConfigPromptSeenSettings(t *testing.T) {
	cfg, _, err := loadConfig("serve", nil, env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	if o := promptLibraryOptions(cfg, nil, nil, nil); o.MaxSeenPrompts != 1000 || o.MaxSeenVersions != 1000 || o.SeenTTL != 30*24*time.Hour {
		t.Errorf("defaults %+v", o)
	}
	cfg, _, err = loadConfig("serve", []string{"--prompt-seen-max-ids", "0", "--prompt-seen-max-versions", "5", "--prompt-seen-ttl", "2h"}, env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	if o := promptLibraryOptions(cfg, nil, nil, nil); o.MaxSeenPrompts >= 0 || o.MaxSeenVersions != 5 || o.SeenTTL != 2*time.Hour {
		t.Errorf("set %+v", o)
	}
}

// --log-fsync-interval reaches the ClickHouse writer: 1s by default, 0 an
// fsync per group write, a negative value an error.
func TestConfigLogFsyncInterval(t *testing.T) {
	for _, tt := range []struct {
		args      []string
		interval  time.Duration
		syncEvery bool
	}{
		{nil, time.Second, false},
		{[]string{"--log-fsync-interval", "250ms"}, 250 * time.Millisecond, false},
		{[]string{"--log-fsync-interval", "0"}, 0, true},
	} {
		cfg, _, err := loadConfig("serve", tt.args, env(nil), false)
		if err != nil {
			t.Fatal(err)
		}
		if o := writerOptions(cfg); o.WALFsyncInterval != tt.interval || o.WALSyncEveryWrite != tt.syncEvery {
			t.Errorf("%v: interval %v, every write %v", tt.args, o.WALFsyncInterval, o.WALSyncEveryWrite)
		}
	}
	if _, _, err := loadConfig("serve", []string{"--log-fsync-interval", "-1s"}, env(nil), false); err == nil ||
		!strings.Contains(err.Error(), "log-fsync-interval") {
		t.Errorf("negative interval: %v", err)
	}
}
