package app

import (
	"strings"
	"testing"
)

// --clickhouse-cluster (or its variable) reaches every user of the
// --clickhouse URL as its cluster parameter; a bad name is refused.
func TestClickHouseClusterSetting(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, _, err := loadConfig("serve", []string{"--clickhouse", "clickhouse://h:9000/tg", "--clickhouse-cluster", "prod"}, env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClickHouse != "clickhouse://h:9000/tg?cluster=prod" {
		t.Errorf("--clickhouse became %q", cfg.ClickHouse)
	}
	cfg, _, err = loadConfig("serve", nil, env(map[string]string{
		"TOLLGATE_CLICKHOUSE": "clickhouse://h:9000/tg", "TOLLGATE_CLICKHOUSE_CLUSTER": "prod"}), false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClickHouse != "clickhouse://h:9000/tg?cluster=prod" {
		t.Errorf("from the environment, --clickhouse became %q", cfg.ClickHouse)
	}
	cfg, _, err = loadConfig("serve", []string{"--clickhouse", "clickhouse://h:9000/tg"}, env(nil), false)
	if err != nil || cfg.ClickHouse != "clickhouse://h:9000/tg" {
		t.Errorf("without a cluster: %q, %v", cfg.ClickHouse, err)
	}
	if _, _, err := loadConfig("serve", []string{"--clickhouse", "clickhouse://h:9000/tg", "--clickhouse-cluster", "a-b"}, env(nil), false); err == nil ||
		!strings.Contains(err.Error(), "clickhouse-cluster") {
		t.Errorf("a bad cluster name: %v", err)
	}
}
