package policies

import "context"

// PromptStore keeps published prompt versions (Redis, or the in-process
// stand-in). Implementations: storage/redisstore, storage/memstore; both
// pass the conformance suite in prompt_store_conformance_test.go.
// PromptLibrary implements it too, over a store and the prompt folder.
type PromptStore interface {
	// PublishPrompt appends a version to id: the first is 1, each next one
	// is one more, with no gaps and no two publishers ever getting the
	// same number. tpl has been through NormalizePromptTemplate. The
	// returned version carries its number and CreatedAt.
	PublishPrompt(ctx context.Context, id string, tpl PromptTemplate) (PromptVersion, error)
	// PromptVersion returns one version; version 0 is the latest. An
	// unknown id or version is a *PromptNotFoundError.
	PromptVersion(ctx context.Context, id string, version int) (PromptVersion, error)
	// PromptVersions returns every version of id, oldest first; an id
	// without versions is a *PromptNotFoundError.
	PromptVersions(ctx context.Context, id string) ([]PromptVersion, error)
}
