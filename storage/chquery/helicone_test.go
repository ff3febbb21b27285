package chquery_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/storage/chquery"
)

// The SQL of a filter is fixed text and placeholders: what a client sent
// is in the arguments only, in the order of the placeholders.
// Helicone: packages/filters/filters.ts (buildFilterLeaf places every value
// through placeValueSafely; branches are "(left and right)").
func TestHeliconeWhere(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	c := &chquery.Cond{Branch: "or",
		Left: &chquery.Cond{Branch: "and",
			Left:  &chquery.Cond{Field: chquery.FieldModel, Op: chquery.OpEquals, Value: "gpt-4o' OR 1=1"},
			Right: &chquery.Cond{Field: chquery.FieldProperty, Key: "env", Op: chquery.OpContains, Value: "pro"}},
		Right: &chquery.Cond{Branch: "and",
			Left:  &chquery.Cond{Field: chquery.FieldCreatedAt, Op: chquery.OpGTE, Value: at},
			Right: &chquery.Cond{Field: chquery.FieldFeedback, Op: chquery.OpEquals, Value: true}},
	}
	sql, args, err := chquery.HeliconeWhere(c, "tollgate", "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := "((model = ?) AND (position(lowerUTF8(properties.value[indexOf(properties.key, ?)]), lowerUTF8(?)) > 0)) OR ((created_at >= toDateTime(?)) AND " +
		"(request_id GLOBAL IN (SELECT request_id FROM (SELECT request_id, rating FROM tollgate.feedback FINAL WHERE tenant = ?) WHERE rating = ?)))"
	if sql != want {
		t.Errorf("sql\n got %s\nwant %s", sql, want)
	}
	wantArgs := []any{"gpt-4o' OR 1=1", "env", "pro", at.Unix(), "acme", uint8(1)}
	if len(args) != len(wantArgs) || strings.Count(sql, "?") != len(args) {
		t.Fatalf("args %v", args)
	}
	for i := range args {
		if args[i] != wantArgs[i] {
			t.Errorf("arg %d = %#v, want %#v", i, args[i], wantArgs[i])
		}
	}

	// A tree that package api would refuse is refused here too, not built.
	for _, bad := range []*chquery.Cond{
		{Field: "organization_id", Op: chquery.OpEquals, Value: "x"},
		{Field: chquery.FieldModel, Op: "gt", Value: "x"},
		{Field: chquery.FieldStatus, Op: chquery.OpEquals, Value: "200"},
		{Branch: "xor", Left: &chquery.Cond{}, Right: &chquery.Cond{}},
	} {
		if _, _, err := chquery.HeliconeWhere(bad, "tollgate", "acme"); err == nil {
			t.Errorf("%+v built", bad)
		}
	}
}
