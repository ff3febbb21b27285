package memstore

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies/prompt"
)

// A tenant that stops calling does not keep its seen prompts in memory
// past their TTL: another tenant's write expires them (at most once a
// minute), as Redis would have.
func TestSeenPromptsOfAnIdleTenantExpire(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := NewPromptStore(PromptOptions{Now: func() time.Time { return now }})
	lim := prompt.SeenLimits{MaxPrompts: 10, TTL: time.Hour}
	sum := prompt.SumTemplate(prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"x"}]`)})
	ctx := context.Background()
	if _, err := s.RecordSeen(ctx, "idle", "p", 0, sum, lim); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := s.RecordSeen(ctx, "busy", "p", 0, sum, lim); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen["idle"]; ok || len(s.seen) != 1 {
		t.Errorf("seen prompts of %d tenants kept, want only busy's", len(s.seen))
	}
}
