package wal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// TestGroupCommitConcurrent: many callers at once; when a Write returns
// its bytes are in the file, whole; at the end every line is there once,
// none interleaved with another.
func TestGroupCommitConcurrent(t *testing.T) {
	for _, syncEvery := range []bool{false, true} {
		t.Run(fmt.Sprintf("SyncEveryWrite=%v", syncEvery), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			f, err := Create(path, Options{Header: []byte("HDR\n"), SyncEveryWrite: syncEvery})
			if err != nil {
				t.Fatal(err)
			}
			const callers, each = 16, 200
			var wg sync.WaitGroup
			errs := make(chan error, callers)
			for c := range callers {
				wg.Go(func() {
					for i := range each {
						line := fmt.Appendf(nil, "caller %d line %d %s\n", c, i, bytes.Repeat([]byte{'x'}, i%50))
						if err := f.Write(line); err != nil {
							errs <- err
							return
						}
						if i%40 == 0 { // reached the file before Write returned
							data, err := os.ReadFile(path)
							if err != nil || !bytes.Contains(data, line) {
								errs <- fmt.Errorf("after Write returned, %q not in the file (%v)", line, err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(data, []byte("HDR\n")) {
				t.Fatalf("header missing: %q", data[:min(len(data), 20)])
			}
			seen := map[string]bool{}
			for _, l := range bytes.Split(bytes.TrimSuffix(data[4:], []byte("\n")), []byte("\n")) {
				var c, i int
				var rest string
				if n, _ := fmt.Sscanf(string(l), "caller %d line %d %s", &c, &i, &rest); n < 2 || seen[string(l)] {
					t.Fatalf("bad or repeated line %q", l)
				}
				if want := string(bytes.Repeat([]byte{'x'}, i%50)); rest != want {
					t.Fatalf("line %q torn", l)
				}
				seen[string(l)] = true
			}
			if len(seen) != callers*each {
				t.Errorf("%d lines, want %d", len(seen), callers*each)
			}
			if err := f.Write([]byte("late\n")); err != ErrClosed {
				t.Errorf("Write after Close: %v, want ErrClosed", err)
			}
		})
	}
}

// TestAppendKeepsData: Append continues an existing file.
func TestAppendKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	os.WriteFile(path, []byte("old\n"), 0o600)
	f, err := Append(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Write([]byte("new\n")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if data, _ := os.ReadFile(path); string(data) != "old\nnew\n" {
		t.Errorf("file %q", data)
	}
}

// TestWriteError: a failed write (a full disk) is returned to every
// caller whose bytes it held, and to later ones: the file takes nothing
// after a gap.
func TestWriteError(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	f, err := Append("/dev/full", Options{})
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if err := f.Write([]byte("a")); err == nil {
		t.Fatal("write to /dev/full succeeded")
	}
	if err := f.Write([]byte("b")); err == nil || f.Err() == nil {
		t.Errorf("after a failed write: %v, Err %v", err, f.Err())
	}
}

// TestGroupCommitOneWritePerGroup: while a write is in progress (blocked
// on a full pipe), the callers that arrive meanwhile are carried by ONE
// next write, not one each.
func TestGroupCommitOneWritePerGroup(t *testing.T) {
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f := newFile(pw, Options{})
	defer f.Close()
	// The first caller's write fills the pipe's buffer and blocks.
	big := bytes.Repeat([]byte{'a'}, 1<<20)
	first := make(chan error, 1)
	go func() { first <- f.Write(big) }()
	testenv.WaitFor(t, 10*time.Second, "first write in progress", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.leading
	})
	const n = 10
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := f.Write([]byte("0123456789")); err != nil {
				t.Error(err)
			}
		})
	}
	testenv.WaitFor(t, 10*time.Second, "all added, waiting", func() bool { return f.Size() == uint64(len(big)+n*10) })
	got := make(chan int64, 1)
	go func() {
		var total int64
		buf := make([]byte, 64<<10)
		for total < int64(len(big)+n*10) {
			k, err := r.Read(buf)
			if err != nil {
				break
			}
			total += int64(k)
		}
		got <- total
	}()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if total := <-got; total != int64(len(big)+n*10) {
		t.Fatalf("read %d bytes", total)
	}
	f.mu.Lock()
	groups := f.groups
	f.mu.Unlock()
	if groups != 2 {
		t.Errorf("%d writes for 1 + %d callers, want 2 (one group for the %d that waited)", groups, n, n)
	}
}

// stalledPipe is a pipe nobody reads, already full: a write to it blocks
// like one to a stalled disk.
func stalledPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	w.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	for {
		if _, err := w.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	w.SetWriteDeadline(time.Time{})
	return r, w
}

// TestStallTimeout: with the file's writes blocked, Wait returns
// ErrTimeout instead of hanging (without StallTimeout it would hang), to
// the callers waiting and those that come later; once the disk moves
// again the bytes land and a later Wait sees them.
func TestStallTimeout(t *testing.T) {
	r, pw := stalledPipe(t)
	f := newFile(pw, Options{StallTimeout: 10 * time.Millisecond})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := f.Write([]byte("stalled\n")); err != ErrTimeout {
				t.Errorf("Write to a stalled file: %v, want ErrTimeout", err)
			}
		})
	}
	wg.Wait()
	second := f.Add([]byte("second\n"))
	if err := f.Wait(second); err != ErrTimeout {
		t.Fatalf("Wait while stalled: %v, want ErrTimeout", err)
	}
	go func() { // the disk moves again
		buf := make([]byte, 64<<10)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}()
	testenv.WaitFor(t, 10*time.Second, "the stalled bytes written", func() bool { return f.Wait(second) == nil })
	f.Close() // fsync of a pipe fails: not what is tested here
}

// TestSyncCounts: Sync fsyncs only when something was written since the
// last one (the cadence's tick is cheap on an idle log).
func TestSyncCounts(t *testing.T) {
	f, err := Create(filepath.Join(t.TempDir(), "log"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil || f.Syncs() != 0 {
		t.Fatalf("idle Sync: %v, %d fsyncs", err, f.Syncs())
	}
	f.Write([]byte("x"))
	if err := f.Sync(); err != nil || f.Syncs() != 1 {
		t.Fatalf("Sync after a write: %v, %d fsyncs", err, f.Syncs())
	}
	if err := f.Sync(); err != nil || f.Syncs() != 1 {
		t.Errorf("second Sync: %v, %d fsyncs, want still 1", err, f.Syncs())
	}
}

// TestSyncError: an fsync that fails is returned, and tried again on the
// next Sync.
func TestSyncError(t *testing.T) {
	_, pw, err := os.Pipe() // fsync of a pipe fails (EINVAL)
	if err != nil {
		t.Fatal(err)
	}
	f := newFile(pw, Options{})
	defer f.Close()
	f.Write([]byte("x"))
	if err := f.Sync(); err == nil {
		t.Skip("fsync of a pipe succeeds here")
	}
	if err := f.Sync(); err == nil {
		t.Error("second Sync after a failed one did not try again")
	}
}

// TestAppendCreates: Append creates a missing file.
func TestAppendCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new")
	f, err := Append(path, Options{SyncEveryWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Write([]byte("a\n")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if data, _ := os.ReadFile(path); string(data) != "a\n" {
		t.Errorf("file %q", data)
	}
}
