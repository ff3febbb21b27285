// Package storetest is the prompt.Store conformance suite: written once
// here, run by every implementation in its own tests (storage/memstore
// against itself, storage/redisstore against a single Redis and a Redis
// Cluster), so that all of them keep the same promises.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies/prompt"
)

// Run runs the suite. open returns a fresh, empty store each time it is
// called (for Redis, a new key prefix on a shared client): the cases run
// in parallel and must not see each other's prompts.
func Run(t *testing.T, open func(t *testing.T) prompt.Store) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, s prompt.Store)
	}{
		{"unknown prompt", func(t *testing.T, s prompt.Store) {
			_, err := s.PromptVersion(ctx, "nope", 0)
			wantNotFound(t, err, "nope", 0)
			_, err = s.PromptVersion(ctx, "nope", 1)
			wantNotFound(t, err, "nope", 1)
			_, err = s.PromptVersions(ctx, "nope")
			wantNotFound(t, err, "nope", 0)
		}},
		{"versions count from one and keep their content", func(t *testing.T, s prompt.Store) {
			before := time.Now().UTC()
			full := prompt.Template{Model: "claude-sonnet-4-5", Messages: json.RawMessage(`[{"role":"user","content":"{{q}} \"é\" \n"}]`), System: json.RawMessage(`[{"type":"text","text":"sys"}]`)}
			v1, err := s.PublishPrompt(ctx, "p", full)
			if err != nil {
				t.Fatal(err)
			}
			after := time.Now().UTC()
			if v1.ID != "p" || v1.Version != 1 || v1.CreatedAt.Before(before.Add(-time.Second)) || v1.CreatedAt.After(after.Add(time.Second)) {
				t.Fatalf("v1 %+v", v1)
			}
			v2 := publish(t, s, "p", "second")
			if v2.Version != 2 || v2.Model != "" || v2.System != nil {
				t.Fatalf("v2 %+v", v2)
			}
			got, err := s.PromptVersion(ctx, "p", 1)
			if err != nil {
				t.Fatal(err)
			}
			if got.Model != full.Model || string(got.Messages) != string(full.Messages) || string(got.System) != string(full.System) ||
				!got.CreatedAt.Equal(v1.CreatedAt) || got.ID != "p" || got.Version != 1 {
				t.Fatalf("read back %+v (%s), published %+v", got, got.Messages, v1)
			}
			latest, err := s.PromptVersion(ctx, "p", 0)
			if err != nil || latest.Version != 2 || string(latest.Messages) != string(tpl("second").Messages) {
				t.Fatalf("latest %+v %v", latest, err)
			}
			_, err = s.PromptVersion(ctx, "p", 3)
			wantNotFound(t, err, "p", 3)
			_, err = s.PromptVersion(ctx, "p", -1)
			wantNotFound(t, err, "p", -1)
			all, err := s.PromptVersions(ctx, "p")
			if err != nil || len(all) != 2 || all[0].Version != 1 || all[1].Version != 2 || all[0].Model != full.Model {
				t.Fatalf("all %+v %v", all, err)
			}
		}},
		{"a version made from observed calls stays marked Seen", func(t *testing.T, s prompt.Store) {
			seen := tpl("observed")
			seen.Seen = true
			v, err := s.PublishPrompt(ctx, "auto", seen)
			if err != nil || !v.Seen {
				t.Fatalf("publish %+v %v", v, err)
			}
			publish(t, s, "auto", "published")
			vs, err := s.PromptVersions(ctx, "auto")
			if err != nil || len(vs) != 2 || !vs[0].Seen || vs[1].Seen {
				t.Fatalf("versions %+v %v: want the first Seen, the second not", vs, err)
			}
			if got, err := s.PromptVersion(ctx, "auto", 1); err != nil || !got.Seen {
				t.Fatalf("version 1 read back %+v %v", got, err)
			}
		}},
		{"seen versions are the tenant's, apart from published prompts", func(t *testing.T, s prompt.Store) {
			ss := seenStore(t, s)
			lim := prompt.SeenLimits{MaxPrompts: 10, TTL: time.Hour}
			before := time.Now().UTC()
			v1, err := ss.RecordSeen(ctx, "tenant-a", "story", 0, sum("a's template"), lim)
			after := time.Now().UTC()
			if err != nil || v1.Version != 1 || v1.ID != "story" || v1.Sum != sum("a's template") ||
				v1.CreatedAt.Before(before.Add(-time.Second)) || v1.CreatedAt.After(after.Add(time.Second)) {
				t.Fatalf("record %+v %v", v1, err)
			}
			if got, err := ss.LatestSeen(ctx, "tenant-a", "story", lim); err != nil || got != v1 {
				t.Fatalf("a's latest %+v %v, want %+v", got, err, v1)
			}
			_, err = ss.LatestSeen(ctx, "tenant-b", "story", lim)
			wantNotFound(t, err, "story", 0)
			_, err = s.PromptVersion(ctx, "story", 0)
			wantNotFound(t, err, "story", 0)
			if v, err := ss.RecordSeen(ctx, "tenant-b", "story", 0, sum("b's template"), lim); err != nil || v.Version != 1 {
				t.Fatalf("b's own version 1: %+v %v", v, err)
			}
			if v := publish(t, s, "story", "published"); v.Version != 1 {
				t.Fatalf("the published prompt starts at %d", v.Version)
			}
			if got, _ := ss.LatestSeen(ctx, "tenant-a", "story", lim); got.Sum != sum("a's template") {
				t.Fatalf("a's latest became %x", got.Sum)
			}
			for _, bad := range []string{"a{b}", ".."} {
				if _, err := ss.RecordSeen(ctx, "tenant-a", bad, 0, sum("x"), lim); !errors.Is(err, prompt.ErrInvalid) {
					t.Fatalf("bad id %q: %v", bad, err)
				}
			}
		}},
		{"a seen version lands only on the version read", func(t *testing.T, s prompt.Store) {
			ss := seenStore(t, s)
			lim := prompt.SeenLimits{MaxPrompts: 10, TTL: time.Hour}
			if _, err := ss.RecordSeen(ctx, "t", "cond", 1, sum("too early"), lim); !errors.Is(err, prompt.ErrConflict) {
				t.Fatalf("after 1 on an empty prompt: %v, want ErrConflict", err)
			}
			if v1, err := ss.RecordSeen(ctx, "t", "cond", 0, sum("first"), lim); err != nil || v1.Version != 1 {
				t.Fatalf("after 0: %+v %v", v1, err)
			}
			if _, err := ss.RecordSeen(ctx, "t", "cond", 0, sum("racer"), lim); !errors.Is(err, prompt.ErrConflict) {
				t.Fatalf("a second after 0: %v, want ErrConflict", err)
			}
			if v2, err := ss.RecordSeen(ctx, "t", "cond", 1, sum("second"), lim); err != nil || v2.Version != 2 {
				t.Fatalf("after 1: %+v %v", v2, err)
			}
			if got, err := ss.LatestSeen(ctx, "t", "cond", lim); err != nil || got.Version != 2 || got.Sum != sum("second") {
				t.Fatalf("latest %+v %v", got, err)
			}
			if _, err := ss.RecordSeen(ctx, "t", "cond", 1, sum("stale"), lim); !errors.Is(err, prompt.ErrConflict) {
				t.Fatalf("after 1 with 2 stored: %v, want ErrConflict", err)
			}
		}},
		{"concurrent recorders of one seen version: one wins", func(t *testing.T, s prompt.Store) {
			ss := seenStore(t, s)
			lim := prompt.SeenLimits{MaxPrompts: 10, TTL: time.Hour}
			const n = 20
			var wg sync.WaitGroup
			var mu sync.Mutex
			won := 0
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := ss.RecordSeen(ctx, "t", "raced", 0, sum(fmt.Sprint("replica ", i)), lim)
					switch {
					case err == nil:
						mu.Lock()
						won++
						mu.Unlock()
					case !errors.Is(err, prompt.ErrConflict):
						t.Error(err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if got, err := ss.LatestSeen(ctx, "t", "raced", lim); won != 1 || err != nil || got.Version != 1 {
				t.Fatalf("%d writers won; latest %+v %v", won, got, err)
			}
		}},
		{"a tenant's seen prompts are capped", func(t *testing.T, s prompt.Store) {
			ss := seenStore(t, s)
			lim := prompt.SeenLimits{MaxPrompts: 2, TTL: time.Hour}
			for _, id := range []string{"one", "two"} {
				if _, err := ss.RecordSeen(ctx, "t", id, 0, sum(id), lim); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := ss.LatestSeen(ctx, "t", "three", lim); !errors.Is(err, prompt.ErrNotFound) {
				t.Fatalf("an unknown prompt: %v", err)
			}
			if _, err := ss.RecordSeen(ctx, "t", "three", 0, sum("three"), lim); !errors.Is(err, prompt.ErrSeenLimit) {
				t.Fatalf("a third prompt: %v, want ErrSeenLimit", err)
			}
			if _, err := ss.LatestSeen(ctx, "t", "three", lim); !errors.Is(err, prompt.ErrNotFound) {
				t.Fatalf("the refused prompt was stored: %v", err)
			}
			if v, err := ss.RecordSeen(ctx, "t", "one", 1, sum("one again"), lim); err != nil || v.Version != 2 {
				t.Fatalf("a new version of a counted prompt: %+v %v", v, err)
			}
			if _, err := ss.RecordSeen(ctx, "other", "three", 0, sum("three"), lim); err != nil {
				t.Fatalf("another tenant: %v", err)
			}
		}},
		{"seen prompts expire and free their place", func(t *testing.T, s prompt.Store) {
			ss := seenStore(t, s)
			lim := prompt.SeenLimits{MaxPrompts: 1, TTL: 50 * time.Millisecond}
			if _, err := ss.RecordSeen(ctx, "t", "brief", 0, sum("x"), lim); err != nil {
				t.Fatal(err)
			}
			time.Sleep(150 * time.Millisecond)
			_, err := ss.LatestSeen(ctx, "t", "brief", lim)
			wantNotFound(t, err, "brief", 0)
			if v, err := ss.RecordSeen(ctx, "t", "next", 0, sum("y"), lim); err != nil || v.Version != 1 {
				t.Fatalf("after the TTL the cap still counted the expired prompt: %+v %v", v, err)
			}
			lim.TTL = time.Hour
			if v, err := ss.RecordSeen(ctx, "t", "next", 1, sum("z"), lim); err != nil || v.Version != 2 {
				t.Fatalf("a live prompt after an expiry: %+v %v", v, err)
			}
			_, err = ss.LatestSeen(ctx, "t", "brief", lim)
			wantNotFound(t, err, "brief", 0)
		}},
		{"prompts are independent", func(t *testing.T, s prompt.Store) {
			publish(t, s, "a", "a1")
			publish(t, s, "a", "a2")
			if v := publish(t, s, "b", "b1"); v.Version != 1 {
				t.Fatalf("b starts at %d", v.Version)
			}
			if v := publish(t, s, "a.b_c-D", "x"); v.Version != 1 {
				t.Fatalf("got %+v", v)
			}
		}},
		{"returned versions do not alias the store", func(t *testing.T, s prompt.Store) {
			v := publish(t, s, "p", "original")
			for i := range v.Messages {
				v.Messages[i] = 'x'
			}
			got, err := s.PromptVersion(ctx, "p", 1)
			if err != nil || string(got.Messages) != string(tpl("original").Messages) {
				t.Fatalf("got %s %v", got.Messages, err)
			}
		}},
		{"a bad id is refused", func(t *testing.T, s prompt.Store) {
			if _, err := s.PublishPrompt(ctx, "a{b}", tpl("x")); !errors.Is(err, prompt.ErrInvalid) {
				t.Fatalf("got %v", err)
			}
		}},
		{"a cancelled context fails", func(t *testing.T, s prompt.Store) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := s.PublishPrompt(cctx, "p", tpl("x")); err == nil {
				t.Fatal("published under a cancelled context")
			}
			if _, err := s.PromptVersion(cctx, "p", 0); err == nil || errors.Is(err, prompt.ErrNotFound) {
				t.Fatalf("got %v", err)
			}
		}},
		{"concurrent publishers get distinct versions without gaps", func(t *testing.T, s prompt.Store) {
			const n = 100
			got := make([]int, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					v, err := s.PublishPrompt(ctx, "hot", tpl(fmt.Sprint("writer ", i)))
					if err != nil {
						t.Error(err)
						return
					}
					got[i] = v.Version
				}()
			}
			close(start)
			wg.Wait()
			checkDistinctVersions(t, s, "hot", got)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
}

func seenStore(t *testing.T, s prompt.Store) prompt.SeenStore {
	t.Helper()
	ss, ok := s.(prompt.SeenStore)
	if !ok {
		t.Skip("not a SeenStore")
	}
	return ss
}

func publish(t *testing.T, s prompt.Store, id, content string) prompt.Version {
	t.Helper()
	v, err := s.PublishPrompt(context.Background(), id, tpl(content))
	if err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
	return v
}

func wantNotFound(t *testing.T, err error, id string, version int) {
	t.Helper()
	var nf *prompt.NotFoundError
	if !errors.As(err, &nf) || nf.ID != id || nf.Version != version || !errors.Is(err, prompt.ErrNotFound) {
		t.Fatalf("got %v, want not found (%s v%d)", err, id, version)
	}
}

// checkDistinctVersions: the versions handed to writers are exactly 1..N,
// and version k holds what the writer that got k published.
func checkDistinctVersions(t *testing.T, s prompt.Store, id string, got []int) {
	t.Helper()
	seen := make(map[int]int, len(got))
	for writer, v := range got {
		if v < 1 || v > len(got) {
			t.Fatalf("writer %d got version %d, outside 1..%d", writer, v, len(got))
		}
		if other, dup := seen[v]; dup {
			t.Fatalf("writers %d and %d both got version %d", other, writer, v)
		}
		seen[v] = writer
	}
	all, err := s.PromptVersions(context.Background(), id)
	if err != nil || len(all) != len(got) {
		t.Fatalf("%d versions stored, %v; want %d", len(all), err, len(got))
	}
	for i, v := range all {
		want := string(tpl(fmt.Sprint("writer ", seen[i+1])).Messages)
		if v.Version != i+1 || string(v.Messages) != want {
			t.Fatalf("version %d holds %s, want %s", v.Version, v.Messages, want)
		}
	}
}

// sum is the TemplateSum of tpl(content).
func sum(content string) prompt.TemplateSum { return prompt.SumTemplate(tpl(content)) }

func tpl(content string) prompt.Template {
	b, _ := json.Marshal([]map[string]string{{"role": "user", "content": content}})
	return prompt.Template{Messages: b}
}
