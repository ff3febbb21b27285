package prompt_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies/prompt"
	"github.com/tollgate-dev/tollgate/storage/memstore"
)

// waitFor polls cond for up to two seconds: the versioning worker runs in
// the background.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// Helicone versions a legacy prompt when the template it sees differs
// from the latest stored one, and only then (PromptStore.upsertPromptV2,
// worker/src/lib/db/PromptStore.ts: deepCompare, major_version + 1).
// Observe does so off the request path, and an unchanged template costs
// no store call.
func TestObserveVersionsChangedTemplates(t *testing.T) {
	store := &countingPromptStore{Store: memstore.NewPromptStore(memstore.PromptOptions{})}
	lib, err := prompt.NewLibrary(prompt.LibraryOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	ctx := context.Background()
	a := prompt.Template{Model: "gpt-4o", Messages: json.RawMessage(`[{"role":"user","content":"About <helicone-prompt-input key=\"t\" />"}]`)}
	b := prompt.Template{Model: "gpt-4o", Messages: json.RawMessage(`[{"role":"user","content":"Tell me about <helicone-prompt-input key=\"t\" />"}]`)}

	if n := lib.Observe("story", a); n != 0 {
		t.Errorf("first sight: version %d, want 0 (not known yet)", n)
	}
	waitFor(t, "version 1", func() bool { return lib.Observe("story", a) == 1 })
	v, err := store.PromptVersion(ctx, "story", 0)
	if err != nil || v.Version != 1 || !v.Seen || string(v.Messages) != string(a.Messages) {
		t.Fatalf("stored %+v %v", v, err)
	}
	reads := store.readCount()
	for range 100 {
		if n := lib.Observe("story", a); n != 1 {
			t.Fatalf("unchanged template: version %d", n)
		}
	}
	if got := store.readCount(); got != reads {
		t.Errorf("unchanged template cost %d store reads", got-reads)
	}

	lib.Observe("story", b)
	waitFor(t, "version 2", func() bool { return lib.Observe("story", b) == 2 })
	lib.Observe("story", a) // back to a: a new version, as deepCompare with the latest has it
	waitFor(t, "version 3", func() bool { return lib.Observe("story", a) == 3 })
	if vs, _ := store.PromptVersions(ctx, "story"); len(vs) != 3 {
		t.Errorf("%d versions, want 3", len(vs))
	}
}

// A prompt published through the API belongs to its publisher: calls
// naming it are tagged, never versioned.
func TestObserveLeavesPublishedPrompts(t *testing.T) {
	store := memstore.NewPromptStore(memstore.PromptOptions{})
	lib, err := prompt.NewLibrary(prompt.LibraryOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	ctx := context.Background()
	if _, err := store.PublishPrompt(ctx, "support", prompt.Template{Messages: json.RawMessage(`[{"role":"system","content":"{{company}}"}]`)}); err != nil {
		t.Fatal(err)
	}
	other := prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"hello"}]`)}
	lib.Observe("support", other)
	lib.Observe("bad/id", other)
	huge := prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"` + strings.Repeat("x", 300<<10) + `"}]`)}
	lib.Observe("huge", huge)
	lib.Observe("fresh", other)
	waitFor(t, "the fresh prompt", func() bool { return lib.Observe("fresh", other) == 1 })
	if vs, _ := store.PromptVersions(ctx, "support"); len(vs) != 1 {
		t.Errorf("published prompt got %d versions, want 1", len(vs))
	}
	if _, err := store.PromptVersion(ctx, "huge", 0); err == nil {
		t.Error("a template over 256 KiB was versioned")
	}
}

// staleReads answers "no such prompt" to reads while the store has
// versions: another replica published between the read and the write.
type staleReads struct {
	*memstore.PromptStore
}

func (s staleReads) PromptVersion(ctx context.Context, id string, v int) (prompt.Version, error) {
	return prompt.Version{}, &prompt.NotFoundError{ID: id, Version: v}
}

// Two replicas seeing the same new template must not both publish it: the
// write lands only on the version read (ConditionalPublisher).
func TestObserveDoesNotStackARacedVersion(t *testing.T) {
	mem := memstore.NewPromptStore(memstore.PromptOptions{})
	tpl := prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"same"}]`)}
	other := tpl
	other.Seen = true
	if _, err := mem.PublishPrompt(context.Background(), "raced", other); err != nil {
		t.Fatal(err)
	}
	lib, err := prompt.NewLibrary(prompt.LibraryOptions{Store: staleReads{mem}})
	if err != nil {
		t.Fatal(err)
	}
	lib.Observe("raced", tpl)
	lib.Observe("marker", tpl) // queued behind: once it is stored, "raced" was handled
	waitFor(t, "the marker prompt", func() bool {
		vs, _ := mem.PromptVersions(context.Background(), "marker")
		return len(vs) == 1
	})
	_ = lib.Close()
	if vs, _ := mem.PromptVersions(context.Background(), "raced"); len(vs) != 1 {
		t.Errorf("%d versions: the raced template was published again", len(vs))
	}
}

// An application that names a prompt without marking its inputs shows a
// new template on every call; the store stops growing at
// MaxSeenVersions, and the calls are still answered from memory.
func TestObserveStopsAtMaxSeenVersions(t *testing.T) {
	store := &countingPromptStore{Store: memstore.NewPromptStore(memstore.PromptOptions{})}
	lib, err := prompt.NewLibrary(prompt.LibraryOptions{Store: store, MaxSeenVersions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	tplN := func(n int) prompt.Template {
		return prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"question ` + string(rune('a'+n)) + `"}]`)}
	}
	for n := range 2 {
		lib.Observe("chatty", tplN(n))
		waitFor(t, "a version", func() bool { return lib.Observe("chatty", tplN(n)) == n+1 })
	}
	lib.Observe("chatty", tplN(2))
	lib.Observe("marker", tplN(0))
	waitFor(t, "the marker prompt", func() bool { return lib.Observe("marker", tplN(0)) == 1 })
	reads := store.readCount()
	for n := 3; n < 20; n++ {
		if v := lib.Observe("chatty", tplN(n)); v != 0 {
			t.Fatalf("template %d: version %d", n, v)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if vs, _ := store.PromptVersions(context.Background(), "chatty"); len(vs) != 2 {
		t.Errorf("%d versions, want the cap of 2", len(vs))
	}
	if got := store.readCount() - reads; got != 0 {
		t.Errorf("templates past the cap cost %d store reads", got)
	}
}
