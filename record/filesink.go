package record

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/storage/wal"
)

// FileSink appends records as JSON lines to a file: the embedded default
// when no ClickHouse is configured. The file is the local record itself,
// so Write returns only once its line is in the file (the page cache: a
// killed process loses nothing). Concurrent Writes share one write(2) by
// group commit (package wal), so there is no system call per record under
// load. An fsync on a cadence bounds what a machine crash can lose.
type FileSink struct {
	file *wal.File
	bufs sync.Pool

	mu     sync.Mutex
	err    error // first write or fsync error, reported by Flush
	closed bool

	stop chan struct{}
	done chan struct{}
}

// OpenFileSink opens (creating as needed) path for appending. fsyncEvery
// is the fsync cadence; 0 fsyncs each group write before its Writes
// return (a machine crash then loses nothing).
func OpenFileSink(path string, fsyncEvery time.Duration) (*FileSink, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("log sink: %w", err)
	}
	if err := endLine(path); err != nil {
		return nil, fmt.Errorf("log sink: %w", err)
	}
	f, err := wal.Append(path, wal.Options{SyncEveryWrite: fsyncEvery <= 0})
	if err != nil {
		return nil, fmt.Errorf("log sink: %w", err)
	}
	s := &FileSink{file: f, stop: make(chan struct{}), done: make(chan struct{})}
	if fsyncEvery > 0 {
		go s.syncEvery(fsyncEvery)
	} else {
		close(s.done)
	}
	return s, nil
}

// endLine ends the file at path with a newline if it ends in part of a
// line: a group write cut short (a kill at a page boundary, a full disk,
// a machine crash) leaves half a line, which the next line must not be
// glued to. The half line is kept, as one line a reader cannot parse
// (nothing readable is lost).
func endLine(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.Size() == 0 {
		return err
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, info.Size()-1); err != nil {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	if _, err := f.Write([]byte{'\n'}); err != nil {
		return err
	}
	return f.Sync()
}

func (s *FileSink) syncEvery(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.keep(s.file.Sync())
		}
	}
}

// keep remembers the first error for Flush.
func (s *FileSink) keep(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// Write appends r as one line and returns once it is in the file.
// Encoding errors cannot happen for Record's field types; a failed disk
// write is kept and reported by Flush.
func (s *FileSink) Write(r *Record) {
	e, _ := s.bufs.Get().(*lineEncoder)
	if e == nil {
		e = &lineEncoder{}
		e.enc = json.NewEncoder(&e.buf) // as json.Marshal, plus the newline
	}
	e.buf.Reset()
	if err := e.enc.Encode(r); err != nil {
		s.keep(err)
		return
	}
	err := s.file.Write(e.buf.Bytes())
	if e.buf.Cap() <= 1<<20 {
		s.bufs.Put(e)
	}
	if !errors.Is(err, wal.ErrClosed) { // Write after Close: dropped, as before
		s.keep(err)
	}
}

// lineEncoder is a pooled buffer and its JSON encoder.
type lineEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// Flush fsyncs the file: every record written is already in it.
func (s *FileSink) Flush(context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if !closed {
		s.keep(s.file.Sync())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *FileSink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	cerr := s.file.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.err, cerr)
}
