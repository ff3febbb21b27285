package prompt

import (
	"context"
	"crypto/sha256"
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

// SeenStore keeps what Library.Observe learns from the calls a tenant
// tags (Helicone's legacy automatic versioning), apart from the published
// prompts and per tenant. A seen version only numbers the template a call
// was made with (the record's prompt_version) and is never rendered, so a
// store keeps no template at all: per seen id only its latest version's
// number, that template's sum and when it was recorded, a few dozen
// bytes however large the template or however many its versions. One
// tenant's traffic never touches another's. Both stores implement it;
// Library versions observed templates when its store does.
type SeenStore interface {
	// LatestSeen returns tenant's latest seen version of id, a
	// *NotFoundError when there is none (or it expired), and extends the
	// life of id by l.TTL: the prompt is in use.
	LatestSeen(ctx context.Context, tenant, id string, l SeenLimits) (Seen, error)
	// RecordSeen makes the template of sum version after+1 of tenant's id
	// when its latest version is after (0: none), else writes nothing and
	// returns ErrConflict; when id is new and tenant already has
	// l.MaxPrompts seen prompts, it writes nothing and returns
	// ErrSeenLimit. A write keeps id for l.TTL from now. One round trip,
	// atomic.
	RecordSeen(ctx context.Context, tenant, id string, after int, sum TemplateSum, l SeenLimits) (Seen, error)
}

// Seen is what a SeenStore keeps of one tenant's seen prompt: its latest
// version.
type Seen struct {
	ID        string
	Version   int         // from 1, one more per new template
	Sum       TemplateSum // the latest version's template
	CreatedAt time.Time   // when the latest version was recorded
}

// TemplateSum identifies a template's content: SHA-256 over its model,
// messages and system.
type TemplateSum [sha256.Size]byte

// SumTemplate is t's TemplateSum; the same for equal fields, so t should
// have been through NormalizeTemplate.
func SumTemplate(t Template) TemplateSum {
	h := sha256.New()
	h.Write([]byte(t.Model))
	h.Write([]byte{0})
	h.Write(t.Messages)
	h.Write([]byte{0})
	h.Write(t.System)
	var s TemplateSum
	h.Sum(s[:0])
	return s
}

// SeenLimits bound what one tenant's traffic may keep in a SeenStore.
type SeenLimits struct {
	// MaxPrompts: seen prompt ids per tenant.
	MaxPrompts int
	// TTL: how long a seen prompt is kept after its last new version or
	// its last LatestSeen.
	TTL time.Duration
}

// ErrSeenLimit: the tenant has as many seen prompts as SeenLimits allow.
var ErrSeenLimit = errors.New("the tenant has the most seen prompts allowed")
