package record

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FileSink appends records as JSON lines to a file: the embedded default
// when no ClickHouse is configured. Writes go to an in-memory buffer under a
// mutex (no goroutine hand-off per record); a ticker writes it out.
type FileSink struct {
	mu     sync.Mutex
	file   *os.File
	buf    *bufio.Writer
	err    error // first write error, reported by Flush
	closed bool

	stop chan struct{}
	done chan struct{}
}

// OpenFileSink opens (creating as needed) path for appending and flushes the
// buffer every interval.
func OpenFileSink(path string, interval time.Duration) (*FileSink, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("log sink: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log sink: %w", err)
	}
	s := &FileSink{
		file: f,
		buf:  bufio.NewWriterSize(f, 256<<10),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go s.flushEvery(interval)
	return s, nil
}

func (s *FileSink) flushEvery(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			_ = s.Flush(context.Background())
		}
	}
}

// Write encodes r as one line. Encoding errors cannot happen for Record's
// field types; a failed disk write is kept and reported by Flush.
func (s *FileSink) Write(r *Record) {
	line, err := json.Marshal(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if err == nil {
		line = append(line, '\n')
		_, err = s.buf.Write(line)
	}
	if err != nil && s.err == nil {
		s.err = err
	}
}

func (s *FileSink) Flush(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.err
	}
	if err := s.buf.Flush(); err != nil && s.err == nil {
		s.err = err
	}
	return s.err
}

func (s *FileSink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	flushErr := s.Flush(ctx)
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return errors.Join(flushErr, s.file.Close())
}
