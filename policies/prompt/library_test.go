package prompt_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/policies/prompt"
	"github.com/tollgate-dev/tollgate/storage/memstore"
)

// countingPromptStore counts the calls that reach the store and can be
// made to fail, as an unreachable Redis would.
type countingPromptStore struct {
	bothStores
	mu    sync.Mutex
	reads int
	fail  error
}

// bothStores is what both stores are.
type bothStores interface {
	prompt.Store
	prompt.SeenStore
}

func (c *countingPromptStore) PromptVersion(ctx context.Context, id string, v int) (prompt.Version, error) {
	if err := c.read(); err != nil {
		return prompt.Version{}, err
	}
	return c.bothStores.PromptVersion(ctx, id, v)
}

func (c *countingPromptStore) LatestSeen(ctx context.Context, tenant, id string, l prompt.SeenLimits) (prompt.Seen, error) {
	if err := c.read(); err != nil {
		return prompt.Seen{}, err
	}
	return c.bothStores.LatestSeen(ctx, tenant, id, l)
}

func (c *countingPromptStore) read() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.fail
}

func (c *countingPromptStore) readCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

func (c *countingPromptStore) setFail(err error) {
	c.mu.Lock()
	c.fail = err
	c.mu.Unlock()
}

type promptClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *promptClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *promptClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func tpl(content string) prompt.Template {
	b, _ := json.Marshal([]map[string]string{{"role": "user", "content": content}})
	return prompt.Template{Messages: b}
}

type libraryRig struct {
	lib   *prompt.Library
	store *countingPromptStore // what the library sees
	other prompt.Store         // the same data, as another replica publishes to it
	clock *promptClock
}

func newLibraryRig(t *testing.T, tweak ...func(*prompt.LibraryOptions)) *libraryRig {
	t.Helper()
	mem := memstore.NewPromptStore(memstore.PromptOptions{})
	r := &libraryRig{store: &countingPromptStore{bothStores: mem}, other: mem, clock: &promptClock{t: time.Unix(1_700_000_000, 0)}}
	o := prompt.LibraryOptions{Store: r.store, Now: r.clock.now}
	for _, f := range tweak {
		f(&o)
	}
	lib, err := prompt.NewLibrary(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lib.Close() })
	r.lib = lib
	return r
}

func (r *libraryRig) publishElsewhere(t *testing.T, id, content string) int {
	t.Helper()
	v, err := r.other.PublishPrompt(context.Background(), id, tpl(content))
	if err != nil {
		t.Fatal(err)
	}
	return v.Version
}

func (r *libraryRig) get(t *testing.T, id string, version int) prompt.Version {
	t.Helper()
	v, err := r.lib.PromptVersion(context.Background(), id, version)
	if err != nil {
		t.Fatalf("%s v%d: %v", id, version, err)
	}
	return v
}

func TestPromptLibraryCachesImmutableVersions(t *testing.T) {
	r := newLibraryRig(t)
	r.publishElsewhere(t, "p", "one")
	r.publishElsewhere(t, "p", "two")
	for range 5 {
		if v := r.get(t, "p", 1); v.Version != 1 {
			t.Fatalf("got %+v", v)
		}
	}
	r.clock.add(time.Hour) // no expiry for a numbered version
	r.get(t, "p", 1)
	if n := r.store.readCount(); n != 1 {
		t.Fatalf("%d store reads for one version", n)
	}
	// A version the latest lookup brought in is cached too.
	if v := r.get(t, "p", 0); v.Version != 2 {
		t.Fatalf("latest %+v", v)
	}
	r.get(t, "p", 2)
	if n := r.store.readCount(); n != 2 {
		t.Fatalf("%d store reads", n)
	}
}

func TestPromptLibraryLatestTTL(t *testing.T) {
	r := newLibraryRig(t) // default LatestTTL: 1 s
	r.publishElsewhere(t, "p", "one")
	if v := r.get(t, "p", 0); v.Version != 1 {
		t.Fatalf("got %+v", v)
	}
	r.publishElsewhere(t, "p", "two") // another replica
	r.clock.add(900 * time.Millisecond)
	if v := r.get(t, "p", 0); v.Version != 1 {
		t.Fatalf("within the TTL: %+v", v)
	}
	if n := r.store.readCount(); n != 1 {
		t.Fatalf("%d store reads within the TTL", n)
	}
	r.clock.add(200 * time.Millisecond)
	if v := r.get(t, "p", 0); v.Version != 2 {
		t.Fatalf("after the TTL: %+v", v)
	}
	if n := r.store.readCount(); n != 2 {
		t.Fatalf("%d store reads", n)
	}
}

func TestPromptLibraryLatestUncached(t *testing.T) {
	r := newLibraryRig(t, func(o *prompt.LibraryOptions) { o.LatestTTL = -1 })
	r.publishElsewhere(t, "p", "one")
	r.get(t, "p", 0)
	r.get(t, "p", 0)
	if n := r.store.readCount(); n != 2 {
		t.Fatalf("%d store reads, want 2", n)
	}
}

func TestPromptLibraryPublishIsSeenAtOnce(t *testing.T) {
	r := newLibraryRig(t)
	ctx := context.Background()
	if _, err := r.lib.PromptVersion(ctx, "p", 0); !errors.Is(err, prompt.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	v, err := r.lib.PublishPrompt(ctx, "p", prompt.Template{Model: "gpt-4o", Messages: json.RawMessage(`[ {"role": "user", "content": "hi"} ]`)})
	if err != nil || v.Version != 1 || string(v.Messages) != `[{"role":"user","content":"hi"}]` {
		t.Fatalf("publish: %+v %v", v, err)
	}
	reads := r.store.readCount()
	if got := r.get(t, "p", 0); got.Version != 1 || got.Model != "gpt-4o" {
		t.Fatalf("latest after publish %+v", got)
	}
	r.get(t, "p", 1)
	if n := r.store.readCount(); n != reads {
		t.Fatalf("publish did not fill the cache: %d more reads", n-reads)
	}
}

func TestPromptLibraryUnknownPromptIsRemembered(t *testing.T) {
	r := newLibraryRig(t)
	for range 3 {
		_, err := r.lib.PromptVersion(context.Background(), "nope", 0)
		var nf *prompt.NotFoundError
		if !errors.As(err, &nf) || nf.ID != "nope" {
			t.Fatalf("got %v", err)
		}
	}
	if n := r.store.readCount(); n != 1 {
		t.Fatalf("%d store reads for an unknown prompt", n)
	}
	r.publishElsewhere(t, "nope", "now it exists")
	r.clock.add(2 * time.Second)
	if v := r.get(t, "nope", 0); v.Version != 1 {
		t.Fatalf("got %+v", v)
	}
	// An unknown version of a known prompt is not found either.
	if _, err := r.lib.PromptVersion(context.Background(), "nope", 7); !errors.Is(err, prompt.ErrNotFound) || err.Error() != `prompt "nope" version 7 not found` {
		t.Fatalf("got %v", err)
	}
}

func TestPromptLibraryServesStaleLatestWhenTheStoreFails(t *testing.T) {
	r := newLibraryRig(t)
	r.publishElsewhere(t, "p", "one")
	r.get(t, "p", 0)
	down := errors.New("redis: connection refused")
	r.store.setFail(down)
	r.clock.add(5 * time.Second)
	if v := r.get(t, "p", 0); v.Version != 1 {
		t.Fatalf("stale latest: %+v", v)
	}
	// Trusted for another TTL: the outage costs one read per TTL.
	reads := r.store.readCount()
	r.get(t, "p", 0)
	if n := r.store.readCount(); n != reads {
		t.Fatalf("%d more reads during the outage", n-reads)
	}
	// With nothing cached the store's error comes through.
	if _, err := r.lib.PromptVersion(context.Background(), "q", 0); !errors.Is(err, down) {
		t.Fatalf("got %v", err)
	}
	if _, err := r.lib.PromptVersion(context.Background(), "p", 2); !errors.Is(err, down) {
		t.Fatalf("got %v", err)
	}
}

func TestPromptLibraryBoundsItsCache(t *testing.T) {
	r := newLibraryRig(t, func(o *prompt.LibraryOptions) { o.MaxCached = 2 })
	for i := range 5 {
		r.publishElsewhere(t, "p", strconv.Itoa(i))
	}
	for v := 1; v <= 5; v++ {
		r.get(t, "p", v)
	}
	before := r.store.readCount()
	for v := 1; v <= 5; v++ {
		r.get(t, "p", v)
	}
	if again := r.store.readCount() - before; again < 3 {
		t.Fatalf("only %d of 5 versions were read again: the cache holds more than 2", again)
	}
}

func TestPromptLibraryFilesWinOverTheStore(t *testing.T) {
	r := newLibraryRig(t, func(o *prompt.LibraryOptions) {
		o.Dir = filepath.Join("testdata", "prompts", "valid")
		o.PollInterval = -1
	})
	r.publishElsewhere(t, "faq", "from the store")
	r.publishElsewhere(t, "faq", "from the store")
	if v := r.get(t, "faq", 0); v.Version != 1 || v.File != "faq.yml" {
		t.Fatalf("got %+v", v)
	}
	if _, err := r.lib.PromptVersion(context.Background(), "faq", 2); !errors.Is(err, prompt.ErrNotFound) {
		t.Fatalf("v2 of a file prompt: %v", err)
	}
	vs, err := r.lib.PromptVersions(context.Background(), "faq")
	if err != nil || len(vs) != 1 || vs[0].File != "faq.yml" {
		t.Fatalf("versions %+v %v", vs, err)
	}
	_, err = r.lib.PublishPrompt(context.Background(), "faq", tpl("x"))
	var ro *prompt.ReadOnlyError
	if !errors.As(err, &ro) || ro.File != "faq.yml" || !errors.Is(err, prompt.ErrReadOnly) {
		t.Fatalf("publish to a file prompt: %v", err)
	}
	if n := r.store.readCount(); n != 0 {
		t.Fatalf("%d store reads for file prompts", n)
	}
	// Other ids still come from the store.
	r.publishElsewhere(t, "stored", "x")
	if v := r.get(t, "stored", 0); v.File != "" {
		t.Fatalf("got %+v", v)
	}
}

func TestPromptLibraryWithoutStore(t *testing.T) {
	l, err := prompt.NewLibrary(prompt.LibraryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if _, err := l.PublishPrompt(ctx, "p", tpl("x")); !errors.Is(err, prompt.ErrNoStore) {
		t.Fatalf("publish: %v", err)
	}
	if _, err := l.PromptVersion(ctx, "p", 0); !errors.Is(err, prompt.ErrNotFound) {
		t.Fatalf("get: %v", err)
	}
	if _, err := l.PromptVersions(ctx, "p"); !errors.Is(err, prompt.ErrNotFound) {
		t.Fatalf("list: %v", err)
	}
	if l.LoadError() != nil || l.Reload() != nil {
		t.Fatal("no folder, yet a load error")
	}
}

func TestPromptLibraryRejectsBadInput(t *testing.T) {
	r := newLibraryRig(t)
	ctx := context.Background()
	for _, call := range []func() error{
		func() error { _, err := r.lib.PromptVersion(ctx, "a b", 0); return err },
		func() error { _, err := r.lib.PromptVersions(ctx, ""); return err },
		func() error { _, err := r.lib.PublishPrompt(ctx, "a/b", tpl("x")); return err },
		func() error { _, err := r.lib.PublishPrompt(ctx, "ok", prompt.Template{}); return err },
	} {
		if err := call(); !errors.Is(err, prompt.ErrInvalid) {
			t.Errorf("got %v", err)
		}
	}
	if n := r.store.readCount(); n != 0 {
		t.Fatalf("%d store reads for bad input", n)
	}
}

// Unknown prompt ids come from a header anyone may set: neither a tenant's
// renders naming them nor its tagged calls (whose worker checks whether
// the id is published) push another tenant's published prompt out of the
// cache, so that prompt still costs no store round trip and still renders
// while the store is down.
func TestPromptLibraryUnknownIDsDoNotEvictPublishedOnes(t *testing.T) {
	r := newLibraryRig(t, func(o *prompt.LibraryOptions) { o.MaxCached = 10 })
	r.publishElsewhere(t, "acme-faq", "one")
	r.get(t, "acme-faq", 0)
	ctx := context.Background()
	hello := tpl("hello")
	for i := range 200 {
		id := "random-" + strconv.Itoa(i)
		if _, err := r.lib.PromptVersion(ctx, id, 0); !errors.Is(err, prompt.ErrNotFound) {
			t.Fatalf("%s: %v", id, err)
		}
		r.lib.Observe("globex", "observed-"+strconv.Itoa(i), hello)
		r.lib.Flush()
	}
	reads := r.store.readCount()
	r.get(t, "acme-faq", 0)
	if got := r.store.readCount() - reads; got != 0 {
		t.Errorf("acme's prompt cost %d store reads after globex's unknown ids", got)
	}
	r.store.setFail(errors.New("redis: connection refused"))
	r.clock.add(5 * time.Second)
	if v := r.get(t, "acme-faq", 0); v.Version != 1 {
		t.Errorf("during the outage: %+v", v)
	}
}
