package testenv

import (
	"bytes"
	"strings"
	"sync"
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
