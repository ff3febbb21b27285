// Package wal is an append-only file written by group commit: the local
// log a sink writes a record to before the call is answered, so that a
// process killed right after (SIGKILL, the OOM killer) loses nothing.
//
// Appending is two steps. Add copies bytes into a shared pending buffer
// (a mutex and a copy) and returns a ticket; Wait returns once the bytes
// up to that ticket were written to the file. The first waiter to find no
// write in progress becomes the leader: it takes everything pending and
// issues one write(2) for it, then wakes the others, whose bytes it
// carried. Under load one system call serves many callers; alone, a
// caller pays one write. No timer is involved, so nobody waits for one.
//
// Written means in the kernel's page cache: it survives the process, not
// the machine. Sync (on a cadence the owner chooses) bounds what a machine
// crash can lose; with SyncEveryWrite the leader fsyncs each group before
// waking its callers, and a machine crash loses nothing that Wait
// acknowledged.
package wal

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
)

// ErrClosed is returned by Wait for bytes added after Close.
var ErrClosed = errors.New("wal: file closed")

// maxSpare: a pending buffer grown larger than this is not kept for reuse
// (a burst must not pin its memory for good).
const maxSpare = 4 << 20

// File is an append-only file with group commit. Its methods are safe for
// concurrent use.
type File struct {
	f         *os.File
	syncEvery bool

	mu       sync.Mutex
	cond     sync.Cond // signalled when a group write ends
	pending  []byte
	spare    []byte
	added    uint64 // bytes ever added (tickets count up to it)
	written  uint64 // bytes ever written to the file
	leading  bool   // a leader's write is in progress
	err      error  // the first failed write; the file takes no more bytes
	closed   bool
	unsynced bool   // bytes written since the last fsync
	groups   uint64 // group writes issued (for the tests)
}

// Options for Create and Append.
type Options struct {
	// SyncEveryWrite fsyncs each group write before its callers return.
	SyncEveryWrite bool
	// Header is written when the file is created empty (Create only).
	Header []byte
}

// Create makes a new file at path (it must not exist) and writes the
// header, fsynced with its directory entry so that the file survives a
// machine crash too.
func Create(path string, o Options) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(o.Header); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	syncDir(path)
	return newFile(f, o), nil
}

// Append opens path (creating it) to append to it: the file may already
// hold data, which is kept.
func Append(path string, o Options) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return newFile(f, o), nil
}

func newFile(f *os.File, o Options) *File {
	w := &File{f: f, syncEvery: o.SyncEveryWrite}
	w.cond.L = &w.mu
	return w
}

// Add copies b into the pending buffer and returns the ticket to Wait
// for. It never does I/O. After a write error or Close, b is not kept
// and Wait(ticket) returns the error.
func (w *File) Add(b []byte) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.addLocked(b)
}

func (w *File) addLocked(b []byte) uint64 {
	if w.err != nil || w.closed {
		return 0 // Wait(0) reports the error (written is never below 0)
	}
	w.pending = append(w.pending, b...)
	w.added += uint64(len(b))
	return w.added
}

// Write adds b and waits for it: the whole append in one call.
func (w *File) Write(b []byte) error {
	return w.Wait(w.Add(b))
}

// Wait returns once the bytes up to ticket are in the file (and fsynced,
// with SyncEveryWrite), or the error of the write that failed them.
func (w *File) Wait(ticket uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ticket == 0 {
		if w.err != nil {
			return w.err
		}
		if w.closed {
			return ErrClosed
		}
		return nil
	}
	for w.written < ticket && w.err == nil {
		if w.leading {
			w.cond.Wait()
			continue
		}
		w.lead()
	}
	if w.written >= ticket {
		return nil
	}
	return w.err
}

// lead writes everything pending in one write(2), outside the lock, and
// wakes the waiters. Called and returns with w.mu held.
func (w *File) lead() {
	w.leading = true
	w.groups++
	buf, end := w.pending, w.added
	w.pending = w.spare[:0]
	w.spare = nil
	w.mu.Unlock()

	_, err := w.f.Write(buf) // os.File.Write retries short writes
	if err == nil && w.syncEvery {
		err = w.f.Sync()
	}

	w.mu.Lock()
	w.leading = false
	if cap(buf) <= maxSpare {
		w.spare = buf[:0]
	}
	if err != nil {
		// The file may end in part of a group: nothing more may follow it
		// (a reader sees the tail as torn). The caller moves on to another.
		w.err = err
		w.pending = nil
	} else {
		w.written = end
		w.unsynced = !w.syncEvery
	}
	w.cond.Broadcast()
}

// Err is the write error that stopped the file, if any.
func (w *File) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Size is the number of bytes added so far (written or pending).
func (w *File) Size() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.added
}

// Sync fsyncs what was written so far (the cadence's tick). It does not
// wait for a write in progress, and skips the call when nothing changed.
func (w *File) Sync() error {
	w.mu.Lock()
	if !w.unsynced || w.closed {
		w.mu.Unlock()
		return nil
	}
	w.unsynced = false
	w.mu.Unlock()
	if err := w.f.Sync(); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return nil // closed meanwhile: Close fsyncs
		}
		w.mu.Lock()
		w.unsynced = true
		w.mu.Unlock()
		return err
	}
	return nil
}

// Close writes what is pending, fsyncs and closes the file. Bytes added
// after Close are refused (Wait returns ErrClosed).
func (w *File) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	for w.written < w.added && w.err == nil {
		if w.leading {
			w.cond.Wait()
			continue
		}
		w.lead()
	}
	for w.leading {
		w.cond.Wait()
	}
	w.closed = true
	werr := w.err
	w.mu.Unlock()
	serr := w.f.Sync()
	if werr != nil {
		serr = nil // the write error says it all
	}
	return errors.Join(werr, serr, w.f.Close())
}

// syncDir fsyncs the directory holding path, so that a new file's name
// survives a machine crash. Best effort: some file systems refuse it.
func syncDir(path string) {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}
