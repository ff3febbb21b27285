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

// The cgroup files that hold a container's memory limit: v2 (unified) and
// v1. Inside a container both are the container's own (its cgroup
// namespace is rooted at it).
const (
	cgroupV2MemoryMax = "fs/cgroup/memory.max"
	cgroupV1Limit     = "fs/cgroup/memory/memory.limit_in_bytes"
)

// memoryTuning is what tuneMemory decided, for the start-up log line and
// the tests.
type memoryTuning struct {
	Limit      int64  // bytes passed to debug.SetMemoryLimit; 0: not set by Tollgate
	LimitFrom  string // "GOMEMLIMIT", the cgroup file, or "" when there is none
	GCPercent  int    // passed to debug.SetGCPercent; 0: not set by Tollgate
	CgroupSize int64  // the container's limit in bytes; 0: none found
}

// tuneMemory applies the defaults above to this process. sysRoot is the
// folder holding fs/cgroup ("/sys" outside tests); getenv reads the
// environment. The runtime has already applied GOMEMLIMIT and GOGC if set.
func tuneMemory(sysRoot string, getenv func(string) string, log *slog.Logger) memoryTuning {
	t := decideMemory(sysRoot, getenv, log)
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
func decideMemory(sysRoot string, getenv func(string) string, log *slog.Logger) memoryTuning {
	var t memoryTuning
	if getenv("GOMEMLIMIT") != "" {
		t.LimitFrom = "GOMEMLIMIT"
	} else {
		size, file, err := cgroupMemoryLimit(sysRoot)
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

// cgroupMemoryLimit reads the container's memory limit in bytes: 0 with no
// error when there is no cgroup file or it says unlimited ("max" on v2, a
// number near 2^63 on v1). file is the one read.
func cgroupMemoryLimit(sysRoot string) (size int64, file string, err error) {
	for _, rel := range []string{cgroupV2MemoryMax, cgroupV1Limit} {
		file = filepath.Join(sysRoot, rel)
		data, err := os.ReadFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, file, err
		}
		size, err := parseCgroupLimit(string(data))
		if err != nil {
			return 0, file, fmt.Errorf("%s: %w", file, err)
		}
		return size, file, nil
	}
	return 0, "", nil
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
