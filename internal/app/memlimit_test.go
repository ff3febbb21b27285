package app

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/testenv"
)

// fakeSys makes a folder laid out like the file system's root with the
// given files (path relative to it → content).
func fakeSys(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// The cgroup files of the tests, relative to the fake root.
const (
	v2Max   = cgroupV2Mount + "/" + cgroupV2File
	v1Limit = cgroupV1Mount + "/" + cgroupV1File
)

func TestDecideMemory(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		name      string
		files     map[string]string
		env       map[string]string
		limit     int64
		gcPercent int
		from      string
		warns     bool
	}{
		{name: "cgroup v2 limit", files: map[string]string{v2Max: "1073741824\n"},
			limit: gib * 9 / 10, gcPercent: defaultGCPercent, from: v2Max},
		{name: "cgroup v1 limit", files: map[string]string{v1Limit: "536870912\n"},
			limit: gib / 2 * 9 / 10, gcPercent: defaultGCPercent, from: v1Limit},
		{name: "v2 wins over v1", files: map[string]string{v2Max: "1073741824", v1Limit: "536870912"},
			limit: gib * 9 / 10, gcPercent: defaultGCPercent, from: v2Max},
		{name: "v2 unlimited", files: map[string]string{v2Max: "max\n"}},
		{name: "v1 unlimited", files: map[string]string{v1Limit: "9223372036854771712\n"}},
		{name: "no cgroup files"},
		{name: "v2: own cgroup's limit", files: map[string]string{
			procSelfCgroup: "0::/kubepods/pod1/ctr\n", v2Max: "max",
			cgroupV2Mount + "/kubepods/pod1/ctr/" + cgroupV2File: "1073741824"},
			limit: gib * 9 / 10, gcPercent: defaultGCPercent, from: cgroupV2Mount + "/kubepods/pod1/ctr/" + cgroupV2File},
		{name: "v2: an ancestor's lower limit", files: map[string]string{
			procSelfCgroup: "0::/kubepods/pod1/ctr\n",
			cgroupV2Mount + "/kubepods/pod1/ctr/" + cgroupV2File: "max",
			cgroupV2Mount + "/kubepods/pod1/" + cgroupV2File:     "536870912"},
			limit: gib / 2 * 9 / 10, gcPercent: defaultGCPercent, from: cgroupV2Mount + "/kubepods/pod1/" + cgroupV2File},
		{name: "v1: memory among combined controllers, path not mounted: the mount's root", files: map[string]string{
			procSelfCgroup: "5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n", v1Limit: "268435456"},
			limit: gib / 4 * 9 / 10, gcPercent: defaultGCPercent, from: v1Limit},
		{name: "v1: own cgroup unlimited, root unlimited", files: map[string]string{
			procSelfCgroup: "4:memory:/process_api/x\n", v1Limit: "9223372036854771712",
			cgroupV1Mount + "/process_api/x/" + cgroupV1File: "9223372036854771712"}},
		{name: "GOMEMLIMIT set: no limit of ours, GOGC raised", files: map[string]string{v2Max: "1073741824"},
			env: map[string]string{"GOMEMLIMIT": "200MiB"}, gcPercent: defaultGCPercent, from: "GOMEMLIMIT"},
		{name: "GOGC set: kept", files: map[string]string{v2Max: "1073741824"},
			env: map[string]string{"GOGC": "150"}, limit: gib * 9 / 10, from: v2Max},
		{name: "both set: nothing changed", files: map[string]string{v2Max: "1073741824"},
			env: map[string]string{"GOMEMLIMIT": "200MiB", "GOGC": "off"}, from: "GOMEMLIMIT"},
		{name: "GOMEMLIMIT=off: no limit, GOGC left alone", files: map[string]string{v2Max: "1073741824"},
			env: map[string]string{"GOMEMLIMIT": "off"}},
		{name: "unreadable value", files: map[string]string{v2Max: "lots"}, warns: true},
		{name: "zero", files: map[string]string{v1Limit: "0"}, warns: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeSys(t, tc.files)
			log, logs := testenv.Logger(t, "memory")
			got := decideMemory(root, envOf(tc.env), log)
			from := got.LimitFrom
			if rel, err := filepath.Rel(root, from); err == nil && !strings.HasPrefix(rel, "..") {
				from = rel
			}
			if got.Limit != tc.limit || got.GCPercent != tc.gcPercent || from != tc.from {
				t.Errorf("got limit %d, GOGC %d, from %q; want %d, %d, %q", got.Limit, got.GCPercent, from, tc.limit, tc.gcPercent, tc.from)
			}
			if warned := logs.Contains("level=WARN"); warned != tc.warns {
				t.Errorf("warned %v, want %v: %s", warned, tc.warns, logs.String())
			}
		})
	}
}

// tuneMemory really applies the limit and GOGC (restored afterwards: they
// are the test process's own) and logs them.
func TestTuneMemoryApplies(t *testing.T) {
	oldLimit := debug.SetMemoryLimit(-1)
	oldGC := debug.SetGCPercent(-1)
	debug.SetGCPercent(oldGC)
	t.Cleanup(func() {
		debug.SetMemoryLimit(oldLimit)
		debug.SetGCPercent(oldGC)
	})
	root := fakeSys(t, map[string]string{v2Max: "2147483648"})
	var logs strings.Builder
	tuneMemory(root, envOf(nil), slog.New(slog.NewTextHandler(&logs, nil)))
	if got, want := debug.SetMemoryLimit(-1), int64(2147483648*9/10); got != want {
		t.Errorf("memory limit %d, want %d", got, want)
	}
	if got := debug.SetGCPercent(oldGC); got != defaultGCPercent {
		t.Errorf("GOGC %d, want %d", got, defaultGCPercent)
	}
	if !strings.Contains(logs.String(), "gomemlimit=1932735283") || !strings.Contains(logs.String(), "gogc=400") {
		t.Errorf("start-up log: %s", logs.String())
	}
}
