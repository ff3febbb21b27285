package memstore

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/policies/prompt"
)

// PromptOptions configure a PromptStore.
type PromptOptions struct {
	Now func() time.Time // default time.Now; stamps CreatedAt
}

// PromptStore implements prompt.Store in process memory: published
// prompts live as long as the process (the `tollgate dev` default).
type PromptStore struct {
	now func() time.Time

	mu      sync.Mutex
	prompts map[string][]prompt.Version
}

var (
	_ prompt.Store                = (*PromptStore)(nil)
	_ prompt.ConditionalPublisher = (*PromptStore)(nil)
)

// NewPromptStore returns an empty PromptStore.
func NewPromptStore(o PromptOptions) *PromptStore {
	s := &PromptStore{now: o.Now, prompts: make(map[string][]prompt.Version)}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// PublishPrompt appends a version.
func (s *PromptStore) PublishPrompt(ctx context.Context, id string, tpl prompt.Template) (prompt.Version, error) {
	return s.publish(ctx, id, tpl, func(int) bool { return true })
}

// PublishPromptAfter appends a version when the latest is after.
func (s *PromptStore) PublishPromptAfter(ctx context.Context, id string, after int, tpl prompt.Template) (prompt.Version, error) {
	return s.publish(ctx, id, tpl, func(latest int) bool { return latest == after })
}

// publish appends tpl as the next version of id when ok accepts the
// latest version number (0 for none), under the lock; else ErrConflict.
func (s *PromptStore) publish(ctx context.Context, id string, tpl prompt.Template, ok func(latest int) bool) (prompt.Version, error) {
	if err := ctx.Err(); err != nil {
		return prompt.Version{}, err
	}
	if err := prompt.ValidateID(id); err != nil {
		return prompt.Version{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	latest := len(s.prompts[id])
	if !ok(latest) {
		return prompt.Version{}, prompt.ErrConflict
	}
	v := prompt.Version{ID: id, Version: latest + 1, CreatedAt: s.now().UTC(), Template: tpl}
	s.prompts[id] = append(s.prompts[id], detached(v))
	return detached(v), nil
}

// PromptVersion returns one version, 0 = the latest.
func (s *PromptStore) PromptVersion(ctx context.Context, id string, version int) (prompt.Version, error) {
	if err := ctx.Err(); err != nil {
		return prompt.Version{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.prompts[id]
	switch {
	case len(vs) == 0:
		return prompt.Version{}, &prompt.NotFoundError{ID: id, Version: version}
	case version == 0:
		return detached(vs[len(vs)-1]), nil
	case version < 0 || version > len(vs):
		return prompt.Version{}, &prompt.NotFoundError{ID: id, Version: version}
	}
	return detached(vs[version-1]), nil
}

// PromptVersions returns every version, oldest first.
func (s *PromptStore) PromptVersions(ctx context.Context, id string) ([]prompt.Version, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.prompts[id]
	if len(vs) == 0 {
		return nil, &prompt.NotFoundError{ID: id}
	}
	out := make([]prompt.Version, len(vs))
	for i, v := range vs {
		out[i] = detached(v)
	}
	return out, nil
}

// detached copies a version's JSON, so that neither the caller's buffers
// nor what callers do with the result can change a stored version, as
// with Redis.
func detached(v prompt.Version) prompt.Version {
	v.Messages, v.System = bytes.Clone(v.Messages), bytes.Clone(v.System)
	return v
}
