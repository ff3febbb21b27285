package chschema

import "context"

// requestColumnsV8 is the column migration 8 adds after usage_source, as
// released (requestColumns ends with it, so a table created since has it
// already and the step does nothing):
//
//   - cache_similarity: the cosine similarity of a semantic cache hit's
//     prompt to the one whose answer served it (Helicone-Cache-Similarity);
//     0 for an exact hit and every other call. Rows written before it
//     read 0.
var requestColumnsV8 = []column{
	{name: "cache_similarity", legacy: "Float32"},
}

func migrateV8(ctx context.Context, m *migrator) error {
	return m.addColumns(ctx, RequestsTable, requestColumnsV8, "usage_source")
}
