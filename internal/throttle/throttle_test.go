package throttle

import (
	"testing"
	"time"
)

// The first event goes ahead, the next one right after it does not, and
// one a second after the last allowed goes ahead again.
func TestPerSecond(t *testing.T) {
	var p PerSecond
	if !p.Allow() {
		t.Fatal("the first event was not allowed")
	}
	if p.Allow() {
		t.Fatal("a second event right after the first was allowed")
	}
	p.last.Store(time.Now().Add(-time.Second).UnixNano())
	if !p.Allow() {
		t.Fatal("an event a second after the last allowed one was not allowed")
	}
}
