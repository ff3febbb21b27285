package prompt_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/policies/prompt"
	"github.com/tollgate-dev/tollgate/storage/memstore"
)

// seenRig is a library over an in-process store, with the store's seen
// side visible to the test.
type seenRig struct {
	lib   *prompt.Library
	store *countingPromptStore
	mem   *memstore.PromptStore
	reg   *prometheus.Registry
}

func newSeenRig(t *testing.T, tweak ...func(*prompt.LibraryOptions)) *seenRig {
	t.Helper()
	mem := memstore.NewPromptStore(memstore.PromptOptions{})
	r := &seenRig{store: &countingPromptStore{bothStores: mem}, mem: mem, reg: prometheus.NewRegistry()}
	o := prompt.LibraryOptions{Store: r.store, Registerer: r.reg}
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

// observe hands a template to the worker and waits until it is handled.
func (r *seenRig) observe(tenant, id string, tpl prompt.Template) int {
	r.lib.Observe(tenant, id, tpl)
	r.lib.Flush()
	return r.lib.Observe(tenant, id, tpl)
}

func (r *seenRig) seenVersions(t *testing.T, tenant, id string) int {
	t.Helper()
	v, err := r.mem.LatestSeen(context.Background(), tenant, id, prompt.SeenLimits{TTL: time.Hour})
	if errors.Is(err, prompt.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return v.Version
}

// Helicone versions a legacy prompt when the template it sees differs
// from the latest stored one, and only then (PromptStore.upsertPromptV2,
// worker/src/lib/db/PromptStore.ts: deepCompare, major_version + 1).
// Observe does so off the request path, and an unchanged template costs
// no store call.
func TestObserveVersionsChangedTemplates(t *testing.T) {
	r := newSeenRig(t)
	a := prompt.Template{Model: "gpt-4o", Messages: json.RawMessage(`[{"role":"user","content":"About <helicone-prompt-input key=\"t\" />"}]`)}
	b := prompt.Template{Model: "gpt-4o", Messages: json.RawMessage(`[{"role":"user","content":"Tell me about <helicone-prompt-input key=\"t\" />"}]`)}

	if n := r.lib.Observe("acme", "story", a); n != 0 {
		t.Errorf("first sight: version %d, want 0 (not known yet)", n)
	}
	r.lib.Flush()
	if n := r.lib.Observe("acme", "story", a); n != 1 {
		t.Fatalf("after the worker: version %d, want 1", n)
	}
	v, err := r.mem.LatestSeen(context.Background(), "acme", "story", prompt.SeenLimits{TTL: time.Hour})
	if err != nil || v.Version != 1 || v.Sum != prompt.SumTemplate(a) {
		t.Fatalf("stored %+v %v", v, err)
	}
	reads := r.store.readCount()
	for range 100 {
		if n := r.lib.Observe("acme", "story", a); n != 1 {
			t.Fatalf("unchanged template: version %d", n)
		}
	}
	if got := r.store.readCount(); got != reads {
		t.Errorf("unchanged template cost %d store reads", got-reads)
	}
	if n := r.observe("acme", "story", b); n != 2 {
		t.Errorf("a changed template: version %d, want 2", n)
	}
	// Back to a: a new version, as deepCompare with the latest has it.
	if n := r.observe("acme", "story", a); n != 3 {
		t.Errorf("back to the first template: version %d, want 3", n)
	}
}

// Seen versions are the tenant's: another tenant naming the same prompt
// gets its own numbering, and neither can render them, nor reach them
// through the published prompts.
func TestObserveKeepsTenantsApart(t *testing.T) {
	r := newSeenRig(t)
	secret := prompt.Template{Messages: json.RawMessage(`[{"role":"system","content":"acme's secret instructions"}]`)}
	mine := prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"globex's own"}]`)}
	if n := r.observe("acme", "shared", secret); n != 1 {
		t.Fatalf("acme: version %d", n)
	}
	if n := r.observe("globex", "shared", mine); n != 1 {
		t.Fatalf("globex: version %d, want its own version 1", n)
	}
	if n := r.observe("acme", "shared", secret); n != 1 {
		t.Errorf("acme's prompt moved to version %d after globex's calls", n)
	}
	ctx := context.Background()
	if v, err := r.lib.PromptVersion(ctx, "shared", 0); !errors.Is(err, prompt.ErrNotFound) {
		t.Errorf("a seen template is served for rendering: %+v %v", v, err)
	}
	if v, err := r.lib.PromptVersion(ctx, "shared", 1); !errors.Is(err, prompt.ErrNotFound) {
		t.Errorf("a seen version is served for rendering: %+v %v", v, err)
	}
	if _, err := r.lib.PromptVersions(ctx, "shared"); !errors.Is(err, prompt.ErrNotFound) {
		t.Errorf("seen versions are listed as published: %v", err)
	}
}

// A version marked seen in the published store (made before seen versions
// were kept per tenant) is not served for rendering either.
func TestLibraryServesNoSeenVersionOfThePublishedStore(t *testing.T) {
	r := newSeenRig(t)
	ctx := context.Background()
	old := tpl("some tenant's template")
	old.Seen = true
	if _, err := r.mem.PublishPrompt(ctx, "legacy", old); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1} {
		if v, err := r.lib.PromptVersion(ctx, "legacy", n); !errors.Is(err, prompt.ErrNotFound) {
			t.Errorf("version %d: %+v %v, want not found", n, v, err)
		}
	}
	if _, err := r.lib.PromptVersions(ctx, "legacy"); !errors.Is(err, prompt.ErrNotFound) {
		t.Errorf("listed: %v", err)
	}
	published := publishTpl(t, r.mem, "legacy", "the operator's")
	if v, err := r.lib.PromptVersion(ctx, "legacy", 2); err != nil || v.Version != published.Version {
		t.Errorf("the published version: %+v %v", v, err)
	}
	if vs, err := r.lib.PromptVersions(ctx, "legacy"); err != nil || len(vs) != 1 || vs[0].Version != 2 {
		t.Errorf("listed %+v %v, want only version 2", vs, err)
	}
}

func publishTpl(t *testing.T, s prompt.Store, id, content string) prompt.Version {
	t.Helper()
	v, err := s.PublishPrompt(context.Background(), id, tpl(content))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A prompt published through the API belongs to its publisher: calls
// naming it are tagged, never versioned.
func TestObserveLeavesPublishedPrompts(t *testing.T) {
	r := newSeenRig(t)
	publishTpl(t, r.mem, "support", "{{company}}")
	other := prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"hello"}]`)}
	if n := r.observe("acme", "support", other); n != 0 {
		t.Errorf("published prompt: version %d", n)
	}
	r.lib.Observe("acme", "bad/id", other)
	huge := prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"` + strings.Repeat("x", 300<<10) + `"}]`)}
	r.observe("acme", "huge", huge)
	if n := r.observe("acme", "fresh", other); n != 1 {
		t.Errorf("fresh prompt: version %d", n)
	}
	if n := r.seenVersions(t, "acme", "support"); n != 0 {
		t.Errorf("published prompt got %d seen versions", n)
	}
	if n := r.seenVersions(t, "acme", "huge"); n != 0 {
		t.Error("a template over 256 KiB was versioned")
	}
}

// staleReads answers "no seen version" while the store has one: another
// replica recorded it between the read and the write.
type staleReads struct {
	*memstore.PromptStore
}

func (s staleReads) LatestSeen(ctx context.Context, tenant, id string, l prompt.SeenLimits) (prompt.Seen, error) {
	return prompt.Seen{}, &prompt.NotFoundError{ID: id}
}

// Two replicas seeing the same new template must not both record it: the
// write lands only on the version read.
func TestObserveDoesNotStackARacedVersion(t *testing.T) {
	mem := memstore.NewPromptStore(memstore.PromptOptions{})
	same := prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"same"}]`)}
	lim := prompt.SeenLimits{MaxPrompts: 10, TTL: time.Hour}
	if _, err := mem.RecordSeen(context.Background(), "acme", "raced", 0, prompt.SumTemplate(same), lim); err != nil {
		t.Fatal(err)
	}
	lib, err := prompt.NewLibrary(prompt.LibraryOptions{Store: staleReads{mem}})
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	lib.Observe("acme", "raced", same)
	lib.Flush()
	if v, _ := mem.LatestSeen(context.Background(), "acme", "raced", lim); v.Version != 1 {
		t.Errorf("version %d: the raced template was recorded again", v.Version)
	}
}

// An application that names a prompt without marking its inputs shows a
// new template on every call; the store stops growing at
// MaxSeenVersions, and the calls are still answered from memory.
func TestObserveStopsAtMaxSeenVersions(t *testing.T) {
	r := newSeenRig(t, func(o *prompt.LibraryOptions) { o.MaxSeenVersions = 2 })
	tplN := func(n int) prompt.Template {
		return prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"question ` + string(rune('a'+n)) + `"}]`)}
	}
	for n := range 2 {
		if v := r.observe("acme", "chatty", tplN(n)); v != n+1 {
			t.Fatalf("template %d: version %d", n, v)
		}
	}
	r.lib.Observe("acme", "chatty", tplN(2))
	r.lib.Flush() // the worker has found the cap
	reads := r.store.readCount()
	for n := 3; n < 20; n++ {
		if v := r.lib.Observe("acme", "chatty", tplN(n)); v != 0 {
			t.Fatalf("template %d: version %d", n, v)
		}
	}
	r.lib.Flush() // and handled whatever those calls queued
	if n := r.seenVersions(t, "acme", "chatty"); n != 2 {
		t.Errorf("%d versions, want the cap of 2", n)
	}
	if got := r.store.readCount() - reads; got != 0 {
		t.Errorf("templates past the cap cost %d store reads", got)
	}
}

// Prompt ids come from a header: a tenant naming ever new ones stops
// being versioned at MaxSeenPrompts, its calls still tagged and counted;
// other tenants are not affected.
func TestObserveStopsAtMaxSeenPrompts(t *testing.T) {
	r := newSeenRig(t, func(o *prompt.LibraryOptions) { o.MaxSeenPrompts = 2 })
	hello := prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"hello"}]`)}
	for _, id := range []string{"p1", "p2"} {
		if v := r.observe("acme", id, hello); v != 1 {
			t.Fatalf("%s: version %d", id, v)
		}
	}
	if v := r.observe("acme", "p3", hello); v != 0 {
		t.Errorf("a third prompt: version %d, want none", v)
	}
	if n := r.seenVersions(t, "acme", "p3"); n != 0 {
		t.Errorf("a third prompt was stored (%d versions)", n)
	}
	if got := counterValue(t, r.reg, "tollgate_prompt_seen_over_limit_total"); got < 2 {
		t.Errorf("over-limit calls counted %v, want at least 2", got)
	}
	if v := r.observe("globex", "p3", hello); v != 1 {
		t.Errorf("another tenant: version %d", v)
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// heldSeen keeps the worker in LatestSeen until release is closed.
type heldSeen struct {
	*memstore.PromptStore
	release chan struct{}
}

func (h heldSeen) LatestSeen(ctx context.Context, tenant, id string, l prompt.SeenLimits) (prompt.Seen, error) {
	<-h.release
	return h.PromptStore.LatestSeen(ctx, tenant, id, l)
}

// A tenant naming ever new prompt ids faster than the worker keeps up
// takes only its share of the queue: another tenant's template still gets
// versioned.
func TestObserveSharesTheQueueBetweenTenants(t *testing.T) {
	mem := memstore.NewPromptStore(memstore.PromptOptions{})
	release := make(chan struct{})
	lib, err := prompt.NewLibrary(prompt.LibraryOptions{Store: heldSeen{mem, release}})
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	hello := prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"hello"}]`)}
	for i := range 1000 {
		lib.Observe("globex", "random-"+strconv.Itoa(i), hello)
	}
	mine := prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"acme's"}]`)}
	lib.Observe("acme", "mine", mine)
	close(release)
	lib.Flush()
	if n := lib.Observe("acme", "mine", mine); n != 1 {
		t.Errorf("acme's template: version %d after globex's flood, want 1", n)
	}
	stored := 0
	for i := range 1000 {
		if _, err := mem.LatestSeen(context.Background(), "globex", "random-"+strconv.Itoa(i), prompt.SeenLimits{TTL: time.Hour}); err == nil {
			stored++
		}
	}
	if stored == 0 || stored > 256/8+1 {
		t.Errorf("%d of globex's templates were versioned, want at most its share of the queue (and the one in hand)", stored)
	}
}

// What the process remembers of seen prompts is shared the same way: a
// tenant naming ever new ids, or many tenants at once, do not push out
// another tenant's prompt, whose unchanged template stays free of store
// round trips.
func TestObserveSharesItsMemoryBetweenTenants(t *testing.T) {
	r := newSeenRig(t, func(o *prompt.LibraryOptions) { o.MaxCached = 80 }) // 10 per tenant
	mine := prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"acme's"}]`)}
	if n := r.observe("acme", "mine", mine); n != 1 {
		t.Fatalf("acme: version %d", n)
	}
	hello := prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"hello"}]`)}
	for i := range 200 {
		r.observe("globex", "random-"+strconv.Itoa(i), hello)
	}
	for tenant := range 20 {
		for i := range 10 {
			r.observe("tenant-"+strconv.Itoa(tenant), "p"+strconv.Itoa(i), hello)
		}
	}
	reads := r.store.readCount()
	if n := r.lib.Observe("acme", "mine", mine); n != 1 {
		t.Errorf("acme: version %d after the others' calls", n)
	}
	if got := r.store.readCount() - reads; got != 0 {
		t.Errorf("acme's unchanged template cost %d store reads: it was forgotten", got)
	}
}

// MaxSeenPrompts below zero turns seen versioning off: calls are tagged
// only, and the store is not asked.
func TestObserveOff(t *testing.T) {
	r := newSeenRig(t, func(o *prompt.LibraryOptions) { o.MaxSeenPrompts = -1 })
	hello := prompt.Template{Messages: json.RawMessage(`[{"role":"user","content":"hello"}]`)}
	if n := r.observe("acme", "p", hello); n != 0 {
		t.Errorf("version %d", n)
	}
	if n := r.seenVersions(t, "acme", "p"); n != 0 {
		t.Errorf("%d versions stored", n)
	}
	if n := r.store.readCount(); n != 0 {
		t.Errorf("%d store reads", n)
	}
}
