package chschema

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/record"
)

func TestFeaturesByVersion(t *testing.T) {
	for _, c := range []struct {
		v      string
		modern bool
	}{
		{"18.16.1", false}, {"19.17.6.36", false}, {"20.3.21.2", false}, {"21.3.20.1", false},
		{"21.8.15.7", true}, {"22.3.1", true}, {"24.8.4.13", true}, {"25.10.1.1", true},
	} {
		v, err := parseVersion(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if got := featuresFor(v).modern; got != c.modern {
			t.Errorf("%s: modern = %v, want %v", c.v, got, c.modern)
		}
	}
	if _, err := parseVersion("banana"); err == nil {
		t.Error("bad version accepted")
	}
}

// TestSchemaVariants pins both variants: the same column names in the same
// order, new types only in the modern one.
func TestSchemaVariants(t *testing.T) {
	legacy := createRequestsSQL("tollgate", features{}, 30)
	modern := createRequestsSQL("tollgate", features{modern: true}, 30)
	for _, forbidden := range []string{"DateTime64", "LowCardinality", "CODEC", "TTL"} {
		if strings.Contains(legacy, forbidden) {
			t.Errorf("legacy schema uses %s:\n%s", forbidden, legacy)
		}
	}
	for _, want := range []string{
		"created_at DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1))",
		"tenant LowCardinality(String)",
		"request_body String CODEC(ZSTD(3)) TTL toDateTime(created_at) + toIntervalDay(30)",
		"response_body String CODEC(ZSTD(3)) TTL toDateTime(created_at) + toIntervalDay(30)",
		"properties Nested(key String, value String)",
	} {
		if !strings.Contains(modern, want) {
			t.Errorf("modern schema lacks %q:\n%s", want, modern)
		}
	}
	if noTTL := createRequestsSQL("tollgate", features{modern: true}, 0); strings.Contains(noTTL, "TTL") {
		t.Error("TTL without body_ttl_days")
	}
	for _, ddl := range []string{legacy, modern} {
		for _, want := range []string{"ENGINE = ReplacingMergeTree()", "PARTITION BY toYYYYMM(created_at)",
			"ORDER BY (tenant, created_at, request_id)"} {
			if !strings.Contains(ddl, want) {
				t.Errorf("schema lacks %q", want)
			}
		}
	}
	names := func(ddl string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`(?m)^    ([a-z_]+) `).FindAllStringSubmatch(ddl, -1) {
			out = append(out, m[1])
		}
		return out
	}
	if l, m := names(legacy), names(modern); !slices.Equal(l, m) || len(l) != len(requestColumns) {
		t.Errorf("column names differ between variants:\n%v\n%v", l, m)
	}
	// DESIGN §5's public columns, all present.
	for _, c := range strings.Fields(`request_id created_at tenant user_id session_id session_path
		session_name request_name properties provider model response_model path status stream
		prompt_tokens completion_tokens cached_tokens reasoning_tokens cost_usd latency_ms ttft_ms
		cache_hit cache_reference_id rate_limited prompt_id prompt_version fallback_index
		request_body response_body error method target_url cache_write_tokens`) {
		if !slices.Contains(names(legacy), c) {
			t.Errorf("column %s missing", c)
		}
	}
	fl, fm := createFeedbackSQL("tollgate", features{}), createFeedbackSQL("tollgate", features{modern: true})
	for _, ddl := range []string{fl, fm} {
		if !strings.Contains(ddl, "ReplacingMergeTree(created_at)") || !strings.Contains(ddl, "ORDER BY request_id") ||
			!strings.Contains(ddl, "rating Int8") {
			t.Errorf("feedback schema:\n%s", ddl)
		}
	}
	t.Logf("legacy requests:\n%s\nmodern requests:\n%s\nlegacy feedback:\n%s\nmodern feedback:\n%s", legacy, modern, fl, fm)
}

func TestParseURL(t *testing.T) {
	tg, err := ParseURL("clickhouse://127.0.0.1:9000")
	if err != nil || tg.DB != "tollgate" || tg.Options.Addr[0] != "127.0.0.1:9000" || tg.Options.Auth.Database != "" {
		t.Fatalf("default db: %+v %v", tg, err)
	}
	tg, err = ParseURL("clickhouse://bob:s3cret@ch.internal:9440/logs?body_ttl_days=90&dial_timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	if tg.DB != "logs" || tg.BodyTTLDays != 90 || tg.Options.Auth.Username != "bob" || tg.Options.Auth.Password != "s3cret" ||
		tg.Options.DialTimeout.Seconds() != 2 {
		t.Errorf("parsed %+v / %+v", tg, tg.Options.Auth)
	}
	if _, ok := tg.Options.Settings[bodyTTLParam]; ok {
		t.Error("body_ttl_days passed on to the server as a setting")
	}
	if strings.Contains(tg.Redacted, "s3cret") {
		t.Errorf("redacted URL shows the password: %s", tg.Redacted)
	}
	for _, bad := range []string{"", "http://h:8123/db", "clickhouse:///db", "clickhouse://h:9000/bad-name",
		"clickhouse://h:9000/db?body_ttl_days=x", "clickhouse://u:hunter2@h:9000/db?dial_timeout=zz"} {
		_, err := ParseURL(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

// TestV3ColumnsMatchCreate: migration 3 adds exactly the columns a new
// table gets after fallback_index, with the same definitions in both
// variants, so an upgraded table and a new one agree.
func TestV3ColumnsMatchCreate(t *testing.T) {
	i := slices.IndexFunc(requestColumns, func(c column) bool { return c.name == "fallback_index" })
	if i < 0 || i+1+len(requestColumnsV3) > len(requestColumns) {
		t.Fatal("fallback_index not followed by the migration 3 columns")
	}
	if got := requestColumns[i+1 : i+1+len(requestColumnsV3)]; !slices.Equal(got, requestColumnsV3) {
		t.Errorf("requestColumns after fallback_index:\n got %+v\nwant %+v", got, requestColumnsV3)
	}
	for _, f := range []features{{}, {modern: true}} {
		for _, c := range requestColumnsV3 {
			def := columnDef(c, f, 30)
			if strings.Contains(def, "TTL") || (!f.modern && (strings.Contains(def, "LowCardinality") || strings.Contains(def, "CODEC"))) {
				t.Errorf("%s: %s", f.variant(), def)
			}
		}
	}
}

// TestRecordJSONNamesAreColumns: the JSON names of record.Record are the
// column names of the requests table (record.go says so).
func TestRecordJSONNamesAreColumns(t *testing.T) {
	cols := map[string]bool{}
	for _, c := range requestColumns {
		cols[c.name] = true
	}
	typ := reflect.TypeFor[record.Record]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if !cols[name] {
			t.Errorf("record field %s (json %q) has no column", typ.Field(i).Name, name)
		}
		delete(cols, name)
	}
	for c := range cols {
		t.Errorf("column %s has no record field", c)
	}
}
