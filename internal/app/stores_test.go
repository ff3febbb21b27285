package app

import (
	"strings"
	"testing"
	"time"
)

// The store timeouts default to the gate's own (50 ms on the request path,
// 250 ms after the reply); a value no round trip could meet, one Envoy
// would not wait for, or one past the shutdown bound is an error naming
// the setting.
func TestConfigRedisTimeouts(t *testing.T) {
	cfg, _, err := loadConfig("serve", nil, env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RedisTimeout.Duration != 50*time.Millisecond || cfg.RedisWriteTimeout.Duration != 250*time.Millisecond {
		t.Errorf("defaults %v, %v; want 50ms, 250ms", cfg.RedisTimeout, cfg.RedisWriteTimeout)
	}
	cfg, _, err = loadConfig("dev", []string{"--message-timeout", "10s", "--redis-timeout", "5s", "--redis-write-timeout", "5s"}, env(nil), true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RedisTimeout.Duration != 5*time.Second || cfg.RedisWriteTimeout.Duration != 5*time.Second {
		t.Errorf("got %v, %v; want 5s, 5s", cfg.RedisTimeout, cfg.RedisWriteTimeout)
	}
	bad := map[string][]string{
		"redis-timeout":          {"--redis-timeout", "0"},
		"redis-write-timeout":    {"--redis-write-timeout", "500us"},
		"message-timeout":        {"--redis-timeout", "2s"}, // not below the default message-timeout
		"shutdown-timeout":       {"--shutdown-timeout", "1s", "--redis-write-timeout", "2s"},
		"TOLLGATE_REDIS_TIMEOUT": nil,
	}
	for want, args := range bad {
		e := env(nil)
		if args == nil {
			e = env(map[string]string{"TOLLGATE_REDIS_TIMEOUT": "soon"})
		}
		_, _, err := loadConfig("serve", args, e, false)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got %v, want an error naming %s", args, err, want)
		}
	}
}
