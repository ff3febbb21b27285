package alerts

import "time"

// decision is what one evaluation does for a rule.
type decision int

const (
	hold    decision = iota // nothing to do
	fire                    // notify, record the event, start the cooldown
	resolve                 // the open incident is over: record when
)

// decide is the alerting policy. last is the rule's latest event (zero if
// it never fired).
//
//   - A value above the threshold fires, unless an incident is open (it was
//     notified and the value has not come back down since: one incident, one
//     notification) or the cooldown since the last notification is running
//     (a value that flaps around the threshold notifies once per cooldown).
//   - A value at or below the threshold ends the open incident; a later
//     breach is a new incident, notified once the cooldown has passed.
func decide(last Event, value float64, r Rule, now time.Time) decision {
	notified := !last.FiredAt.IsZero()
	open := notified && last.ResolvedAt.IsZero()
	if value <= r.Threshold {
		if open {
			return resolve
		}
		return hold
	}
	if open || (notified && now.Before(last.FiredAt.Add(r.Cooldown))) {
		return hold
	}
	return fire
}

// newer reports whether an event read from ClickHouse should replace the
// one the evaluator holds: another replica (or this process before a
// restart) fired later, or wrote a newer version of the same event.
func newer(stored, held Event) bool {
	switch {
	case held.ID == "":
		return true
	case stored.ID == held.ID:
		return stored.version > held.version
	default:
		return stored.FiredAt.After(held.FiredAt)
	}
}
