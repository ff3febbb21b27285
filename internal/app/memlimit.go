package app

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// Go's garbage collector knows nothing of a container's memory limit: by
// default it lets the heap double over the live data whatever the limit, so
// a burst can get the pod OOM-killed while a GC would have freed enough.
// And GC work is much of Tollgate's latency tail (GOGC=400 cut the p99
// excess over a do-nothing processor to about a third). So, unless the
// operator set them:
//   - GOMEMLIMIT becomes memLimitShare of the cgroup's memory limit, and
//   - with a memory limit in effect (from the cgroup or GOMEMLIMIT), GOGC
//     becomes defaultGCPercent: the GC runs less often while memory is
//     plentiful, and the limit makes it run more often before the container
//     runs out.
//
// Without a limit, GOGC stays 100: a higher one would let the heap grow
// unbounded in step with the live data.
const (
	memLimitShare    = 0.9 // the rest is for goroutine stacks, cgo and the kernel's page cache
	defaultGCPercent = 400
)

// Where a process's memory limit is, under the file system root: the
// cgroup it is in (/proc/self/cgroup) and, in that cgroup's folder and its
// ancestors', memory.max (cgroup v2) or memory.limit_in_bytes (v1). Inside
// a container with its own cgroup namespace the process's cgroup is "/",
// the mount's root; without one it names a folder that may or may not be
// mounted, so the mount's root is read too. The lowest limit found wins,
// as the kernel enforces every ancestor's.
const (
	procSelfCgroup  = "proc/self/cgroup"
	cgroupV2Mount   = "sys/fs/cgroup"
	cgroupV2File    = "memory.max"
	cgroupV1Mount   = "sys/fs/cgroup/memory"
	cgroupV1File    = "memory.limit_in_bytes"
	cgroupV1Control = "memory"
)

// memoryTuning is what tuneMemory decided, for the start-up log line and
// the tests.
type memoryTuning struct {
	Limit      int64  // bytes passed to debug.SetMemoryLimit; 0: not set by Tollgate
	LimitFrom  string // "GOMEMLIMIT", the cgroup file, or "" when there is none
	GCPercent  int    // passed to debug.SetGCPercent; 0: not set by Tollgate
	CgroupSize int64  // the container's limit in bytes; 0: none found
}

// tuneMemory applies the defaults above to this process. root is the file
// system's root ("/" outside tests); getenv reads the environment. The runtime has already applied GOMEMLIMIT and GOGC if set.
func tuneMemory(root string, getenv func(string) string, log *slog.Logger) memoryTuning {
	t := decideMemory(root, getenv, log)
	if t.Limit > 0 {
		debug.SetMemoryLimit(t.Limit)
	}
	if t.GCPercent > 0 {
		debug.SetGCPercent(t.GCPercent)
	}
	switch {
	case t.Limit > 0:
		log.Info("memory limit from the container's cgroup", "gomemlimit", t.Limit, "cgroup_limit", t.CgroupSize, "from", t.LimitFrom, "gogc", gogcText(t, getenv))
	case t.LimitFrom != "":
		log.Info("memory limit from the environment", "gomemlimit", getenv("GOMEMLIMIT"), "gogc", gogcText(t, getenv))
	default:
		log.Info("no memory limit found: Go's default GC settings", "gogc", gogcText(t, getenv))
	}
	return t
}

func gogcText(t memoryTuning, getenv func(string) string) string {
	if t.GCPercent > 0 {
		return strconv.Itoa(t.GCPercent)
	}
	if v := getenv("GOGC"); v != "" {
		return v
	}
	return "100"
}

// decideMemory is tuneMemory without the side effects.
func decideMemory(root string, getenv func(string) string, log *slog.Logger) memoryTuning {
	var t memoryTuning
	if v := getenv("GOMEMLIMIT"); strings.EqualFold(v, "off") {
		// The operator turned the limit off: no limit of ours either, and
		// GOGC stays as set, since without a limit a raised GOGC lets the
		// heap grow unbounded.
		return t
	} else if v != "" {
		t.LimitFrom = "GOMEMLIMIT"
	} else {
		size, file, err := cgroupMemoryLimit(root)
		if err != nil {
			// A container whose limit cannot be read runs as without one;
			// say so, since the operator may expect the limit to apply.
			log.Warn("reading the container's memory limit", "err", err)
		}
		if size > 0 {
			t.CgroupSize, t.LimitFrom = size, file
			t.Limit = int64(float64(size) * memLimitShare)
		}
	}
	if t.LimitFrom != "" && getenv("GOGC") == "" {
		t.GCPercent = defaultGCPercent
	}
	return t
}

// cgroupMemoryLimit is the lowest memory limit in bytes of the process's
// cgroup and its ancestors, and the file that set it: 0 with no error when
// there is no limit (no cgroup file, "max" on v2, a number near 2^63 on
// v1). cgroup v2 is read first; v1 only when v2 has no memory files.
func cgroupMemoryLimit(root string) (size int64, file string, err error) {
	v1Path, v2Path := "/", "/"
	if data, err := os.ReadFile(filepath.Join(root, procSelfCgroup)); err == nil {
		v1Path, v2Path = ownCgroups(string(data))
	}
	found := false
	for _, where := range []struct{ mount, path, file string }{
		{cgroupV2Mount, v2Path, cgroupV2File},
		{cgroupV1Mount, v1Path, cgroupV1File},
	} {
		for _, dir := range cgroupDirs(where.path) {
			f := filepath.Join(root, where.mount, dir, where.file)
			data, err := os.ReadFile(f)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return 0, f, err
			}
			found = true
			n, err := parseCgroupLimit(string(data))
			if err != nil {
				return 0, f, fmt.Errorf("%s: %w", f, err)
			}
			if n > 0 && (size == 0 || n < size) {
				size, file = n, f
			}
		}
		if found {
			break
		}
	}
	return size, file, nil
}

// ownCgroups reads /proc/self/cgroup: the v1 memory controller's path
// ("N:memory:/path" or a combined "N:cpu,memory:/path") and the v2 path
// ("0::/path"), "/" where a line is missing.
func ownCgroups(s string) (v1, v2 string) {
	v1, v2 = "/", "/"
	for line := range strings.SplitSeq(s, "\n") {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			continue
		}
		if parts[1] == "" {
			v2 = parts[2]
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if c == cgroupV1Control {
				v1 = parts[2]
			}
		}
	}
	return v1, v2
}

// cgroupDirs is path and its ancestors up to "/", cleaned, without "..".
func cgroupDirs(path string) []string {
	p := filepath.Clean("/" + path)
	dirs := []string{p}
	for p != "/" {
		p = filepath.Dir(p)
		dirs = append(dirs, p)
	}
	return dirs
}

// unlimitedV1 is where cgroup v1 starts to mean "no limit": it reports
// 2^63-1 rounded down to the page size, never a real memory size.
const unlimitedV1 = 1 << 62

func parseCgroupLimit(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a memory limit: %q", s)
	}
	if n >= unlimitedV1 {
		return 0, nil
	}
	if n == 0 {
		return 0, errors.New("a memory limit of 0 bytes")
	}
	return int64(n), nil
}
