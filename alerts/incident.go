package alerts

import "time"

// decision is what one evaluation does for a rule.
type decision int

const (
	hold    decision = iota // nothing new (a due delivery retry may still run)
	fire                    // claim a new event, deliver it, start the cooldown
	resolve                 // the open incident is over: record when
)

// decide is the alerting policy. last is the latest winning event of the
// rule's current generation (zero if there is none).
//
//   - A value above the threshold fires, unless an incident is open (an
//     event was claimed and the value has not come back down since: one
//     incident, one event) or the cooldown since the last event is running
//     (a value that flaps around the threshold fires once per cooldown).
//     The cooldown counts from the event whether or not its delivery
//     succeeded; an undelivered event is retried while its incident is
//     open (see due).
//   - A value at or below the threshold ends the open incident; a later
//     breach is a new incident, which fires once the cooldown has passed.
func decide(last Event, value float64, r Rule, now time.Time) decision {
	fired := !last.FiredAt.IsZero()
	open := fired && last.open()
	if value <= r.Threshold {
		if open {
			return resolve
		}
		return hold
	}
	if open || (fired && now.Before(last.FiredAt.Add(r.Cooldown))) {
		return hold
	}
	return fire
}

// maxTries bounds the delivery tries of one event; each try makes up to
// Options.WebhookAttempts requests.
const maxTries = 5

// retryDelay is the wait after the n-th failed try (1 ≤ n < maxTries):
// cooldown/16, /8, /4, /2, so that the five tries span 15/16 of the
// cooldown. Whole seconds (next_attempt_at is a DateTime), at least one.
func retryDelay(n int, cooldown time.Duration) time.Duration {
	d := cooldown >> uint(max(maxTries-n, 1))
	return max(d.Truncate(time.Second), time.Second)
}

// due reports whether a later evaluation should try to deliver e again:
// its incident is open, it was not delivered, tries are left and its next
// attempt time has come. A claim whose owner is still delivering has
// next_attempt_at at the end of its lease, so it is not due before.
func due(e Event, now time.Time) bool {
	return e.ID != "" && e.open() && !e.Delivered && !e.Lost && e.Attempts < maxTries &&
		!e.NextAttemptAt.IsZero() && !now.Before(e.NextAttemptAt)
}

// winner reports whether e is the claim that won its incident among evs:
// no other claim of the same rule generation that followed the same event
// (prevID) comes before it. Lost claims take no part.
func winner(e Event, evs []Event) bool {
	if e.Lost {
		return false
	}
	for _, o := range evs {
		if o.ID != e.ID && !o.Lost && o.RuleID == e.RuleID && o.Generation == e.Generation &&
			o.PrevID == e.PrevID && o.before(e) {
			return false
		}
	}
	return true
}

// latest returns the rule's latest winning event of generation gen among
// evs (one rule's events), and whether there is one.
func latest(evs []Event, gen string) (Event, bool) {
	var best Event
	found := false
	for _, e := range evs {
		if e.Generation == gen && winner(e, evs) && (!found || best.before(e)) {
			best, found = e, true
		}
	}
	return best, found
}
