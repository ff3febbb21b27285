package api

import (
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/storage/chquery"
)

// FuzzHeliconeQuery feeds arbitrary bodies to the request query's parser
// and SQL builder: no panic, a named error for what is refused, and for
// what is accepted a condition whose text holds nothing of the client's —
// no quote, comment or semicolon, only the builder's fragments and one ?
// per bound value. Seeds: testdata/fuzz/FuzzHeliconeQuery (Helicone's
// documented filters, branches, properties, scores, sorts and bad input).
// Helicone: packages/filters/filters.ts (every value goes through
// placeValueSafely into a parameter) and packages/filters/filterDefs.ts
// (the tree's shape).
func FuzzHeliconeQuery(f *testing.F) {
	f.Add([]byte(`{"filter": "all", "limit": 10, "offset": 0, "sort": {"created_at": "desc"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		q, perr := parseHeliconeQuery(body)
		if perr != nil {
			if perr.name == "" || perr.why == "" {
				t.Fatalf("unnamed error %+v", perr)
			}
			return
		}
		if q.Limit < 0 || q.Limit > maxHLimit || q.Offset < 0 || q.Offset > maxHOffset {
			t.Fatalf("limit %d offset %d", q.Limit, q.Offset)
		}
		where, args, err := chquery.HeliconeWhere(q.Filter, "tollgate", "acme")
		if err != nil {
			t.Fatalf("accepted filter fails to build: %v", err)
		}
		if n := strings.Count(where, "?"); n != len(args) {
			t.Fatalf("%d placeholders, %d args: %s", n, len(args), where)
		}
		if strings.ContainsAny(where, "'\"`;\\") || strings.Contains(where, "--") || strings.Contains(where, "/*") {
			t.Fatalf("client text in the SQL: %s", where)
		}
		for _, a := range args {
			if s, ok := a.(string); ok && len(s) > 2 && strings.Contains(where, s) && !isFragment(s) {
				t.Fatalf("value %q spliced into %s", s, where)
			}
		}
	})
}

// isFragment reports whether s is text the builder itself writes (a value
// such as "and" may appear in the SQL without having been spliced).
func isFragment(s string) bool {
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.()=<>!,? ") == ""
}
