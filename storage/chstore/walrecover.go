// Naming of write-ahead log segments and recovery of those a previous run left.

package chstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/tollgate-dev/tollgate/storage/wal"
)

func walSegmentName(n uint64) string { return fmt.Sprintf("%020d%s", n, walExt) }

func parseWALName(name string) (uint64, bool) {
	if len(name) != 20+len(walExt) || !strings.HasSuffix(name, walExt) {
		return 0, false
	}
	n, err := strconv.ParseUint(name[:20], 10, 64)
	return n, err == nil
}

// recoverWAL hands the segments a previous run left to the spool, oldest
// first, before any new record is written: they replay like spool files
// (at least once; rows already inserted collapse under FINAL). A segment
// that holds no frame is deleted. It returns the number of the last
// segment seen (new ones are numbered after it) and how many it moved.
func recoverWAL(dir string, sp *spool, log *slog.Logger) (last uint64, moved int) {
	defer func() {
		if moved > 0 {
			// The renames must survive a machine crash before the segments'
			// numbers are used again.
			if err := errors.Join(wal.SyncDir(sp.dir), wal.SyncDir(dir)); err != nil {
				log.Warn("clickhouse log: cannot fsync the spool directory after moving the write-ahead log into it", "err", err)
			}
		}
	}()
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			log.Error("clickhouse log: cannot read the write-ahead log left by a previous run", "dir", dir, "err", err)
		}
		return 0, 0
	}
	var nums []uint64
	for _, e := range entries {
		if n, ok := parseWALName(e.Name()); ok && e.Type().IsRegular() {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	for _, n := range nums {
		last = n
		path := filepath.Join(dir, walSegmentName(n))
		if info, err := os.Stat(path); err == nil && info.Size() <= spoolHeaderV2 {
			os.Remove(path) // a header only: no record in it
			continue
		}
		if err := sp.adopt(path); err != nil {
			// Left where it is: the next start tries again.
			log.Error("clickhouse log: cannot move a write-ahead log segment into the spool; its records wait for the next start",
				"file", path, "err", err)
			continue
		}
		moved++
	}
	return last, moved
}
