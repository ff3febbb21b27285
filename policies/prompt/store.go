package prompt

import (
	"context"
	"errors"
	"time"
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

// ErrConflict: the seen prompt has a version newer than the caller read
// (another replica versioned the same template first).
var ErrConflict = errors.New("prompt has a newer version than the one read")

// SeenStore keeps the versions Library.Observe makes from the calls a
// tenant tags (Helicone's legacy automatic versioning), apart from the
// published prompts and per tenant: they only number the template each
// call was made with (the record's prompt_version). They are never
// rendered, for any tenant, and one tenant's traffic never touches another's.
// Both stores implement it; Library versions observed templates when its
// store does.
type SeenStore interface {
	// LatestSeen returns tenant's latest seen version of id, a
	// *NotFoundError when there is none (or it expired), and extends the
	// life of id's versions by l.TTL: the prompt is in use.
	LatestSeen(ctx context.Context, tenant, id string, l SeenLimits) (Version, error)
	// RecordSeen appends tpl as version after+1 of tenant's id when its
	// latest version is after (0: none), else writes nothing and returns
	// ErrConflict; when id is new and tenant already has l.MaxPrompts seen
	// prompts, it writes nothing and returns ErrSeenLimit. A write keeps
	// id's versions for l.TTL from now. One round trip, atomic.
	RecordSeen(ctx context.Context, tenant, id string, after int, tpl Template, l SeenLimits) (Version, error)
}

// SeenLimits bound what one tenant's traffic may keep in a SeenStore.
type SeenLimits struct {
	// MaxPrompts: seen prompt ids per tenant (each up to the Library's
	// MaxSeenVersions versions).
	MaxPrompts int
	// TTL: how long a seen prompt is kept after its last new version or
	// its last LatestSeen.
	TTL time.Duration
}

// ErrSeenLimit: the tenant has as many seen prompts as SeenLimits allow.
var ErrSeenLimit = errors.New("the tenant has the most seen prompts allowed")
