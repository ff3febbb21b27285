package app

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseDownwardLabels(t *testing.T) {
	got, err := parseDownwardLabels([]byte("app=\"checkout\"\ntier=\"a \\\"b\\\"\"\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]string{"app": "checkout", "tier": `a "b"`}, got); d != "" {
		t.Errorf("labels (-want +got):\n%s", d)
	}
	if _, err := parseDownwardLabels([]byte("app=checkout\n")); err == nil || err.Error() != `line 1: want key="value", got "app=checkout"` {
		t.Errorf("unquoted value: %v", err)
	}
}
