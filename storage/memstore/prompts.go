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

// PromptStore implements prompt.Store and prompt.SeenStore in process
// memory: published prompts live as long as the process (the `tollgate
// dev` default); seen ones until their TTL, within each tenant's cap.
type PromptStore struct {
	now func() time.Time

	mu      sync.Mutex
	prompts map[string][]prompt.Version
	seen    map[string]map[string]*seenPrompt // tenant → id
	swept   time.Time                         // when every tenant's seen prompts were last expired
}

// seenPrompt is what is kept of one tenant's seen id: its latest
// version, as in Redis (no template, whatever the number of versions).
type seenPrompt struct {
	latest  prompt.Seen
	expires time.Time
}

var (
	_ prompt.Store     = (*PromptStore)(nil)
	_ prompt.SeenStore = (*PromptStore)(nil)
)

// NewPromptStore returns an empty PromptStore.
func NewPromptStore(o PromptOptions) *PromptStore {
	s := &PromptStore{now: o.Now, prompts: make(map[string][]prompt.Version), seen: make(map[string]map[string]*seenPrompt)}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// PublishPrompt appends a version.
func (s *PromptStore) PublishPrompt(ctx context.Context, id string, tpl prompt.Template) (prompt.Version, error) {
	if err := ctx.Err(); err != nil {
		return prompt.Version{}, err
	}
	if err := prompt.ValidateID(id); err != nil {
		return prompt.Version{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := prompt.Version{ID: id, Version: len(s.prompts[id]) + 1, CreatedAt: s.now().UTC(), Template: tpl}
	s.prompts[id] = append(s.prompts[id], detached(v))
	return detached(v), nil
}

// LatestSeen returns tenant's latest seen version of id and keeps id for
// another l.TTL.
func (s *PromptStore) LatestSeen(ctx context.Context, tenant, id string, l prompt.SeenLimits) (prompt.Seen, error) {
	if err := ctx.Err(); err != nil {
		return prompt.Seen{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expireSeen(tenant, now)
	p := s.seen[tenant][id]
	if p == nil {
		return prompt.Seen{}, &prompt.NotFoundError{ID: id}
	}
	p.expires = now.Add(l.TTL)
	return p.latest, nil
}

// RecordSeen makes sum the latest seen version when the latest is after,
// within the tenant's cap, as the Redis script does.
func (s *PromptStore) RecordSeen(ctx context.Context, tenant, id string, after int, sum prompt.TemplateSum, l prompt.SeenLimits) (prompt.Seen, error) {
	if err := ctx.Err(); err != nil {
		return prompt.Seen{}, err
	}
	if err := prompt.ValidateID(id); err != nil {
		return prompt.Seen{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.expireSeen(tenant, now)
	if now.Sub(s.swept) >= time.Minute {
		// Tenants that stopped calling are expired here, at most once a
		// minute, so that their prompts do not outlive the TTL.
		for t := range s.seen {
			s.expireSeen(t, now)
		}
		s.swept = now
	}
	ids := s.seen[tenant]
	p := ids[id]
	switch {
	case p == nil && len(ids) >= l.MaxPrompts:
		return prompt.Seen{}, prompt.ErrSeenLimit
	case p == nil && after != 0, p != nil && p.latest.Version != after:
		return prompt.Seen{}, prompt.ErrConflict
	}
	if ids == nil {
		ids = make(map[string]*seenPrompt)
		s.seen[tenant] = ids
	}
	if p == nil {
		p = &seenPrompt{}
		ids[id] = p
	}
	p.latest = prompt.Seen{ID: id, Version: after + 1, Sum: sum, CreatedAt: now.UTC()}
	p.expires = now.Add(l.TTL)
	return p.latest, nil
}

// expireSeen drops tenant's seen prompts past their TTL (a tenant holds
// at most its cap of them, so this costs little).
func (s *PromptStore) expireSeen(tenant string, now time.Time) {
	for id, p := range s.seen[tenant] {
		if !now.Before(p.expires) {
			delete(s.seen[tenant], id)
		}
	}
	if ids, ok := s.seen[tenant]; ok && len(ids) == 0 {
		delete(s.seen, tenant)
	}
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
