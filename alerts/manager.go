package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// MetricSource measures a rule's metric over the requests of a scope with
// created_at in [from, to), across all tenants. chquery.(*Requests) is one.
type MetricSource interface {
	AlertMetric(ctx context.Context, m Metric, s Scope, from, to time.Time) (float64, error)
}

// Store keeps the API's rules and the events where every replica sees
// them and a restart finds them (chquery.(*Alerts) keeps them in
// ClickHouse). Rules and events are never updated in place: a change is a
// new row, and of the rows of one rule or event the one with the highest
// Version wins.
type Store interface {
	// PutRule writes a row of a rule.
	PutRule(ctx context.Context, r StoredRule) error
	// Rules returns the winning row of every rule (deleted ones too), by
	// id, or of one rule when id is not empty.
	Rules(ctx context.Context, id string) ([]StoredRule, error)
	// PutEvents writes rows of events (new events, or new versions) at once.
	PutEvents(ctx context.Context, events ...Event) error
	// Events returns the newest limit events, newest first, without lost
	// claims.
	Events(ctx context.Context, limit int) ([]Event, error)
	// RecentEvents returns, by rule id, the newest perGeneration events of
	// each generation of each rule (of the rules named, or of all when
	// ruleIDs is nil), without lost claims.
	RecentEvents(ctx context.Context, ruleIDs []string, perGeneration int) (map[string][]Event, error)
	// EventsByID returns the winning row of each event named (ids of events
	// of the rules named), lost claims included, by event id.
	EventsByID(ctx context.Context, ruleIDs, ids []string) (map[string]Event, error)
}

// StoredRule is a row of a rule the API created.
type StoredRule struct {
	Rule
	CreatedAt time.Time
	Version   uint64 // the newest wins (a nanosecond timestamp)
	Deleted   bool   // a deletion is a newer row of the rule
}

// recentPerGeneration bounds the events read per rule generation: the
// latest winner and the claims around it are all the evaluator needs to
// know of incidents, cooldowns and claims.
const recentPerGeneration = 8

// Options configure a Manager. Store and Metrics are required.
type Options struct {
	// Store holds the API's rules and the events.
	Store Store
	// Metrics measures the rules' metrics.
	Metrics MetricSource
	// FileRules are the rules of the rules file (LoadFile); read-only.
	FileRules []Rule
	// Interval between evaluations (Start). Default 30s.
	Interval time.Duration
	// DashboardURL, when set, is sent in every webhook payload.
	DashboardURL string
	// WebhookTimeout bounds one delivery attempt. Default 10s.
	WebhookTimeout time.Duration
	// WebhookAttempts bounds the attempts per notification (5xx, 429 and
	// network errors are retried). Default 3.
	WebhookAttempts int
	// WebhookBackoff is the wait before the second attempt, doubled for
	// each next one. Default 1s.
	WebhookBackoff time.Duration
	// AllowPrivateWebhooks lets webhooks reach loopback, private,
	// link-local, unspecified and multicast addresses, which the default
	// client refuses (after DNS resolution, for every connection: see
	// webhookClient), so that whoever may create rules through the API
	// cannot make Tollgate call into its own network. Set it for receivers
	// on the local network (and in tests).
	AllowPrivateWebhooks bool
	// HTTPClient sends the webhooks. Nil: a client that does not follow
	// redirects, refuses non-public addresses unless AllowPrivateWebhooks,
	// and then uses no proxy. A client given here is used as it is: the
	// address check is then its business.
	HTTPClient *http.Client
	// Registerer receives the metrics; nil: not registered.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock (tests). Nil: time.Now.
	Now func() time.Time
}

// queryTimeout bounds one metric query of an evaluation.
const queryTimeout = 30 * time.Second

// Manager holds the rules (the file's and the API's), evaluates them and
// notifies. Safe for concurrent use.
type Manager struct {
	o         Options
	notifier  *notifier
	metrics   *metrics
	log       *slog.Logger
	fileRules map[string]Rule

	evalMu sync.Mutex // one evaluation at a time
	// unsaved are delivery outcomes whose recording failed, by event id,
	// written again by the next evaluation; under evalMu.
	unsaved map[string]Event

	ruleMu sync.Mutex // one Create or Delete at a time

	versionMu   sync.Mutex
	lastVersion uint64

	// test hooks (export_test.go)
	afterRuleRead, afterRulePut, beforeClaim, afterClaim func()

	startOnce, closeOnce sync.Once
	stop                 context.CancelFunc
	done                 chan struct{}
}

// New checks the options; it does no I/O. Call Start to evaluate every
// Interval, and Close to stop.
func New(o Options) (*Manager, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("alerts: Options.Store is required")
	case o.Metrics == nil:
		return nil, errors.New("alerts: Options.Metrics is required")
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.WebhookTimeout <= 0 {
		o.WebhookTimeout = 10 * time.Second
	}
	if o.WebhookAttempts <= 0 {
		o.WebhookAttempts = 3
	}
	if o.WebhookBackoff <= 0 {
		o.WebhookBackoff = time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = webhookClient(o.AllowPrivateWebhooks)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Manager{
		o:         o,
		notifier:  &notifier{client: o.HTTPClient, timeout: o.WebhookTimeout, attempts: o.WebhookAttempts, backoff: o.WebhookBackoff},
		metrics:   newMetrics(o.Registerer),
		log:       o.Logger,
		fileRules: make(map[string]Rule, len(o.FileRules)),
		unsaved:   map[string]Event{},
		done:      make(chan struct{}),
	}
	for _, r := range o.FileRules {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("alerts: rule %q of %s: %w", r.ID, r.File, err)
		}
		if _, dup := m.fileRules[r.ID]; dup {
			return nil, fmt.Errorf("alerts: two file rules have the id %q", r.ID)
		}
		if r.File == "" {
			r.File = "(file)"
		}
		m.fileRules[r.ID] = r
	}
	return m, nil
}

// Start evaluates the rules every Interval in the background, until Close.
func (m *Manager) Start() {
	m.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		m.stop = cancel
		go m.loop(ctx)
	})
}

func (m *Manager) loop(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.EvaluateOnce(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("alerts: evaluation failed", "err", err)
		}
	}
}

// Close stops the evaluations started by Start and waits for the one
// running. Webhook deliveries in flight are cancelled; their events are
// recorded as not delivered, with no try counted, and the next evaluation
// (of any replica, or of this one after a restart) tries again. It does
// not close the Store.
func (m *Manager) Close() error {
	m.startOnce.Do(func() {}) // a Start after Close does nothing
	m.closeOnce.Do(func() {
		if m.stop != nil {
			m.stop()
			<-m.done
		}
	})
	return nil
}

// Rules lists the file's rules (in file order) and then the API's (by id).
// An API rule whose id a file rule has taken is hidden by it.
func (m *Manager) Rules(ctx context.Context) ([]Rule, error) {
	out := make([]Rule, 0, len(m.o.FileRules))
	for _, r := range m.o.FileRules {
		out = append(out, m.fileRules[r.ID])
	}
	stored, err := m.o.Store.Rules(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, s := range stored {
		if _, shadowed := m.fileRules[s.ID]; !s.Deleted && !shadowed {
			out = append(out, s.Rule)
		}
	}
	return out, nil
}

// Create stores a new API rule (an empty id is made up) and returns it.
// A problem with the rule is a *FieldError; a taken id is ErrExists.
//
// Creates and deletes of one Manager take turns. Between replicas, the row
// is read back after it is written: when two replicas create the same id
// at once, the newest row wins and the replica whose row lost answers
// ErrExists. Both can still succeed when one reads back before the other's
// row is visible (the time of one insert and one read); the rule stored is
// then the later one.
func (m *Manager) Create(ctx context.Context, r Rule) (Rule, error) {
	if r.ID == "" {
		r.ID = uuid.Must(uuid.NewV7()).String()
	}
	if r.Name == "" {
		r.Name = r.ID
	}
	r.File = ""
	if err := r.Validate(); err != nil {
		return Rule{}, err
	}
	if f, ok := m.fileRules[r.ID]; ok {
		return Rule{}, fmt.Errorf("id %q is taken by a rule of %s: %w", r.ID, f.File, ErrExists)
	}
	m.ruleMu.Lock()
	defer m.ruleMu.Unlock()
	prev, err := m.o.Store.Rules(ctx, r.ID)
	if err != nil {
		return Rule{}, err
	}
	if m.afterRuleRead != nil {
		m.afterRuleRead()
	}
	row := StoredRule{Rule: r, CreatedAt: m.o.Now().UTC().Truncate(time.Second), Version: m.nextVersion()}
	if len(prev) > 0 {
		if !prev[0].Deleted {
			return Rule{}, fmt.Errorf("id %q: %w", r.ID, ErrExists)
		}
		row.Version = max(row.Version, prev[0].Version+1) // outrank the deletion
	}
	stored, err := m.putRule(ctx, row)
	if err != nil {
		return Rule{}, err
	}
	if !sameRow(stored, row) {
		return Rule{}, fmt.Errorf("id %q: another replica created it at the same moment: %w", r.ID, ErrExists)
	}
	m.log.Info("alerts: rule created", "rule_id", r.ID, "metric", r.Metric, "threshold", r.Threshold,
		"window", formatDuration(r.Window))
	return r, nil
}

// Delete removes an API rule: ErrReadOnly for a file's rule, ErrNotFound
// for an unknown id, ErrConflict when another replica created it again at
// the same moment. Its events stay in the history; its open incident ends
// at the next evaluation.
func (m *Manager) Delete(ctx context.Context, id string) error {
	if f, ok := m.fileRules[id]; ok {
		return fmt.Errorf("rule %q is defined in %s: %w", id, f.File, ErrReadOnly)
	}
	m.ruleMu.Lock()
	defer m.ruleMu.Unlock()
	prev, err := m.o.Store.Rules(ctx, id)
	if err != nil {
		return err
	}
	if len(prev) == 0 || prev[0].Deleted {
		return fmt.Errorf("rule %q: %w", id, ErrNotFound)
	}
	row := prev[0]
	row.Deleted = true
	row.Version = max(m.nextVersion(), row.Version+1)
	stored, err := m.putRule(ctx, row)
	if err != nil {
		return err
	}
	if !stored.Deleted {
		return fmt.Errorf("rule %q: %w", id, ErrConflict)
	}
	m.log.Info("alerts: rule deleted", "rule_id", id)
	return nil
}

// putRule writes a rule row and reads back the one that won (the newest
// version of the id).
func (m *Manager) putRule(ctx context.Context, row StoredRule) (StoredRule, error) {
	if err := m.o.Store.PutRule(ctx, row); err != nil {
		return StoredRule{}, err
	}
	if m.afterRulePut != nil {
		m.afterRulePut()
	}
	stored, err := m.o.Store.Rules(ctx, row.ID)
	if err != nil {
		return StoredRule{}, err
	}
	if len(stored) == 0 {
		return StoredRule{}, fmt.Errorf("alert rules: rule %q not found after writing it", row.ID)
	}
	return stored[0], nil
}

// sameRow reports whether a row read back is the one written.
func sameRow(a, b StoredRule) bool {
	return a.Version == b.Version && a.Deleted == b.Deleted && a.generation() == b.generation() && a.Name == b.Name &&
		a.Cooldown == b.Cooldown && a.Enabled == b.Enabled && a.CreatedAt.Equal(b.CreatedAt)
}

// nextVersion is a row version: the wall clock in nanoseconds (the
// newest write wins across replicas), strictly increasing within the
// process.
func (m *Manager) nextVersion() uint64 {
	m.versionMu.Lock()
	defer m.versionMu.Unlock()
	v := max(uint64(max(time.Now().UnixNano(), 1)), m.lastVersion+1)
	m.lastVersion = v
	return v
}

// Events returns the newest limit events, newest first.
func (m *Manager) Events(ctx context.Context, limit int) ([]Event, error) {
	return m.o.Store.Events(ctx, limit)
}
