package prompt

import (
	"context"
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
// with (the record's prompt_version) and are never rendered, so the store
// keeps only the latest version's number and template sum. Rendering
// reads published prompts only, so one tenant's traffic can neither show
// its template to another tenant nor change what another tenant's calls
// render; and since prompt ids come from a header, one tenant gets only a
// share of the worker's queue and of what the process remembers.

const (
	// observeQueue bounds the templates waiting for the worker; beyond it
	// observations are dropped (the next call brings the template again).
	observeQueue = 256
	// observeQueueShare: the places of the queue one tenant's templates
	// may take, so that a tenant naming ever new ids leaves room for the
	// others'.
	observeQueueShare = observeQueue / 8
	// seenRecheck is how long what this process knows of a prompt's
	// latest version is trusted before the worker asks the store again,
	// so that versions recorded by other replicas are noticed.
	seenRecheck = 30 * time.Second
	// observeTimeout bounds the worker's store calls for one template.
	observeTimeout = 2 * time.Second
	// maxSeenTemplate: a larger template (messages and system) is not
	// versioned, so that a call with a template new to the process costs
	// the request path at most this much parsing and hashing.
	maxSeenTemplate = 256 << 10
)

// seenKey names one tenant's prompt.
type seenKey struct{ tenant, id string }

type observation struct {
	key  seenKey
	sum  TemplateSum
	done chan struct{} // set for a Flush marker, which carries nothing else
}

// seenEntry is what the process knows of one tenant's prompt.
type seenEntry struct {
	sum     TemplateSum // its latest seen template; zero when not known yet
	version int         // its number; 0 when not known yet
	// published: the id is a published prompt (API or file), or the
	// tenant's prompt has MaxSeenVersions versions, so calls naming it
	// only tag it and never version it (rechecked every seenRecheck).
	published bool
	// limited: the tenant has MaxSeenPrompts other seen prompts, so this
	// one is not versioned (rechecked every seenRecheck).
	limited bool
	checked time.Time
	pending TemplateSum // a template on its way to the worker
}

// Observe records that a call of tenant named prompt id with template tpl
// (from TemplateOf, of the body with its markers closed) and returns the
// number of tenant's seen version holding that template when this
// process knows it, else 0. It never waits for the store: a template that
// is new to the process is handed to a background worker, which records
// it as tenant's next seen version when it differs from the latest one.
// An id that is a published prompt (API or file) is never versioned this
// way, and nor is one without a SeenStore (or with seen versioning off),
// with an id the store cannot hold, or past the tenant's MaxSeenPrompts
// (counted in the metric).
func (l *Library) Observe(tenant, id string, tpl Template) int {
	if l.observed == nil || len(tpl.Messages)+len(tpl.System) > maxSeenTemplate ||
		ValidateID(id) != nil || l.files.Load().lookup(id) != nil {
		return 0
	}
	k := seenKey{tenant, id}
	// A template from TemplateOf is already normalized: its sum is
	// checked first, so that an unchanged template costs no second parse.
	sum := SumTemplate(tpl)
	if n, ok := l.knownVersion(k, sum); ok {
		return n
	}
	tpl, err := NormalizeTemplate(tpl)
	if err != nil {
		return 0
	}
	sum = SumTemplate(tpl)
	now := l.now()

	l.seenMu.Lock()
	e, known := l.seenPrompts.get(k)
	fresh := known && now.Sub(e.checked) < seenRecheck
	version := 0
	if known && e.sum == sum {
		version = e.version
	}
	if fresh && (e.sum == sum || e.published || e.limited) || e.pending == sum ||
		l.queued[tenant] >= observeQueueShare {
		l.seenMu.Unlock()
		if fresh && e.limited && e.sum != sum {
			l.seenLimited.Inc()
		}
		return version
	}
	e.pending = sum
	l.seenPrompts.put(k, e)
	l.queued[tenant]++
	l.seenMu.Unlock()

	select {
	case l.observed <- observation{key: k, sum: sum}:
	default:
		l.dequeued(tenant)
		l.clearPending(k, sum)
	}
	return version
}

// knownVersion answers for a template this process knows as the latest
// version of k, until that knowledge is due for a recheck.
func (l *Library) knownVersion(k seenKey, sum TemplateSum) (int, bool) {
	now := l.now()
	l.seenMu.Lock()
	defer l.seenMu.Unlock()
	e, ok := l.seenPrompts.get(k)
	if !ok || e.sum != sum || now.Sub(e.checked) >= seenRecheck {
		return 0, false
	}
	return e.version, true
}

// learn records what the worker found out about k.
func (l *Library) learn(k seenKey, e seenEntry) {
	l.seenMu.Lock()
	defer l.seenMu.Unlock()
	l.seenPrompts.put(k, e)
}

// clearPending forgets that sum is on its way to the worker, so that the
// next call with it tries again; an entry evicted meanwhile stays out.
func (l *Library) clearPending(k seenKey, sum TemplateSum) {
	l.seenMu.Lock()
	defer l.seenMu.Unlock()
	if e, ok := l.seenPrompts.get(k); ok && e.pending == sum {
		e.pending = TemplateSum{}
		l.seenPrompts.put(k, e)
	}
}

// dequeued gives back the queue place one of tenant's templates held.
func (l *Library) dequeued(tenant string) {
	l.seenMu.Lock()
	defer l.seenMu.Unlock()
	if l.queued[tenant]--; l.queued[tenant] <= 0 {
		delete(l.queued, tenant)
	}
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
			l.dequeued(o.key.tenant)
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
		l.clearPending(k, o.sum)
	}
	// A published prompt belongs to its publisher: calls naming it are
	// tagged, never versioned.
	published, err := l.published(ctx, k.id)
	switch {
	case err != nil:
		failed("store unavailable", err)
		return
	case published:
		l.learn(k, seenEntry{published: true, checked: l.now()})
		return
	}
	latest, err := l.seenStore.LatestSeen(ctx, k.tenant, k.id, l.seenLimits)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		failed("store unavailable", err)
		return
	case latest.Sum == o.sum || latest.Version >= l.maxVersions:
		// Unchanged, or at the cap: nothing to write. At the cap the entry
		// holds the latest version's sum, so other templates come back
		// here once per recheck, not once per call.
		l.learn(k, seenEntry{sum: latest.Sum, version: latest.Version,
			published: latest.Version >= l.maxVersions, checked: l.now()})
		return
	}
	v, err := l.seenStore.RecordSeen(ctx, k.tenant, k.id, latest.Version, o.sum, l.seenLimits)
	switch {
	case errors.Is(err, ErrSeenLimit):
		l.seenLimited.Inc()
		l.learn(k, seenEntry{limited: true, checked: l.now()})
		return
	case err != nil:
		failed("recording failed", err)
		return
	}
	l.learn(k, seenEntry{sum: o.sum, version: v.Version, checked: l.now()})
}
