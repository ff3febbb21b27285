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
	DeliveryError string    // why delivery failed; never holds the webhook URL
	ResolvedAt    time.Time // when the value fell back to the threshold; zero while open

	version uint64 // of its row in alert_events
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
		DeliveryError string    `json:"delivery_error"`
	}{e.RuleID, e.RuleName, e.Metric, e.Value, e.Threshold, formatDuration(e.Window), e.FiredAt.UTC(), e.Delivered, e.DeliveryError})
}
