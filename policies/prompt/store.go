package prompt

import (
	"context"
	"errors"
)

// Store keeps published prompt versions (Redis, or the in-process
// stand-in). Implementations: storage/redisstore, storage/memstore; both
// pass the conformance suite in prompt/storetest.
// Library implements it too, over a store and the prompt folder.
type Store interface {
	// PublishPrompt appends a version to id: the first is 1, each next one
	// is one more, with no gaps and no two publishers ever getting the
	// same number. tpl has been through NormalizeTemplate. The
	// returned version carries its number and CreatedAt.
	PublishPrompt(ctx context.Context, id string, tpl Template) (Version, error)
	// Version returns one version; version 0 is the latest. An
	// unknown id or version is a *NotFoundError.
	PromptVersion(ctx context.Context, id string, version int) (Version, error)
	// PromptVersions returns every version of id, oldest first; an id
	// without versions is a *NotFoundError.
	PromptVersions(ctx context.Context, id string) ([]Version, error)
}

// ConditionalPublisher is a Store that publishes only on top of the
// version the caller last read, so that replicas versioning the same
// prompt from what they see (Library.Observe) never stack the same
// template twice. Both stores implement it; Library uses it when its
// store does.
type ConditionalPublisher interface {
	// PublishPromptAfter appends tpl as version after+1 when the latest
	// version of id is after (0: id has none); otherwise it writes
	// nothing and returns ErrConflict. One round trip, atomic.
	PublishPromptAfter(ctx context.Context, id string, after int, tpl Template) (Version, error)
}

// ErrConflict: the prompt has a version newer than the caller read.
var ErrConflict = errors.New("prompt has a newer version than the one read")
