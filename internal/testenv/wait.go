package testenv

import (
	"errors"
	"testing"
	"time"
)

// Eventually calls check until it returns nil and fails the test with
// check's last error once within has passed. The error should say what was
// seen ("3 records, want 4"), so the failure explains itself. The wait is
// a bound, not an assertion on speed: pick it generous (the race detector,
// a loaded 2-core machine).
//
// The first polls come quickly, then they space out (up to 100 ms apart),
// so a condition that holds at once costs nothing and a slow one does not
// hammer a server.
func Eventually(t testing.TB, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := 5 * time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", within, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// WaitFor is Eventually for a condition without details: it fails with
// what.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	Eventually(t, within, func() error {
		if cond() {
			return nil
		}
		return errors.New(what)
	})
}
