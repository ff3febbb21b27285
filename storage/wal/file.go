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
//
// A disk can stall (a hung NFS mount, a dying device) as well as fail.
// With Options.StallTimeout no caller writes: one goroutine of the file's
// own issues the group writes, and a write that has not returned after
// StallTimeout marks the file stalled: Wait returns ErrTimeout to those
// waiting and to every caller until the write returns (the bytes may
// still land later). A stuck write(2) then holds no caller.
package wal

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ErrClosed is returned by Wait for bytes added after Close.
var ErrClosed = errors.New("wal: file closed")

// ErrTimeout is returned by Wait when a group write did not return within
// StallTimeout (the disk stalls). The bytes may still be written later.
var ErrTimeout = errors.New("wal: write did not finish in time")

// maxSpare: a pending buffer grown larger than this is not kept for reuse
// (a burst must not pin its memory for good).
const maxSpare = 4 << 20

// File is an append-only file with group commit. Its methods are safe for
// concurrent use.
type File struct {
	f         *os.File
	syncEvery bool

	stallAfter time.Duration // 0: callers write (no goroutine)
	kick       chan struct{} // wakes the writer goroutine
	stop       chan struct{} // ends it
	watch      *time.Timer   // marks a group write stalled

	mu       sync.Mutex
	cond     sync.Cond // broadcast when a group write ends or stalls
	stalled  bool      // the group write in progress is past stallAfter
	started  time.Time // when the writer goroutine's group write began
	pending  []byte
	spare    []byte
	added    uint64 // bytes ever added (tickets count up to it)
	written  uint64 // bytes ever written to the file
	leading  bool   // a leader's write is in progress
	err      error  // the first failed write; the file takes no more bytes
	closed   bool
	unsynced bool   // bytes written since the last fsync
	groups   uint64 // group writes issued (for the tests)
	syncs    uint64 // fsyncs issued by Sync (for the tests)
}

// Options for Create and Append.
type Options struct {
	// SyncEveryWrite fsyncs each group write before its callers return.
	SyncEveryWrite bool
	// Header is written when the file is created empty (Create only).
	Header []byte
	// StallTimeout, if set, is the longest Wait waits for a group write
	// in progress before it returns ErrTimeout (see the package doc).
	StallTimeout time.Duration
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
// hold data, which is kept. A file it creates has its directory entry
// fsynced, so that with SyncEveryWrite a machine crash cannot lose the
// file with the records in it.
func Append(path string, o Options) (*File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		syncDir(path)
		return newFile(f, o), nil
	}
	if !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return newFile(f, o), nil
}

// New appends to f, already open for writing (f's offset must be its
// end, or f opened with O_APPEND). The File owns f from here.
func New(f *os.File, o Options) *File { return newFile(f, o) }

func newFile(f *os.File, o Options) *File {
	w := &File{f: f, syncEvery: o.SyncEveryWrite, stallAfter: o.StallTimeout}
	w.cond.L = &w.mu
	if w.stallAfter > 0 {
		w.kick = make(chan struct{}, 1)
		w.stop = make(chan struct{})
		w.watch = time.AfterFunc(time.Hour, w.stall)
		w.watch.Stop()
		go w.writer()
	}
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
// with SyncEveryWrite), or the error of the write that failed them, or
// ErrTimeout when the file is stalled (StallTimeout).
func (w *File) Wait(ticket uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ticket == 0 {
		return w.zeroLocked()
	}
	for w.written < ticket && w.err == nil {
		if w.stallAfter > 0 {
			if w.stalled {
				return ErrTimeout
			}
			if !w.leading {
				w.kickWriter()
			}
			w.waitGroupLocked()
			continue
		}
		if w.leading {
			w.waitGroupLocked()
			continue
		}
		w.lead()
	}
	if w.written >= ticket {
		return nil
	}
	return w.err
}

// writer is the goroutine that issues the group writes with StallTimeout.
func (w *File) writer() {
	for {
		select {
		case <-w.stop:
			return
		case <-w.kick:
		}
		w.mu.Lock()
		for len(w.pending) > 0 && w.err == nil && !w.leading {
			w.started = time.Now()
			w.watch.Reset(w.stallAfter)
			w.lead()
			w.watch.Stop()
		}
		w.mu.Unlock()
	}
}

func (w *File) kickWriter() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// stall runs when a group write took longer than stallAfter: the waiters
// are woken and get ErrTimeout, as does every Wait until it ends.
func (w *File) stall() {
	w.mu.Lock()
	defer w.mu.Unlock()
	// A timer that fired as it was stopped may run late: the time decides.
	if w.leading && !w.stalled && time.Since(w.started) >= w.stallAfter {
		w.stalled = true
		w.cond.Broadcast()
	}
}

func (w *File) zeroLocked() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	return nil
}

// waitGroupLocked waits for the group write in progress to end (or
// stall).
func (w *File) waitGroupLocked() { w.cond.Wait() }

// lead writes everything pending in one write(2), outside the lock, and
// wakes the waiters. Called and returns with w.mu held.
func (w *File) lead() {
	buf, end := w.beginLocked()
	w.mu.Unlock()
	err := w.writeOut(buf)
	w.mu.Lock()
	w.endLocked(buf, end, err)
}

// beginLocked starts a group write: it takes everything pending.
func (w *File) beginLocked() ([]byte, uint64) {
	w.leading = true
	w.groups++
	buf, end := w.pending, w.added
	w.pending = w.spare[:0]
	w.spare = nil
	return buf, end
}

func (w *File) writeOut(buf []byte) error {
	_, err := w.f.Write(buf) // os.File.Write retries short writes
	if err == nil && w.syncEvery {
		err = w.f.Sync()
	}
	return err
}

// endLocked ends a group write and wakes its waiters.
func (w *File) endLocked(buf []byte, end uint64, err error) {
	w.leading = false
	w.stalled = false
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
	w.syncs++
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
			w.waitGroupLocked()
			continue
		}
		w.lead()
	}
	for w.leading {
		w.waitGroupLocked()
	}
	w.closed = true
	werr := w.err
	w.mu.Unlock()
	if w.stop != nil {
		close(w.stop)
	}
	serr := w.f.Sync()
	if werr != nil {
		serr = nil // the write error says it all
	}
	return errors.Join(werr, serr, w.f.Close())
}

// Syncs is the number of fsyncs Sync issued (the cadence is tested to
// happen).
func (w *File) Syncs() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.syncs
}

// syncDir fsyncs the directory holding path, so that a new file's name
// survives a machine crash. Best effort: some file systems refuse it.
func syncDir(path string) { SyncDir(filepath.Dir(path)) }

// SyncDir fsyncs directory dir, so that the names created, renamed or
// removed in it survive a machine crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}
