package main

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// machine describes where the figures were taken.
type machine struct {
	OS, Arch   string
	CPU        string
	Cores      int
	GOMAXPROCS int
	GoVersion  string
	Date       time.Time
}

func describeMachine() machine {
	return machine{
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		CPU:        cpuModel(),
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		Date:       time.Now().UTC(),
	}
}

// cpuModel is the first "model name" of /proc/cpuinfo ("unknown" elsewhere).
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown"
}

// vmRSS is this process's resident set in bytes from /proc/self/status, 0
// where that file does not exist.
func vmRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// memPeak is the highest memory seen while a run was going.
type memPeak struct {
	RSS      uint64 // process VmRSS, bytes (load generator and servers together)
	HeapObjs uint64 // Go heap objects, live and not yet swept, bytes
}

// memSampler samples memory every interval until stopped. It reads
// runtime/metrics (no stop-the-world, unlike ReadMemStats) and
// /proc/self/status, so it disturbs the run it watches very little.
type memSampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	peak memPeak
}

const heapObjectsMetric = "/memory/classes/heap/objects:bytes"

func startMemSampler(interval time.Duration) *memSampler {
	m := &memSampler{stop: make(chan struct{})}
	m.wg.Go(func() {
		sample := []metrics.Sample{{Name: heapObjectsMetric}}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			m.take(sample)
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	})
	return m
}

func (m *memSampler) take(sample []metrics.Sample) {
	metrics.Read(sample)
	if sample[0].Value.Kind() == metrics.KindUint64 {
		m.peak.HeapObjs = max(m.peak.HeapObjs, sample[0].Value.Uint64())
	}
	m.peak.RSS = max(m.peak.RSS, vmRSS())
}

// Stop ends the sampling and returns the peaks.
func (m *memSampler) Stop() memPeak {
	close(m.stop)
	m.wg.Wait()
	m.take([]metrics.Sample{{Name: heapObjectsMetric}})
	return m.peak
}
