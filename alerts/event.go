package alerts

import (
	"encoding/json"
	"time"
)

// Event is one alert notification: the rule fired at FiredAt with Value.
type Event struct {
	ID            string // a UUID; the webhook gets it as X-Tollgate-Alert-Event
	RuleID        string
	RuleName      string
	Metric        Metric
	Value         float64
	Threshold     float64
	Window        time.Duration
	FiredAt       time.Time
	Delivered     bool
	Attempts      int       // delivery tries that ended (each of up to WebhookAttempts requests)
	DeliveryError string    // why the last try failed; never holds the URL, host name or address
	ResolvedAt    time.Time // when the incident ended; zero while open

	// The evaluator's bookkeeping, kept with the event in the Store and
	// not shown by the API (MarshalJSON).
	Generation    string    // Rule.generation() of the rule that fired
	PrevID        string    // the event the claimer saw as the rule's latest ("" none)
	Lost          bool      // a claim that lost to an earlier claim of the same incident
	NextAttemptAt time.Time // when a later evaluation may try again; zero: never
	Version       uint64    // of its row in the Store (a nanosecond timestamp): the newest wins
}

// open reports whether the event's incident has not ended.
func (e Event) open() bool { return e.ResolvedAt.IsZero() }

// before orders events as claims are decided: by fired_at, then by id
// (UUIDv7 ids of one second sort by the instant they were made).
func (e Event) before(o Event) bool {
	if !e.FiredAt.Equal(o.FiredAt) {
		return e.FiredAt.Before(o.FiredAt)
	}
	return e.ID < o.ID
}

// MarshalJSON writes the event as GET /v1/alerts/events shows it.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		RuleID        string    `json:"rule_id"`
		RuleName      string    `json:"rule_name"`
		Metric        Metric    `json:"metric"`
		Value         float64   `json:"value"`
		Threshold     float64   `json:"threshold"`
		Window        string    `json:"window"`
		FiredAt       time.Time `json:"fired_at"`
		Delivered     bool      `json:"delivered"`
		Attempts      int       `json:"delivery_attempts"`
		DeliveryError string    `json:"delivery_error"`
	}{e.RuleID, e.RuleName, e.Metric, e.Value, e.Threshold, formatDuration(e.Window), e.FiredAt.UTC(), e.Delivered,
		e.Attempts, e.DeliveryError})
}
