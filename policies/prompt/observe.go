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
// worker that compares it with the store and publishes.

const (
	// observeQueue bounds the templates waiting for the worker; beyond it
	// observations are dropped (the next call brings the template again).
	observeQueue = 256
	// seenRecheck is how long what this process knows of a prompt's
	// latest version is trusted before the worker asks the store again,
	// so that versions published by other replicas are noticed.
	seenRecheck = 30 * time.Second
	// observeTimeout bounds the worker's store calls for one template.
	observeTimeout = 2 * time.Second
	// maxSeenTemplate: a larger template (messages and system) is not
	// versioned, so that the versions of a prompt stay small in Redis.
	maxSeenTemplate = 256 << 10
)

type observation struct {
	id  string
	tpl Template
	sum [sha256.Size]byte
}

// seenEntry is what the process knows of one prompt's latest version.
type seenEntry struct {
	sum     [sha256.Size]byte // its template; zero when not known yet
	version int               // its number; 0 when not known yet
	// published: the latest version was published (API or file), or
	// the prompt has MaxSeenVersions versions, so calls naming the prompt
	// only tag it and never version it (rechecked every seenRecheck).
	published bool
	checked   time.Time
	pending   [sha256.Size]byte // a template on its way to the worker
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

// Observe records that a call named prompt id with template tpl (from
// TemplateOf, of the body with its markers closed) and returns the
// number of the version holding that template when this process knows
// it, else 0. It never waits for the store: a template that is new to
// the process is handed to a background worker, which publishes it as
// the next version (marked Seen) when it differs from the latest one.
// A prompt whose latest version was published through the API or a file
// is never versioned this way, and nor is one without a store or with an
// id the store cannot hold.
func (l *Library) Observe(id string, tpl Template) int {
	if l.store == nil || l.observed == nil || len(tpl.Messages)+len(tpl.System) > maxSeenTemplate ||
		ValidateID(id) != nil || l.files.Load().lookup(id) != nil {
		return 0
	}
	// A template from TemplateOf is already normalized: its sum is
	// checked first, so that an unchanged template costs no second parse.
	sum := templateSum(tpl)
	if n, ok := l.knownVersion(id, sum); ok {
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
	e, known := l.seenPrompts[id]
	fresh := known && now.Sub(e.checked) < seenRecheck
	version := 0
	if known && e.sum == sum {
		version = e.version
	}
	if fresh && (e.sum == sum || e.published) || e.pending == sum {
		l.seenMu.Unlock()
		return version
	}
	if !known && len(l.seenPrompts) >= l.maxSeen {
		for k := range l.seenPrompts {
			delete(l.seenPrompts, k)
			break
		}
	}
	e.pending = sum
	l.seenPrompts[id] = e
	l.seenMu.Unlock()

	select {
	case l.observed <- observation{id: id, tpl: tpl, sum: sum}:
	default:
		l.settle(id, func(e *seenEntry) { e.pending = [sha256.Size]byte{} })
	}
	return version
}

// knownVersion answers for a template this process knows as the latest
// version of id, until that knowledge is due for a recheck.
func (l *Library) knownVersion(id string, sum [sha256.Size]byte) (int, bool) {
	now := l.now()
	l.seenMu.Lock()
	defer l.seenMu.Unlock()
	e, ok := l.seenPrompts[id]
	if !ok || e.sum != sum || now.Sub(e.checked) >= seenRecheck {
		return 0, false
	}
	return e.version, true
}

// settle changes the entry of id under the lock.
func (l *Library) settle(id string, change func(e *seenEntry)) {
	l.seenMu.Lock()
	defer l.seenMu.Unlock()
	e := l.seenPrompts[id]
	change(&e)
	l.seenPrompts[id] = e
}

func (l *Library) observeLoop() {
	defer close(l.observerDone)
	for {
		select {
		case <-l.stopObserving:
			return
		case o := <-l.observed:
			l.version(o)
		}
	}
}

// version compares an observed template with the prompt's latest
// version and publishes it when it differs.
func (l *Library) version(o observation) {
	ctx, cancel := context.WithTimeout(context.Background(), observeTimeout)
	defer cancel()
	latest, err := l.store.PromptVersion(ctx, o.id, 0)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		l.log.Debug("prompt versioning: store unavailable", "prompt_id", o.id, "err", err)
		l.settle(o.id, func(e *seenEntry) { e.pending = [sha256.Size]byte{} })
		return
	case !latest.Seen || templateSum(latest.Template) == o.sum || latest.Version >= l.maxVersions:
		// Published, unchanged, or at the cap: nothing to write. At the
		// cap the entry holds the latest version's template, so other
		// templates come back here once per recheck, not once per call.
		now := l.now()
		l.settle(o.id, func(e *seenEntry) {
			*e = seenEntry{sum: templateSum(latest.Template), version: latest.Version,
				published: !latest.Seen || latest.Version >= l.maxVersions, checked: now}
		})
		return
	}
	var v Version
	if cp, ok := l.store.(ConditionalPublisher); ok {
		// latest.Version is 0 when the prompt had none.
		v, err = cp.PublishPromptAfter(ctx, o.id, latest.Version, o.tpl)
	} else {
		v, err = l.store.PublishPrompt(ctx, o.id, o.tpl)
	}
	if err != nil {
		l.log.Debug("prompt versioning: publish failed", "prompt_id", o.id, "err", err)
		l.settle(o.id, func(e *seenEntry) { e.pending = [sha256.Size]byte{} })
		return
	}
	now := l.now()
	l.cache.putVersion(v)
	l.cache.putLatest(o.id, latestEntry{v: v, fetched: now})
	l.settle(o.id, func(e *seenEntry) { *e = seenEntry{sum: o.sum, version: v.Version, checked: now} })
}
