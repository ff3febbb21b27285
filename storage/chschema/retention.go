package chschema

import (
	"fmt"
	"strings"
)

// What package storage/retention needs of the schema's variants.

// SupportsTTL tells whether a server (SELECT version()) gets the modern
// schema, whose retention is table and column TTLs; older servers (18.16)
// have none and get partition drops and mutations instead.
func SupportsTTL(version string) bool {
	v, err := parseVersion(version)
	return err == nil && featuresFor(v).modern
}

// TTLExpr is the TTL expression of a retention of days: the one the body
// columns get from body_ttl_days too.
func TTLExpr(days int) string {
	return strings.TrimPrefix(bodyTTL(days), "TTL ")
}

// BodyTTLAlters are the statements that give request_body and
// response_body a TTL of days, for the columns whose definition in create
// (the table's create_table_query) does not have it yet. table is the
// requests table's local name (Target.Local), onCluster its ON CLUSTER
// clause (Target.OnCluster).
func BodyTTLAlters(db, table, onCluster, create string, days int) []string {
	var out []string
	for _, c := range requestColumns {
		if !c.body {
			continue
		}
		def := columnDef(c, features{modern: true}, days)
		if !strings.Contains(create, def) {
			out = append(out, fmt.Sprintf("ALTER TABLE %s.%s%s MODIFY COLUMN %s", db, table, onCluster, def))
		}
	}
	return out
}
