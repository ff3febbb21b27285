package prompt

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"
)

// Helicone versions a legacy prompt from what it sees: each call naming
// Helicone-Prompt-Id carries the template (its messages, markers closed),
// and when that differs from the prompt's latest version it becomes the
// next one. Observe does the same without costing the request path a
// store round trip: what this process last knew of each prompt's latest
// template is kept in memory, an unchanged template is answered from
// there, and a changed (or unknown, or stale) one goes to a background
// worker that compares it with the store and records it.
//
// These versions are the calling tenant's, kept apart from the published
// prompts in a SeenStore: they number the template each call was made
// with (the record's prompt_version) and are never rendered. Rendering
// reads published prompts only, so one tenant's traffic can neither show
// its template to another tenant nor change what another tenant's calls
// render.

const (
	// observeQueue bounds the templates waiting for the worker; beyond it
	// observations are dropped (the next call brings the template again).
	observeQueue = 256
	// seenRecheck is how long what this process knows of a prompt's
	// latest version is trusted before the worker asks the store again,
	// so that versions recorded by other replicas are noticed.
	seenRecheck = 30 * time.Second
	// observeTimeout bounds the worker's store calls for one template.
	observeTimeout = 2 * time.Second
	// maxSeenTemplate: a larger template (messages and system) is not
	// versioned, so that the versions of a prompt stay small in Redis.
	maxSeenTemplate = 256 << 10
)

// seenKey names one tenant's prompt.
type seenKey struct{ tenant, id string }

type observation struct {
	key  seenKey
	tpl  Template
	sum  [sha256.Size]byte
	done chan struct{} // set for a Flush marker, which carries nothing else
}

// seenEntry is what the process knows of one tenant's prompt.
type seenEntry struct {
	sum     [sha256.Size]byte // its latest seen template; zero when not known yet
	version int               // its number; 0 when not known yet
	// published: the id is a published prompt (API or file), or the
	// tenant's prompt has MaxSeenVersions versions, so calls naming it
	// only tag it and never version it (rechecked every seenRecheck).
	published bool
	// limited: the tenant has MaxSeenPrompts other seen prompts, so this
	// one is not versioned (rechecked every seenRecheck).
	limited bool
	checked time.Time
	pending [sha256.Size]byte // a template on its way to the worker
}

func templateSum(t Template) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(t.Model))
	h.Write([]byte{0})
	h.Write(t.Messages)
	h.Write([]byte{0})
	h.Write(t.System)
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return s
}

// Observe records that a call of tenant named prompt id with template tpl
// (from TemplateOf, of the body with its markers closed) and returns the
// number of tenant's seen version holding that template when this
// process knows it, else 0. It never waits for the store: a template that
// is new to the process is handed to a background worker, which records
// it as tenant's next seen version when it differs from the latest one.
// An id that is a published prompt (API or file) is never versioned this
// way, and nor is one without a SeenStore, with an id the store cannot
// hold, or past the tenant's MaxSeenPrompts (counted in the metric).
func (l *Library) Observe(tenant, id string, tpl Template) int {
	if l.observed == nil || len(tpl.Messages)+len(tpl.System) > maxSeenTemplate ||
		ValidateID(id) != nil || l.files.Load().lookup(id) != nil {
		return 0
	}
	k := seenKey{tenant, id}
	// A template from TemplateOf is already normalized: its sum is
	// checked first, so that an unchanged template costs no second parse.
	sum := templateSum(tpl)
	if n, ok := l.knownVersion(k, sum); ok {
		return n
	}
	tpl.Seen = true
	tpl, err := NormalizeTemplate(tpl)
	if err != nil {
		return 0
	}
	sum = templateSum(tpl)
	now := l.now()

	l.seenMu.Lock()
	e, known := l.seenPrompts[k]
	fresh := known && now.Sub(e.checked) < seenRecheck
	version := 0
	if known && e.sum == sum {
		version = e.version
	}
	if fresh && (e.sum == sum || e.published || e.limited) || e.pending == sum {
		l.seenMu.Unlock()
		if fresh && e.limited && e.sum != sum {
			l.seenLimited.Inc()
		}
		return version
	}
	if !known && len(l.seenPrompts) >= l.maxSeen {
		for old := range l.seenPrompts {
			delete(l.seenPrompts, old)
			break
		}
	}
	e.pending = sum
	l.seenPrompts[k] = e
	l.seenMu.Unlock()

	select {
	case l.observed <- observation{key: k, tpl: tpl, sum: sum}:
	default:
		l.settle(k, func(e *seenEntry) { e.pending = [sha256.Size]byte{} })
	}
	return version
}

// knownVersion answers for a template this process knows as the latest
// version of k, until that knowledge is due for a recheck.
func (l *Library) knownVersion(k seenKey, sum [sha256.Size]byte) (int, bool) {
	now := l.now()
	l.seenMu.Lock()
	defer l.seenMu.Unlock()
	e, ok := l.seenPrompts[k]
	if !ok || e.sum != sum || now.Sub(e.checked) >= seenRecheck {
		return 0, false
	}
	return e.version, true
}

// settle changes the entry of k under the lock.
func (l *Library) settle(k seenKey, change func(e *seenEntry)) {
	l.seenMu.Lock()
	defer l.seenMu.Unlock()
	e := l.seenPrompts[k]
	change(&e)
	l.seenPrompts[k] = e
}

// Flush waits until the worker has handled every template observed
// before the call (a test's sync point; also for a drain). It returns at
// once after Close, or without a SeenStore.
func (l *Library) Flush() {
	if l.observed == nil {
		return
	}
	done := make(chan struct{})
	select {
	case l.observed <- observation{done: done}:
	case <-l.observerDone:
		return
	}
	select {
	case <-done:
	case <-l.observerDone:
	}
}

func (l *Library) observeLoop() {
	defer close(l.observerDone)
	for {
		select {
		case <-l.stopObserving:
			return
		case o := <-l.observed:
			if o.done != nil {
				close(o.done)
				continue
			}
			l.version(o)
		}
	}
}

// version compares an observed template with the tenant's latest seen
// version and records it when it differs.
func (l *Library) version(o observation) {
	ctx, cancel := context.WithTimeout(context.Background(), observeTimeout)
	defer cancel()
	k := o.key
	failed := func(what string, err error) {
		l.log.Debug("prompt versioning: "+what, "prompt_id", k.id, "err", err)
		l.settle(k, func(e *seenEntry) { e.pending = [sha256.Size]byte{} })
	}
	// A published prompt belongs to its publisher: calls naming it are
	// tagged, never versioned.
	_, err := l.PromptVersion(ctx, k.id, 0)
	switch {
	case err == nil:
		now := l.now()
		l.settle(k, func(e *seenEntry) { *e = seenEntry{published: true, checked: now} })
		return
	case !errors.Is(err, ErrNotFound):
		failed("store unavailable", err)
		return
	}
	latest, err := l.seenStore.LatestSeen(ctx, k.tenant, k.id, l.seenLimits)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		failed("store unavailable", err)
		return
	case templateSum(latest.Template) == o.sum || latest.Version >= l.maxVersions:
		// Unchanged, or at the cap: nothing to write. At the cap the entry
		// holds the latest version's template, so other templates come
		// back here once per recheck, not once per call.
		now := l.now()
		l.settle(k, func(e *seenEntry) {
			*e = seenEntry{sum: templateSum(latest.Template), version: latest.Version,
				published: latest.Version >= l.maxVersions, checked: now}
		})
		return
	}
	v, err := l.seenStore.RecordSeen(ctx, k.tenant, k.id, latest.Version, o.tpl, l.seenLimits)
	switch {
	case errors.Is(err, ErrSeenLimit):
		l.seenLimited.Inc()
		now := l.now()
		l.settle(k, func(e *seenEntry) { *e = seenEntry{limited: true, checked: now} })
		return
	case err != nil:
		failed("recording failed", err)
		return
	}
	now := l.now()
	l.settle(k, func(e *seenEntry) { *e = seenEntry{sum: o.sum, version: v.Version, checked: now} })
}
