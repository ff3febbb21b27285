package chschema

import (
	"strings"
	"testing"
)

func TestRetentionHelpers(t *testing.T) {
	for v, want := range map[string]bool{"18.16.1": false, "21.3.20.1": false, "21.8.15.7": true, "24.8.4.13": true, "junk": false} {
		if got := SupportsTTL(v); got != want {
			t.Errorf("SupportsTTL(%q) = %v", v, got)
		}
	}
	if got := TTLExpr(30); got != "toDateTime(created_at) + toIntervalDay(30)" {
		t.Errorf("TTLExpr(30) = %q", got)
	}
	// A table created with body_ttl_days=30 needs nothing for 30 days and
	// both columns for 7.
	create := createRequestsSQL("db", features{modern: true}, 30)
	if got := BodyTTLAlters("db", RequestsTable, "", create, 30); len(got) != 0 {
		t.Errorf("BodyTTLAlters on a table that has the TTL: %v", got)
	}
	got := BodyTTLAlters("db", RequestsTable, "", create, 7)
	if len(got) != 2 || !strings.Contains(got[0], "MODIFY COLUMN request_body String CODEC(ZSTD(3)) TTL toDateTime(created_at) + toIntervalDay(7)") {
		t.Errorf("BodyTTLAlters(7) = %v", got)
	}
}
