package testenv

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// LogBuffer is a log destination (slog handler, log.Logger, a command's
// stderr) that the code under test writes from its goroutines while the
// test reads it. The zero value is ready to use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String is everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Contains reports whether s was written (within one Write or across
// several).
func (l *LogBuffer) Contains(s string) bool { return strings.Contains(l.String(), s) }

// Logger is a debug-level slog logger into a LogBuffer, whose lines are
// printed (under title) when the test fails. It never calls t.Log from the
// goroutines of the code under test, which may outlive a failed test.
func Logger(t testing.TB, title string) (*slog.Logger, *LogBuffer) {
	lb := &LogBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s:\n%s", title, lb.String())
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}
