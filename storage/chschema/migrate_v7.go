package chschema

import "context"

// requestColumnsV7 is the column migration 7 adds after proxy_key_id, as
// released (requestColumns ends with it, so a table created since has it
// already and the step does nothing):
//
//   - usage_source: where the token counts come from, "provider",
//     "estimated" (a stream cut before the provider reported its usage,
//     counted from the request and the streamed output) or "" (no usage).
//     Rows written before it read "".
var requestColumnsV7 = []column{
	{name: "usage_source", legacy: "String", modern: "LowCardinality(String)"},
}

func migrateV7(ctx context.Context, m *migrator) error {
	return m.addColumns(ctx, RequestsTable, requestColumnsV7, "proxy_key_id")
}
