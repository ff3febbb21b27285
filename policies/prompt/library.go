package prompt

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollgate-dev/tollgate/policies/internal/poll"
)

// LibraryOptions configure a Library. Zero values get the
// defaults noted.
type LibraryOptions struct {
	// Store keeps published versions. Nil: prompts come from Dir only and
	// PublishPrompt fails with ErrNoStore. When it is a SeenStore too
	// (both stores are), Observe versions tenants' tagged calls into it.
	Store Store
	// Dir is the read-only prompt folder (a mounted ConfigMap); "" for
	// none. Its prompts win over the store's for the same id.
	Dir string
	// PollInterval: how often Dir is checked for changes. Default 2 s;
	// negative: never (call Reload).
	PollInterval time.Duration
	// LatestTTL: how long "the latest version" of a stored prompt is
	// trusted before the store is asked again, so that most requests cost
	// no store round trip and a publish is seen everywhere within it.
	// Default 1 s; negative: ask every time.
	LatestTTL time.Duration
	// MaxCached bounds the versions (and latest pointers, and unknown
	// ids) kept in memory, and the seen prompts Observe remembers, of
	// which one tenant gets at most an eighth. Default 1000.
	MaxCached int
	// MaxSeenVersions bounds the versions Observe makes of one tenant's
	// prompt: an application that tags calls without marking their inputs
	// shows a new template on every call. Default 1000; past it, calls are
	// still tagged, not versioned. (A version costs the store nothing
	// more: it keeps only the latest one's number and sum.)
	MaxSeenVersions int
	// MaxSeenPrompts bounds the prompt ids Observe versions per tenant,
	// since ids come from a header anyone may set. Default 1000; past it,
	// calls are still tagged, not versioned, and counted in
	// tollgate_prompt_seen_over_limit_total. Negative: no seen versioning
	// at all (calls naming a prompt are only tagged).
	MaxSeenPrompts int
	// SeenTTL: how long a tenant's seen prompt is kept after its last new
	// version or recheck (each replica rechecks a prompt in use every 30 s).
	// Default 30 days.
	SeenTTL time.Duration
	// Registerer takes the library's metrics; nil: not registered.
	Registerer prometheus.Registerer
	Now        func() time.Time // default time.Now
	Logger     *slog.Logger     // default: discard
}

// Library resolves prompt versions for the request path from the
// prompt folder and a Store, caching what it read. Versions are
// immutable, so a resolved version is kept until evicted; only "latest"
// expires. It implements Store, so the HTTP API uses it directly. It
// serves published versions only (the operator's, the same for every
// tenant), never a tenant's seen ones.
// The Versions it returns are shared: do not modify them.
type Library struct {
	store     Store
	dir       string
	latestTTL time.Duration
	now       func() time.Time
	log       *slog.Logger

	files   atomic.Pointer[fileSet]
	loadMu  sync.Mutex // one Reload at a time
	seen    [sha256.Size]byte
	loadErr atomic.Pointer[promptLoadError]

	cache  *versionCache
	poller *poll.Poller // nil without a folder to poll

	// Automatic versioning (observe.go); observed is nil without a
	// SeenStore.
	seenStore     SeenStore
	seenLimits    SeenLimits
	seenLimited   prometheus.Counter
	seenMu        sync.Mutex
	seenPrompts   *seenTable     // guarded by seenMu
	queued        map[string]int // tenant → its observations in the queue; guarded by seenMu
	maxVersions   int
	observed      chan observation
	stopObserving chan struct{}
	observerDone  chan struct{}
	closeOnce     sync.Once
}

type promptLoadError struct{ err error }

var _ Store = (*Library)(nil)

// NewLibrary loads Dir (an error there is returned: a bad folder
// should stop a start-up, while later bad edits only keep the last good
// set) and starts polling it. Close stops the polling.
func NewLibrary(o LibraryOptions) (*Library, error) {
	l := &Library{
		store: o.Store, dir: o.Dir, latestTTL: o.LatestTTL, now: o.Now, log: o.Logger,
	}
	if l.latestTTL == 0 {
		l.latestTTL = time.Second
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	maxCached := o.MaxCached
	if maxCached <= 0 {
		maxCached = 1000
	}
	l.cache = newVersionCache(maxCached)
	if l.dir != "" {
		if err := l.Reload(); err != nil {
			return nil, err
		}
	}
	l.seenLimited = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tollgate_prompt_seen_over_limit_total",
		Help: "Calls naming a prompt (Helicone-Prompt-Id) that were tagged but not versioned because their tenant has the most seen prompts allowed.",
	})
	if o.Registerer != nil {
		o.Registerer.MustRegister(l.seenLimited)
	}
	if seen, ok := l.store.(SeenStore); ok && o.MaxSeenPrompts >= 0 {
		l.seenStore, l.seenPrompts, l.queued = seen, newSeenTable(maxCached), make(map[string]int)
		l.maxVersions, l.seenLimits = o.MaxSeenVersions, SeenLimits{MaxPrompts: o.MaxSeenPrompts, TTL: o.SeenTTL}
		if l.maxVersions <= 0 {
			l.maxVersions = 1000
		}
		if l.seenLimits.MaxPrompts <= 0 {
			l.seenLimits.MaxPrompts = 1000
		}
		if l.seenLimits.TTL <= 0 {
			l.seenLimits.TTL = 30 * 24 * time.Hour
		}
		l.observed = make(chan observation, observeQueue)
		l.stopObserving, l.observerDone = make(chan struct{}), make(chan struct{})
		go l.observeLoop()
	}
	if l.dir == "" {
		return l, nil
	}
	every := o.PollInterval
	if every == 0 {
		every = 2 * time.Second
	}
	if every > 0 {
		l.poller = poll.Start(every, func() { _ = l.Reload() })
	}
	return l, nil
}

// Close stops polling the folder and versioning observed templates
// (waiting for the one being stored, if any). The library still answers
// afterwards, from the last files loaded and the store.
func (l *Library) Close() error {
	l.poller.Stop()
	l.closeOnce.Do(func() {
		if l.observed != nil {
			close(l.stopObserving)
			<-l.observerDone
		}
	})
	return nil
}

// Reload reads the folder now and, if its content changed since the last
// attempt, parses it. On success the new set replaces the old; on failure
// the last good set stays in use and the error (every bad file, with its
// line) is returned and kept for LoadError.
func (l *Library) Reload() error {
	if l.dir == "" {
		return nil
	}
	l.loadMu.Lock()
	defer l.loadMu.Unlock()
	files, sum, err := readPromptDir(l.dir)
	if err != nil {
		l.seen = [sha256.Size]byte{}
		l.setLoadError(err)
		return err
	}
	if sum == l.seen && l.files.Load() != nil {
		return l.LoadError() // unchanged since the last attempt
	}
	l.seen = sum
	set, err := parsePromptFiles(l.dir, files)
	if err != nil {
		l.setLoadError(err)
		return err
	}
	l.files.Store(set)
	l.setLoadError(nil)
	l.log.Info("prompt folder loaded", "dir", l.dir, "files", len(files), "prompts", promptFileIDs(set))
	return nil
}

// setLoadError records the outcome of a load, logging changes only: the
// folder is polled every few seconds.
func (l *Library) setLoadError(err error) {
	prev := l.LoadError()
	if err == nil {
		l.loadErr.Store(nil)
		return
	}
	l.loadErr.Store(&promptLoadError{err})
	if prev == nil || prev.Error() != err.Error() {
		l.log.Warn("prompt folder has errors; keeping the last good prompts", "dir", l.dir, "err", err)
	}
}

// LoadError is the error of the last folder load, nil when it succeeded.
func (l *Library) LoadError() error {
	if e := l.loadErr.Load(); e != nil {
		return e.err
	}
	return nil
}

// Version resolves a version (0 = latest): the prompt folder first,
// then the cache, then the store. An unknown id or version is a
// *NotFoundError, a malformed id a *FieldError; any other
// error is the store's (unreachable, timed out). When the store fails and
// an expired "latest" is cached, that one is served instead.
func (l *Library) PromptVersion(ctx context.Context, id string, version int) (Version, error) {
	if err := ValidateID(id); err != nil {
		return Version{}, err
	}
	if version < 0 {
		return Version{}, &NotFoundError{ID: id, Version: version}
	}
	if f := l.files.Load().lookup(id); f != nil {
		if version == 0 {
			return f.versions[len(f.versions)-1], nil
		}
		if version > len(f.versions) {
			return Version{}, &NotFoundError{ID: id, Version: version}
		}
		return f.versions[version-1], nil
	}
	if l.store == nil {
		return Version{}, &NotFoundError{ID: id, Version: version}
	}
	if version > 0 {
		if v, ok := l.cache.version(id, version); ok {
			return v, nil
		}
		v, err := l.store.PromptVersion(ctx, id, version)
		if err == nil && v.Seen {
			err = &NotFoundError{ID: id, Version: version}
		}
		if err != nil {
			return Version{}, err
		}
		l.cache.putVersion(v)
		return v, nil
	}
	return l.latest(ctx, id)
}

// A version marked Seen in the published store was made from some
// tenant's calls before seen versions were kept per tenant (SeenStore):
// it is not the operator's, so it is never served for rendering.

func (l *Library) latest(ctx context.Context, id string) (Version, error) {
	now := l.now()
	e, cached := l.cache.latest(id)
	if cached && l.latestTTL > 0 && now.Sub(e.fetched) < l.latestTTL {
		return e.v, nil
	}
	if at, ok := l.cache.missing(id); ok && l.latestTTL > 0 && now.Sub(at) < l.latestTTL {
		return Version{}, &NotFoundError{ID: id}
	}
	v, err := l.store.PromptVersion(ctx, id, 0)
	if err == nil && v.Seen {
		err = &NotFoundError{ID: id}
	}
	switch {
	case err == nil:
		l.cache.putVersion(v)
		l.cache.putLatest(id, latestEntry{v: v, fetched: now})
		return v, nil
	case errors.Is(err, ErrNotFound):
		// Remembered too, so that a flood of requests naming an unknown
		// prompt costs one store call per LatestTTL.
		l.cache.putMissing(id, now)
		return Version{}, err
	case cached:
		// Trusted for another LatestTTL, so that an outage costs one
		// store timeout per prompt per TTL rather than one per request.
		l.cache.putLatest(id, latestEntry{v: e.v, fetched: now})
		l.log.Warn("prompt store failed; serving the last known latest version", "prompt_id", id, "version", e.v.Version, "err", err)
		return e.v, nil
	}
	return Version{}, err
}

// published says whether id is a published prompt, for Observe: the
// prompt folder's, a cached latest version, else the store's (a version
// marked Seen is not published). Unlike PromptVersion it remembers
// nothing of an id that is not: the worker asks about every id any tenant
// names.
func (l *Library) published(ctx context.Context, id string) (bool, error) {
	if l.files.Load().lookup(id) != nil {
		return true, nil
	}
	if _, ok := l.cache.latest(id); ok {
		return true, nil // published versions are never taken back
	}
	v, err := l.store.PromptVersion(ctx, id, 0)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	case v.Seen:
		return false, nil
	}
	l.cache.putVersion(v)
	l.cache.putLatest(id, latestEntry{v: v, fetched: l.now()})
	return true, nil
}

// PromptVersions lists every version of id: the file's when a file
// defines it, else the store's (not cached: this serves the API).
func (l *Library) PromptVersions(ctx context.Context, id string) ([]Version, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	if f := l.files.Load().lookup(id); f != nil {
		return append([]Version(nil), f.versions...), nil
	}
	if l.store == nil {
		return nil, &NotFoundError{ID: id}
	}
	vs, err := l.store.PromptVersions(ctx, id)
	if err != nil {
		return nil, err
	}
	published := vs[:0:0]
	for _, v := range vs {
		if !v.Seen {
			published = append(published, v)
		}
	}
	if len(published) == 0 {
		return nil, &NotFoundError{ID: id}
	}
	return published, nil
}

// PublishPrompt checks and normalizes tpl and appends it to the store. An
// id the prompt folder defines is a *ReadOnlyError; a bad id or
// template a *FieldError.
func (l *Library) PublishPrompt(ctx context.Context, id string, tpl Template) (Version, error) {
	if err := ValidateID(id); err != nil {
		return Version{}, err
	}
	tpl, err := NormalizeTemplate(tpl)
	if err != nil {
		return Version{}, err
	}
	if f := l.files.Load().lookup(id); f != nil {
		return Version{}, &ReadOnlyError{ID: id, File: f.name}
	}
	if l.store == nil {
		return Version{}, ErrNoStore
	}
	v, err := l.store.PublishPrompt(ctx, id, tpl)
	if err != nil {
		return Version{}, err
	}
	// This replica sees its own publish at once; others within LatestTTL.
	now := l.now()
	l.cache.putVersion(v)
	l.cache.putLatest(id, latestEntry{v: v, fetched: now})
	return v, nil
}
