package chstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tollgate-dev/tollgate/record"
	"github.com/tollgate-dev/tollgate/storage/wal"
)

// Spool layout: one file per batch in SpoolDir, named by the batch's
// sequence number (zero-padded, so name order is age order):
//
//	00000000000000000042.spool
//
// The bytes of a file are described in spoolformat.go. Files are written
// once (create, write, fsync, close) and never appended to afterwards. A
// file is deleted only after its rows were inserted; a damaged one is
// moved to corrupt/ once its readable rows were inserted (setAside). The
// directory holds a lock file so two processes never share it.
const (
	spoolExt   = ".spool"
	lockName   = ".lock"
	corruptDir = "corrupt" // damaged files, kept for inspection (setAside)
)

var (
	errSpoolFull  = errors.New("spool is full")
	spoolNameLen  = 20 + len(spoolExt)
	errSpoolClose = errors.New("spool is closed")
)

type spoolFile struct {
	seq  uint64
	path string
	size int64
}

type spool struct {
	dir  string
	max  int64
	lock *os.File

	wmu sync.Mutex // serializes writes; guards buf
	buf []byte

	mu      sync.Mutex
	files   []spoolFile // ascending seq
	claimed map[uint64]bool
	bytes   int64
	closed  bool
}

// openSpool creates dir if needed, locks it, and indexes the files a
// previous run left.
func openSpool(dir string, max int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool dir: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("spool dir %s: %w", dir, err)
	}
	files, err := scanSpoolDir(dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("spool dir: %w", err)
	}
	s := &spool{dir: dir, max: max, lock: lock, files: files}
	for _, f := range files {
		s.bytes += f.size
	}
	return s, nil
}

// scanSpoolDir lists the spool files in dir, oldest first.
func scanSpoolDir(dir string) ([]spoolFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []spoolFile
	for _, e := range entries {
		seq, ok := parseSpoolName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		files = append(files, spoolFile{seq: seq, path: filepath.Join(dir, e.Name()), size: info.Size()})
	}
	slices.SortFunc(files, func(a, b spoolFile) int { return cmpUint(a.seq, b.seq) })
	return files, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func spoolName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, spoolExt) }

func parseSpoolName(name string) (uint64, bool) {
	if len(name) != spoolNameLen || !strings.HasSuffix(name, spoolExt) {
		return 0, false
	}
	seq, err := strconv.ParseUint(name[:20], 10, 64)
	return seq, err == nil
}

// maxSeq is the highest sequence number on disk (0 if none).
func (s *spool) maxSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.files) == 0 {
		return 0
	}
	return s.files[len(s.files)-1].seq
}

// write stores recs as the file for seq. errSpoolFull means the cap would
// be exceeded and nothing was written.
func (s *spool) write(seq uint64, recs []*record.Record) (int64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	b := appendSpool(s.buf[:0], recs)
	s.buf = b
	if cap(s.buf) > 64<<20 {
		s.buf = nil // do not pin a huge buffer after an unusual batch
	}
	size := int64(len(b))

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, errSpoolClose
	}
	if s.bytes+size > s.max {
		s.mu.Unlock()
		return 0, errSpoolFull
	}
	s.bytes += size // reserve
	s.mu.Unlock()

	path := filepath.Join(s.dir, spoolName(seq))
	err := writeFileSync(path, b)
	if err == nil {
		// The file's name must survive a machine crash before the batch
		// leaves memory (and its write-ahead log segment retires).
		if err = wal.SyncDir(s.dir); err != nil {
			os.Remove(path)
		}
	}
	if err != nil {
		s.mu.Lock()
		s.bytes -= size
		s.mu.Unlock()
		return 0, err
	}
	s.mu.Lock()
	f := spoolFile{seq: seq, path: path, size: size}
	i, _ := slices.BinarySearchFunc(s.files, seq, func(f spoolFile, seq uint64) int { return cmpUint(f.seq, seq) })
	s.files = slices.Insert(s.files, i, f)
	s.mu.Unlock()
	return size, nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// adopt moves the file at path (a WAL segment a previous run left) into
// the spool as its newest file, to be replayed like one. It is not held
// to the cap: its records were answered, and dropping them is the loss
// the log exists to prevent.
func (s *spool) adopt(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	seq := s.maxSeq() + 1
	dst := filepath.Join(s.dir, spoolName(seq))
	if err := os.Rename(path, dst); err != nil {
		return err
	}
	s.mu.Lock()
	s.files = append(s.files, spoolFile{seq: seq, path: dst, size: info.Size()})
	s.bytes += info.Size()
	s.mu.Unlock()
	return nil
}

// head is the oldest file not being replayed.
func (s *spool) head() (spoolFile, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		if !s.claimed[f.seq] {
			return f, true
		}
	}
	return spoolFile{}, false
}

// claim reserves up to n of the oldest unclaimed files for a replay, with
// sequence numbers below "below", at most maxBytes together (but always
// one). The replay removes them, or unclaims them when the insert fails.
func (s *spool) claim(n int, maxBytes int64, below uint64) []spoolFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claimed == nil {
		s.claimed = map[uint64]bool{}
	}
	var out []spoolFile
	var bytes int64
	for _, f := range s.files {
		if s.claimed[f.seq] {
			continue
		}
		if len(out) == n || f.seq >= below || (len(out) > 0 && bytes+f.size > maxBytes) {
			break
		}
		out = append(out, f)
		bytes += f.size
		s.claimed[f.seq] = true
	}
	return out
}

func (s *spool) unclaim(files []spoolFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range files {
		delete(s.claimed, f.seq)
	}
}

// remove deletes f (after its rows were inserted, or when it holds none).
func (s *spool) remove(f spoolFile) error {
	err := os.Remove(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	s.forget(f)
	return err
}

// quarantine renames a file that is not a spool file at all out of the
// way (kept for a human to look at, never deleted silently).
func (s *spool) quarantine(f spoolFile) error {
	err := os.Rename(f.path, f.path+".corrupt")
	s.forget(f)
	return err
}

// setAside moves a damaged file, whose readable rows were inserted, to
// corrupt/: it is not replayed again, and its bytes stay for a human to
// look at. corrupt/ holds at most a tenth of the spool's cap; the oldest
// files there go first (returned, for the log), so damage that repeats
// cannot fill the disk.
func (s *spool) setAside(f spoolFile) (evicted []string, err error) {
	cdir := filepath.Join(s.dir, corruptDir)
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return nil, err
	}
	err = os.Rename(f.path, filepath.Join(cdir, filepath.Base(f.path)))
	s.forget(f)
	if err != nil {
		return nil, err
	}
	// Best effort: a rename lost at a machine crash replays the file again.
	wal.SyncDir(cdir)
	wal.SyncDir(s.dir)
	kept, err := scanSpoolDir(cdir) // oldest first
	if err != nil {
		return nil, err
	}
	var total int64
	for _, k := range kept {
		total += k.size
	}
	for _, k := range kept {
		if total <= s.max/10 {
			break
		}
		if os.Remove(k.path) == nil {
			evicted = append(evicted, k.path)
		}
		total -= k.size
	}
	return evicted, nil
}

func (s *spool) forget(f spoolFile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.files, func(x spoolFile) bool { return x.seq == f.seq })
	if i >= 0 {
		s.bytes -= s.files[i].size
		s.files = slices.Delete(s.files, i, i+1)
	}
	delete(s.claimed, f.seq)
}

func (s *spool) stats() (files int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.files), s.bytes
}

func (s *spool) close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wmu.Lock() // wait for a write in progress
	defer s.wmu.Unlock()
	return s.lock.Close() // releases the flock
}
