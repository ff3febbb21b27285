package semcache

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
)

// MemStore is the in-process Store (`tollgate dev` without Redis): one
// replica only, lost on restart. Its log of additions is bounded like the
// Redis stream's.
type MemStore struct {
	now    func() time.Time
	maxLog int

	mu      sync.Mutex
	bodies  map[string]memBody
	log     []Entry
	dropped int // entries dropped from the front of log
}

type memBody struct {
	b       []byte
	expires time.Time
}

// NewMemStore returns an empty MemStore keeping at most maxLog additions
// (0: 100000).
func NewMemStore(maxLog int, now func() time.Time) *MemStore {
	if maxLog <= 0 {
		maxLog = 100000
	}
	if now == nil {
		now = time.Now
	}
	return &MemStore{now: now, maxLog: maxLog, bodies: make(map[string]memBody)}
}

func (s *MemStore) AddSemantic(_ context.Context, e Entry, body []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if b, ok := s.bodies[e.ID]; ok && now.Before(b.expires) {
		return errors.New("semcache: an entry is stored under this id already")
	}
	s.bodies[e.ID] = memBody{b: append([]byte(nil), body...), expires: now.Add(ttl)}
	s.log = append(s.log, e)
	if len(s.log) > s.maxLog {
		n := len(s.log) - s.maxLog
		for _, old := range s.log[:n] {
			delete(s.bodies, old.ID)
		}
		s.log = append(s.log[:0:0], s.log[n:]...)
		s.dropped += n
	}
	return nil
}

func (s *MemStore) SemanticEntry(_ context.Context, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bodies[id]
	if !ok || !s.now().Before(b.expires) {
		delete(s.bodies, id)
		return nil, nil
	}
	return b.b, nil
}

// TrimSemantic drops the log's additions whose answers expired before t
// (the log keeps no addition time; an answer lives at most its TTL).
func (s *MemStore) TrimSemantic(_ context.Context, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for n < len(s.log) && s.log[n].ExpiresUnixMs <= t.UnixMilli() {
		n++
	}
	s.log = append(s.log[:0:0], s.log[n:]...)
	s.dropped += n
	return nil
}

// SemanticSince: the cursor is the count of additions ever read.
func (s *MemStore) SemanticSince(_ context.Context, cursor string, n int) ([]Entry, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos, _ := strconv.Atoi(cursor)
	i := max(pos-s.dropped, 0)
	j := min(i+n, len(s.log))
	out := append([]Entry(nil), s.log[i:j]...)
	return out, strconv.Itoa(s.dropped + j), nil
}
