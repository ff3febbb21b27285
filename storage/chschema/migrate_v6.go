package chschema

import "context"

// requestColumnsV6 are the columns migration 6 adds after error, as
// released (requestColumns ends with them, so a table created since has
// them already and the step does nothing):
//
//   - model_override: Helicone-Model-Override, the model the call is priced
//     as (Helicone's request.model_override);
//   - warnings: the Helicone-* header values tolerated instead of a 400, as
//     the Helicone-Warning response header gave them;
//   - proxy_key_id: the key-vault proxy key the call was made with, by id
//     (Helicone's request.helicone_proxy_key_id).
var requestColumnsV6 = []column{
	{name: "model_override", legacy: "String", modern: "LowCardinality(String)"},
	{name: "warnings", legacy: "String", codec: "CODEC(ZSTD(1))"},
	{name: "proxy_key_id", legacy: "String", modern: "LowCardinality(String)"},
}

func migrateV6(ctx context.Context, m *migrator) error {
	return m.addColumns(ctx, RequestsTable, requestColumnsV6, "error")
}
